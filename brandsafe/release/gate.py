"""The promotion gate: one state machine for every release, whether it brings a new model bundle, a
new index, or both.

    candidate ──evaluate──► evaluated ──compare──► promoted   (the `champion` alias moves to it)
                                                └─► rejected   (reasons recorded; champion untouched)

The state is the `state` tag of the registry version; any other move raises IllegalTransition. The
champion is re-evaluated on the same data in the same process as the candidate rather than trusted
from its old tags, so latency and quality are compared on equal terms.
"""
from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .evaluation import ReleaseEvaluator, evaluate_release, paired_latency
from .registry import CHALLENGER, CHAMPION, Registry, Release

log = logging.getLogger(__name__)

CANDIDATE, EVALUATED, PROMOTED, REJECTED = "candidate", "evaluated", "promoted", "rejected"
TRANSITIONS = {CANDIDATE: {EVALUATED}, EVALUATED: {PROMOTED, REJECTED}, PROMOTED: set(), REJECTED: set()}
METRIC_TAGS = ("macro_f1", "unsafe_auroc", "false_block_rate_at_90_recall", "citation_accuracy",
               "citation_retrieval_recall", "p50_ms", "p99_ms", "rows")


class IllegalTransition(RuntimeError):
    pass


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, set()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (final)"
        raise IllegalTransition(f"release state {current or '(none)'!r} → {new!r} is not allowed; "
                                f"from {current!r}: {allowed}")


def transition(registry: Registry, version: str, new: str) -> None:
    release = registry.get(version)
    check_transition(release.state, new)
    registry.set_tags(version, {"state": new})


@dataclass(frozen=True)
class Thresholds:
    macro_f1_tolerance: float = 0.0       # how far macro-F1 may fall below the champion's
    false_block_tolerance: float = 0.0    # how far the false-block rate may rise above the champion's
    p99_ratio: float = 1.5                # p99 may rise to max(ratio × champion, champion + slack)
    p99_slack_ms: float = 2.0             # (a fixed slack keeps sub-ms jitter from failing fast models)
    citation_floor: float = 0.8           # with an index: share of passage-dependent rows answered right
    citation_tolerance: float = 0.0       # how far citation accuracy may fall below the champion's
    min_macro_f1: float = 0.2             # absolute floors, the only bar for the first release
    max_false_block_rate: float = 0.5


def compare(candidate: dict, champion: dict | None, thresholds: Thresholds) -> list[str]:
    """Reasons to reject the candidate; empty means it may be promoted."""
    t = thresholds
    reasons = []
    for key in ("macro_f1", "false_block_rate_at_90_recall", "p99_ms"):
        if not _finite(candidate.get(key)):
            reasons.append(f"{key} could not be measured on this data")
    if _finite(candidate.get("macro_f1")) and candidate["macro_f1"] < t.min_macro_f1:
        reasons.append(f"macro-F1 {candidate['macro_f1']:.4f} is under the floor {t.min_macro_f1:.4f}")
    fbr = candidate.get("false_block_rate_at_90_recall")
    if _finite(fbr) and fbr > t.max_false_block_rate:
        reasons.append(f"false-block rate {fbr:.4f} is over the ceiling {t.max_false_block_rate:.4f}")
    if candidate.get("index_version"):
        accuracy = candidate.get("citation_accuracy")
        if accuracy is None:
            reasons.append("the release has an index but no citation data was given")
        elif accuracy < t.citation_floor:
            reasons.append(f"citation accuracy {accuracy:.4f} is under the floor {t.citation_floor:.4f}")
    if champion is None:
        return reasons
    if _finite(candidate.get("macro_f1")) and _finite(champion.get("macro_f1")):
        if candidate["macro_f1"] < champion["macro_f1"] - t.macro_f1_tolerance:
            reasons.append(f"macro-F1 drops {champion['macro_f1']:.4f} → {candidate['macro_f1']:.4f}")
    champion_fbr = champion.get("false_block_rate_at_90_recall")
    if _finite(fbr) and _finite(champion_fbr) and fbr > champion_fbr + t.false_block_tolerance:
        reasons.append(f"false-block rate rises {champion_fbr:.4f} → {fbr:.4f}")
    # A new index with the same model moves little else: the citation check is where it shows.
    accuracy, champion_accuracy = candidate.get("citation_accuracy"), champion.get("citation_accuracy")
    if _finite(accuracy) and _finite(champion_accuracy) and accuracy < champion_accuracy - t.citation_tolerance:
        reasons.append(f"citation accuracy drops {champion_accuracy:.4f} → {accuracy:.4f}")
    if _finite(candidate.get("p99_ms")) and _finite(champion.get("p99_ms")):
        bound = max(champion["p99_ms"] * t.p99_ratio, champion["p99_ms"] + t.p99_slack_ms)
        if candidate["p99_ms"] > bound:
            reasons.append(f"p99 latency {candidate['p99_ms']:.2f} ms exceeds the bound {bound:.2f} ms "
                           f"(champion {champion['p99_ms']:.2f} ms)")
    return reasons


@dataclass
class GateResult:
    version: str
    verdict: str                      # promoted | rejected
    reasons: list[str]
    candidate: dict
    champion: dict | None = None      # None for the first release
    champion_version: str | None = None
    thresholds: dict = field(default_factory=dict)


def evaluate_version(registry: Registry, version: str, eval_data: Path, citations: Path | None = None,
                     latency_rows: int = 200) -> dict:
    """candidate → evaluated, alone: evaluate what the registry holds, record it, point `challenger`
    at it. A version already evaluated is re-measured without a transition."""
    release = registry.get(version)
    if release.state != EVALUATED:
        check_transition(release.state, EVALUATED)
    with tempfile.TemporaryDirectory(prefix="brandsafe-gate-") as tmp:
        bundle_dir, index_dir = registry.download(release.version, Path(tmp) / "candidate")
        metrics = evaluate_release(bundle_dir, index_dir, eval_data, citations, latency_rows)
    _record_evaluation(registry, release, metrics, eval_data, citations)
    return metrics


def promote(registry: Registry, version: str, eval_data: Path, citations: Path | None = None,
            thresholds: Thresholds = Thresholds(), latency_rows: int = 200) -> GateResult:
    """Run the whole gate on one version: evaluate it and the champion side by side, compare, then
    promote (move `champion`) or reject (record why). The champion keeps serving either way until
    the alias moves."""
    release = registry.get(version)
    if release.state not in (CANDIDATE, EVALUATED):
        raise IllegalTransition(f"version {release.version} is already {release.state}; register it again "
                                "to send it through the gate anew")
    champion_version = registry.alias_version(CHAMPION)
    if champion_version == release.version:
        champion_version = None
    with tempfile.TemporaryDirectory(prefix="brandsafe-gate-") as tmp:
        # What the registry holds, downloaded and verified; not a local folder that may have changed.
        candidate_dirs = registry.download(release.version, Path(tmp) / "candidate")
        champion_dirs = registry.download(champion_version, Path(tmp) / "champion") if champion_version else None
        candidate, champion = _measure(candidate_dirs, champion_dirs, eval_data, citations, latency_rows)
    _record_evaluation(registry, release, candidate, eval_data, citations)
    reasons = compare(candidate, champion, thresholds)
    verdict = REJECTED if reasons else PROMOTED
    registry.set_tags(release.version, {"gate.champion_version": champion_version or "",
                                        "gate.reasons": "; ".join(reasons)})
    if champion is not None:
        registry.set_tags(release.version, {f"gate.champion.{k}": _fmt(champion.get(k)) for k in METRIC_TAGS})
    transition(registry, release.version, verdict)
    if verdict == PROMOTED:
        registry.set_alias(CHAMPION, release.version)
    if registry.alias_version(CHALLENGER) == release.version:
        registry.delete_alias(CHALLENGER)
    log.info("release %s %s%s", release.version, verdict, f": {'; '.join(reasons)}" if reasons else "")
    return GateResult(release.version, verdict, reasons, candidate, champion, champion_version, asdict(thresholds))


def _measure(candidate_dirs, champion_dirs, eval_data: Path, citations: Path | None,
             latency_rows: int) -> tuple[dict, dict | None]:
    """Quality of each on the same rows, then latency interleaved row by row: run one after the
    other, a busy neighbour on a shared machine would make whichever ran second look slower."""
    evaluators = []
    try:
        for dirs in (candidate_dirs, champion_dirs):
            if dirs is not None:
                evaluators.append(ReleaseEvaluator(*dirs))
        results = [e.quality(eval_data, citations) for e in evaluators]
        rows = evaluators[0].latency_rows(eval_data, latency_rows)
        for result, latency in zip(results, paired_latency(evaluators, rows)):
            result.update(latency)
    finally:
        for evaluator in evaluators:
            evaluator.close()
    return results[0], (results[1] if len(results) > 1 else None)


def _record_evaluation(registry: Registry, release: Release, metrics: dict, eval_data: Path,
                       citations: Path | None) -> None:
    registry.log_metrics(release.version, metrics)
    registry.set_tags(release.version, {f"metric.{k}": _fmt(metrics.get(k)) for k in METRIC_TAGS}
                      | {"eval_data": str(eval_data), "citations": str(citations or "")})
    if release.state != EVALUATED:
        transition(registry, release.version, EVALUATED)
    registry.set_alias(CHALLENGER, release.version)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
