"""Real page URLs from the labelled data, as bid-request-shaped inputs for benchmarks."""
from __future__ import annotations

import json
import random
from pathlib import Path

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2 as pb


def load_pages(data_file: Path, limit: int, seed: int = 7) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in Path(data_file).read_text().splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return [(r["url"], r.get("title") or "") for r in rows[:limit]]


def requests_for(pages: list[tuple[str, str]]) -> list[pb.ClassifyRequest]:
    return [site_request(url, title=title, request_id=str(i), imp_id="1") for i, (url, title) in enumerate(pages)]
