"""Hand-written title probes: pages on generic hosts whose titles carry the risk."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brandsafe.labels import LabelSet
from brandsafe.rendering import PageContext

from .data import DataError

DEFAULT_PROBES = Path(__file__).resolve().parent.parent / "tests" / "probes" / "title-probes.jsonl"
SAFE = "safe"


@dataclass(frozen=True)
class Probe:
    page: PageContext
    expected: str  # a label name or id, or "safe"


def load_probes(path: Path, labels: LabelSet) -> list[Probe]:
    probes = []
    known = {l.name for l in labels} | {l.id for l in labels} | {SAFE}
    for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            page, expected = PageContext(url=record["url"], title=record.get("title") or ""), record["expected"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{line_no}: probe needs url, title, expected ({exc})") from None
        if expected not in known:
            raise DataError(f"{path}:{line_no}: expected {expected!r} is neither 'safe' nor a label of this model")
        probes.append(Probe(page, expected))
    return probes


def probe_results(probes: list[Probe], probs: np.ndarray, labels: LabelSet, thresholds: np.ndarray) -> dict:
    """A probe is right when the expected category is the top one and passes its threshold, or,
    for a safe probe, when no category passes its threshold."""
    rows = []
    for probe, p in zip(probes, probs):
        passing = p >= thresholds
        top = int(p.argmax())
        if probe.expected == SAFE:
            correct = not passing.any()
        else:
            expected_index = next(i for i, l in enumerate(labels) if probe.expected in (l.id, l.name))
            correct = top == expected_index and bool(passing[top])
        rows.append({"title": probe.page.title, "url": probe.page.url, "expected": probe.expected,
                     "predicted": labels.labels[top].name if passing.any() else SAFE,
                     "top_score": float(p[top]), "correct": bool(correct)})
    return {"rate": float(np.mean([r["correct"] for r in rows])) if rows else float("nan"), "probes": rows}
