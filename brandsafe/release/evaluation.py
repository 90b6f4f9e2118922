"""One evaluation for every release: the training report's metrics on labelled rows, a citation
check, and single-row latency, all measured on this machine in this process.

The page → text path is the service's: passages are retrieved and rendered in only when the release
has an index *and* the bundle was trained with a context block (otherwise the service would not
attach them either).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brandsafe.jsonl import json_objects
from brandsafe.labels import LabelSet
from brandsafe.rendering import PageContext, render

SCORE_BATCH = 64
WARM_UP_ROWS = 5


class EvaluationError(ValueError):
    pass


@dataclass(frozen=True)
class EvalRow:
    page: PageContext | None  # None: the row carries only pre-rendered text
    text: str
    labels: frozenset[str]
    passage_id: str = ""


def read_rows(path: str | Path, labels: LabelSet) -> list[EvalRow]:
    """JSONL rows `{"url", "title", "keywords"?, "labels": [ids or names], "passage_id"?}`; a row with
    only `text` (older run validation files) is scored as that text, without retrieval."""
    path = Path(path)
    by_name = {l.name.casefold(): l.id for l in labels}
    rows = []
    for where, record in json_objects(path, EvaluationError):
        if not isinstance(record.get("labels", []), list):
            raise EvaluationError(f"{where}: expected an object with a 'labels' list")
        truth = set()
        for raw in record.get("labels") or []:
            label_id = str(raw) if str(raw) in labels.index else by_name.get(str(raw).casefold())
            if label_id is None:
                # Dropping it would hide a miss and flatter the release.
                raise EvaluationError(f"{where}: label {raw!r} is not one of the bundle's labels")
            truth.add(label_id)
        url, title = record.get("url") or "", record.get("title") or ""
        keywords = record.get("keywords") or ()
        if isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",")]
        if url or title:
            page = PageContext(url=url, title=title, keywords=tuple(keywords))
            rows.append(EvalRow(page, render(page), frozenset(truth), record.get("passage_id", "")))
        elif record.get("text"):
            rows.append(EvalRow(None, record["text"], frozenset(truth), record.get("passage_id", "")))
        else:
            raise EvaluationError(f"{where}: needs 'url' (or 'title', or 'text')")
    if not rows:
        raise EvaluationError(f"{path}: no rows")
    return rows


class ReleaseEvaluator:
    """A release loaded for evaluation: its bundle (one ORT thread: the per-row cost a replica pays)
    and, when it has one, its retriever. Close it to free the model."""

    def __init__(self, bundle_dir: str | Path, index_dir: str | Path | None = None):
        from brandsafe.service.model import LoadedBundle

        self.model = LoadedBundle(bundle_dir, intra_op_threads=1)
        try:
            self.retriever = None
            if index_dir is not None:
                from brandsafe.retrieval import Retriever

                self.retriever = Retriever.load(index_dir)
        except Exception:
            self.model.close()
            raise
        # The service attaches passages only for a bundle trained with a context block; so do we.
        self.uses_context = self.retriever is not None and bool(self.model.info.context_schema)
        self.thresholds = np.array([float(self.model.thresholds.get(l.id, 0.5)) for l in self.model.labels])

    def quality(self, eval_data: str | Path, citations: str | Path | None = None) -> dict:
        from brandsafe.training.evaluate import evaluate

        rows = read_rows(eval_data, self.model.labels)
        probs = self._score(rows)
        report = evaluate(probs, label_matrix(rows, self.model.labels), self.model.labels, self.thresholds)
        result = {
            "bundle_id": self.model.bundle_id,
            "index_version": self.retriever.version if self.retriever else "",
            "uses_context": self.uses_context,
            "rows": report["rows"],
            "unsafe_rows": report["unsafe_rows"],
            "macro_f1": report["macro_f1"],
            "unsafe_auroc": report["unsafe_auroc"],
            "false_block_rate_at_90_recall": report["false_block_rate_at_90_recall"],
            "citation_accuracy": None,
            "citation_retrieval_recall": None,
            "citation_rows": 0,
        }
        if citations is not None and self.retriever is not None:
            result.update(self._citation_check(read_rows(citations, self.model.labels)))
        return result

    def time_one(self, row: EvalRow) -> float:
        """Milliseconds for what one request costs: retrieval (when used) + rendering + scoring."""
        start = time.perf_counter()
        if self.uses_context and row.page is not None:
            p = row.page
            text = render(PageContext(p.url, p.title, p.keywords, p.app_bundle, self.retriever.retrieve(p)))
        else:
            text = render(row.page) if row.page is not None else row.text
        self.model.score([text])
        return (time.perf_counter() - start) * 1000

    def latency_rows(self, eval_data: str | Path, n: int) -> list[EvalRow]:
        return read_rows(eval_data, self.model.labels)[:max(n, 1)]

    def close(self) -> None:
        self.model.close()

    def _score(self, rows: list[EvalRow]) -> np.ndarray:
        out = []
        for start in range(0, len(rows), SCORE_BATCH):
            chunk = rows[start:start + SCORE_BATCH]
            texts = _with_passages(self.retriever, chunk) if self.uses_context else [r.text for r in chunk]
            out.append(self.model.score(texts))
        return np.concatenate(out)

    def _citation_check(self, rows: list[EvalRow]) -> dict:
        """Rows whose label is only knowable from one passage: the answer follows the passage when
        the predicted label set equals the row's (empty = safe). Retrieval recall says whether the
        passage was found at all, which tells an index problem from a model problem."""
        probs = self._score(rows)
        ids = [l.id for l in self.model.labels]
        followed = [frozenset(ids[j] for j in np.flatnonzero(p >= self.thresholds)) == row.labels
                    for p, row in zip(probs, rows)]
        sourced = [r for r in rows if r.page is not None and r.passage_id]
        found = self.retriever.retrieve_many([r.page for r in sourced]) if sourced else []
        hits = [any(p.source_id == r.passage_id for p in passages) for r, passages in zip(sourced, found)]
        return {"citation_accuracy": float(np.mean(followed)),
                "citation_retrieval_recall": float(np.mean(hits)) if hits else None,
                "citation_rows": len(rows)}


def evaluate_release(bundle_dir: str | Path, index_dir: str | Path | None, eval_data: str | Path,
                     citations: str | Path | None = None, latency_rows: int = 200) -> dict:
    evaluator = ReleaseEvaluator(bundle_dir, index_dir)
    try:
        result = evaluator.quality(eval_data, citations)
        rows = evaluator.latency_rows(eval_data, latency_rows)
        result.update(summarize(_timed([evaluator], rows)[0]))
        return result
    finally:
        evaluator.close()


def paired_latency(evaluators: list[ReleaseEvaluator], rows: list[EvalRow]) -> list[dict]:
    """Latency of several releases measured interleaved row by row (order alternating), so load from
    anything else on the machine falls on all of them alike instead of on whichever ran second."""
    return [summarize(times) for times in _timed(evaluators, rows)]


def summarize(times: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "latency_rows": len(times)}


def _timed(evaluators: list[ReleaseEvaluator], rows: list[EvalRow]) -> list[list[float]]:
    for evaluator in evaluators:
        for row in rows[:WARM_UP_ROWS]:
            evaluator.time_one(row)  # first runs allocate ORT buffers; not what a warm replica pays
    times: list[list[float]] = [[] for _ in evaluators]
    for i, row in enumerate(rows):
        order = range(len(evaluators)) if i % 2 == 0 else reversed(range(len(evaluators)))
        for j in order:
            times[j].append(evaluators[j].time_one(row))
    return times


def _with_passages(retriever, rows: list[EvalRow]) -> list[str]:
    pages = [r.page for r in rows if r.page is not None]
    found = iter(retriever.retrieve_many(pages) if pages else [])
    texts = []
    for row in rows:
        if row.page is None:
            texts.append(row.text)  # pre-rendered text only: nothing to retrieve for
        else:
            p = row.page
            texts.append(render(PageContext(p.url, p.title, p.keywords, p.app_bundle, next(found))))
    return texts


def label_matrix(rows: list[EvalRow], labels: LabelSet) -> np.ndarray:
    targets = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        for label_id in row.labels:
            targets[i, labels.index[label_id]] = 1.0
    return targets
