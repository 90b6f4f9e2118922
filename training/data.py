"""Read labelled URL sets: JSONL ({"url", "title"?, "labels": [...]}) or CSV (url,label[,title]).
A JSONL row may have a null url when it has a title (text-only data such as headlines).

Every bad row is reported as `file:line: what is wrong`, so a data owner can fix it directly.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from brandsafe.jsonl import json_objects

MAX_URL_CHARS = 4096


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class LabelledRow:
    url: str                  # "" for a title-only row
    title: str
    labels: tuple[str, ...]   # as written in the file: taxonomy names or unique ids
    origin: str               # "file:line", for messages
    source: str = ""          # "source:source_label" where the file names the list a row came from


def read_rows(path: str | Path) -> list[LabelledRow]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        rows = _read_jsonl(path)
    elif suffix == ".csv":
        rows = _read_csv(path)
    else:
        raise DataError(f"{path}: unknown format {suffix!r}; expected .jsonl or .csv")
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _read_jsonl(path: Path) -> list[LabelledRow]:
    rows = []
    for where, record in json_objects(path, DataError):
        labels = record.get("labels")
        if not isinstance(labels, list) or not all(isinstance(l, str) and l.strip() for l in labels):
            raise DataError(f"{where}: 'labels' must be a list of non-empty strings ([] means brand-safe)")
        title = record.get("title")
        if title is not None and not isinstance(title, str):
            raise DataError(f"{where}: 'title' must be a string or null")
        title = (title or "").strip()
        # Title-only rows (content data: headlines, posts) have no page; training gives them one.
        url = "" if record.get("url") is None and title else _url(record.get("url"), where)
        source = f"{record['source']}:{record.get('source_label') or '-'}" if isinstance(record.get("source"), str) else ""
        rows.append(LabelledRow(url, title, tuple(l.strip() for l in labels), where, source))
    return rows


def _read_csv(path: Path) -> list[LabelledRow]:
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(_lines(fh, path))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "url" not in header or "label" not in header:
            raise DataError(f"{path}:1: CSV header must have 'url' and 'label' columns, got {reader.fieldnames}")
        reader.fieldnames = header
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if None in record:
                raise DataError(f"{where}: more fields than the header has columns")
            raw_labels = (record.get("label") or "").strip()
            labels = tuple(l.strip() for l in raw_labels.split("|")) if raw_labels else ()
            if any(not l for l in labels):
                raise DataError(f"{where}: empty label between '|' separators in {raw_labels!r}")
            rows.append(LabelledRow(_url(record.get("url"), where), (record.get("title") or "").strip(), labels, where))
    return rows


def _lines(fh, path: Path):
    try:
        yield from fh
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _url(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: 'url' must be a non-empty string (or null in a row with a 'title')")
    if len(value) > MAX_URL_CHARS:
        raise DataError(f"{where}: 'url' is longer than {MAX_URL_CHARS} characters")
    return value.strip()
