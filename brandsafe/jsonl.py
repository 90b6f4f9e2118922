"""JSONL files read one object per line, every problem reported as `file:line: what is wrong`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def json_objects(path: str | Path, error: type[Exception]) -> Iterator[tuple[str, dict]]:
    """(where, record) for each non-blank line; raises `error` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    with path.open("rb") as fh:  # decoded line by line, so a bad byte is reported on its own line
        for line_no, raw in enumerate(fh, start=1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise error(f"{where}: expected a JSON object, got {type(record).__name__}")
            yield where, record
