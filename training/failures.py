"""Where a bundle fails on validation, by the list each row came from.

    python -m brandsafe.training.failures --bundle bundles/minilm-cpu --validation runs/minilm-cpu/validation.jsonl

At the operating point the report's headline uses (the score threshold that still flags 90 % of
unsafe rows), prints for every source list (`source`/`source_label` of the data file's row, found
through the row's `origin` file:line; "-" where the file has none) how many of its unsafe rows are
caught and how many of its safe rows are blocked, with one example of each kind of miss. It tells
a data owner whether the false blocks are spread over ordinary lists (little the text can tell
apart) or sit in one list worth relabelling.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from brandsafe.jsonl import json_objects

from .data import DataError
from .evaluate import UNSAFE_RECALL_TARGET, false_block_rate_at_recall, unsafe_score


def source_of(origin: str, cache: dict[str, dict[str, dict]]) -> str:
    """`source:source_label` of the data row an origin ("file:line") points at, or "-". Rows are
    read with the reader training used, so an origin names the same line here as it did there;
    CSV rows and taxonomy examples carry no source list."""
    path = origin.rpartition(":")[0]
    if path not in cache:
        cache[path] = (dict(json_objects(path, DataError))
                       if Path(path).suffix.lower() in {".jsonl", ".ndjson"} and Path(path).is_file() else {})
    record = cache[path].get(origin)
    return "-" if record is None else f"{record.get('source', '-')}:{record.get('source_label', '-')}"


def by_source(rows: list[dict], scores: np.ndarray, recall: float = UNSAFE_RECALL_TARGET) -> tuple[float, list[dict]]:
    """(threshold, one summary per source list, most false blocks first)."""
    unsafe = np.array([bool(r["labels"]) for r in rows])
    _, threshold = false_block_rate_at_recall(scores, unsafe, recall)
    groups: dict[str, dict] = defaultdict(lambda: {"unsafe": 0, "caught": 0, "safe": 0, "blocked": 0,
                                                   "missed_example": "", "blocked_example": ""})
    for row, score, bad in zip(rows, scores, unsafe):
        group = groups[row["source"]]
        if bad:
            group["unsafe"] += 1
            if score >= threshold:
                group["caught"] += 1
            elif not group["missed_example"]:
                group["missed_example"] = row["text"]
        else:
            group["safe"] += 1
            if score >= threshold:
                group["blocked"] += 1
                group["blocked_example"] = group["blocked_example"] or row["text"]
    summary = [{"source": name, **g} for name, g in groups.items()]
    return threshold, sorted(summary, key=lambda g: (-g["blocked"], -(g["unsafe"] - g["caught"])))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="exported bundle to score with")
    parser.add_argument("--validation", type=Path, required=True, help="validation.jsonl of a training run")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: automatic)")
    args = parser.parse_args(argv)

    from brandsafe.service.model import LoadedBundle

    rows, files = [], {}
    for _, record in json_objects(args.validation, DataError):
        rows.append({"text": record["text"], "labels": record["labels"],
                     "source": source_of(record.get("origin", ""), files)})
    model = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    texts = [r["text"] for r in rows]
    scores = unsafe_score(np.concatenate([model.score(texts[i:i + 64]) for i in range(0, len(texts), 64)]))
    threshold, summary = by_source(rows, scores)
    total_safe = sum(g["safe"] for g in summary)
    blocked = sum(g["blocked"] for g in summary)
    print(f"{model.bundle_id}: {len(rows)} validation rows; threshold {threshold:.3f} flags "
          f"{UNSAFE_RECALL_TARGET:.0%} of unsafe rows and {blocked} of {total_safe} safe rows "
          f"({blocked / max(total_safe, 1):.1%})")
    print(f"{'source list':<58} {'unsafe caught':>14} {'safe blocked':>13}  example")
    for g in summary:
        caught = f"{g['caught']}/{g['unsafe']}" if g["unsafe"] else "-"
        blocked_text = f"{g['blocked']}/{g['safe']}" if g["safe"] else "-"
        example = g["blocked_example"] if g["blocked"] else g["missed_example"]
        print(f"{g['source'][:58]:<58} {caught:>14} {blocked_text:>13}  {example[:60]}")


if __name__ == "__main__":
    main()
