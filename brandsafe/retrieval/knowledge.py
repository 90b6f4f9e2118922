"""Knowledge-base files: JSONL passages, one per line.

    {"id": "site:casino-royal.example", "title": "casino-royal.example", "text": "An online casino …",
     "keys": ["casino-royal.example"]}

`keys` (optional) are hosts or registrable domains the passage is about: a request for a page on
one of them gets the passage whatever the vector search says. Every bad line is reported as
`file:line: what is wrong`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from brandsafe.jsonl import json_objects
from brandsafe.urlnorm import normalize_host

MAX_TEXT_CHARS = 2000


class KnowledgeError(ValueError):
    pass


@dataclass(frozen=True)
class KnowledgePassage:
    id: str
    title: str
    text: str
    keys: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "text": self.text, "keys": list(self.keys)}


def normalize_key(key: str) -> str:
    """Hosts match case-insensitively, without a leading www. or trailing dot, and IDNs in their
    punycode form (the service looks pages up by their normalised URL's host)."""
    key = normalize_host(key)
    return key[4:] if key.startswith("www.") else key


def read_knowledge(path: str | Path) -> list[KnowledgePassage]:
    passages, seen = [], {}
    for where, record in json_objects(path, KnowledgeError):
        for field in ("id", "text"):
            if not isinstance(record.get(field), str) or not record[field].strip():
                raise KnowledgeError(f"{where}: '{field}' must be a non-empty string")
        title = record.get("title", "")
        if not isinstance(title, str):
            raise KnowledgeError(f"{where}: 'title' must be a string")
        if len(record["text"]) > MAX_TEXT_CHARS:
            raise KnowledgeError(f"{where}: 'text' is {len(record['text'])} characters; at most {MAX_TEXT_CHARS}")
        keys = record.get("keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
            raise KnowledgeError(f"{where}: 'keys' must be a list of non-empty host names")
        passage_id = record["id"].strip()
        if passage_id in seen:
            raise KnowledgeError(f"{where}: id {passage_id!r} already used at line {seen[passage_id]}")
        seen[passage_id] = where.rsplit(":", 1)[1]
        passages.append(KnowledgePassage(passage_id, title.strip(), " ".join(record["text"].split()),
                                         tuple(normalize_key(k) for k in keys)))
    if not passages:
        raise KnowledgeError(f"{path}: no passages")
    return passages


def write_knowledge(passages: list[KnowledgePassage], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for passage in passages:
            fh.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")
