"""`brandsafe release register|evaluate|promote|status`: the registry and the promotion gate from
the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .registry import DEFAULT_MODEL_NAME

REJECTED_EXIT = 1  # a rejection is an answer, not a crash; CI can still stop on it


def add_release_commands(subparsers) -> None:
    release = subparsers.add_parser(
        "release", help="register, evaluate and promote releases (model bundle + index) in the MLflow registry",
        description="A release is one model bundle plus (optionally) one retrieval index, registered as one "
                    "version in MLflow's model registry. Every release passes the same gate: candidate → "
                    "evaluated → promoted (the `champion` alias moves to it) or rejected.")
    sub = release.add_subparsers(dest="release_command", required=True, metavar="ACTION")

    register = sub.add_parser("register", help="register a bundle (and index) as a new candidate version")
    _common(register)
    register.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    register.add_argument("--index", type=Path, default=None, help="retrieval index folder (optional)")
    register.add_argument("--description", default="", help="free text stored on the version")
    register.set_defaults(func=_cmd_register)

    evaluate = sub.add_parser("evaluate", help="evaluate a version (→ evaluated, alias challenger)")
    _common(evaluate)
    evaluate.add_argument("version", help="version number or alias")
    _eval_args(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)

    promote = sub.add_parser("promote", help="run the gate: evaluate against the champion, then promote or reject",
                             description="Evaluate the version and the current champion on the same data in this "
                                         "process, compare them under the thresholds, and move `champion` to the "
                                         f"version or reject it with reasons. Exit status {REJECTED_EXIT} on "
                                         "rejection.")
    _common(promote)
    promote.add_argument("version", help="version number or alias")
    _eval_args(promote)
    _threshold_args(promote)
    promote.add_argument("--json", action="store_true", help="print the gate result as JSON")
    promote.set_defaults(func=_cmd_promote)

    status = sub.add_parser("status", help="list versions with state, aliases and metrics")
    _common(status)
    status.set_defaults(func=_cmd_status)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", default=None,
                   help="MLflow tracking URI (http://… for a team server) or a local folder for the embedded "
                        "sqlite store (default: $BRANDSAFE_REGISTRY or ./registry)")
    p.add_argument("--name", default=DEFAULT_MODEL_NAME, help="registered model name (default: %(default)s)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True,
                   help="labelled rows, JSONL url,title,labels (e.g. a training run's validation.jsonl)")
    p.add_argument("--citations", type=Path, default=None,
                   help="citation-check rows, JSONL url,title,labels,passage_id (needed when the release has an index)")
    p.add_argument("--latency-rows", type=int, default=200, help="rows timed one at a time (default: %(default)s)")


def _threshold_args(p: argparse.ArgumentParser) -> None:
    from .gate import Thresholds

    d = Thresholds()
    p.add_argument("--f1-tolerance", type=float, default=d.macro_f1_tolerance,
                   help="macro-F1 may fall this much below the champion's (default: %(default)s)")
    p.add_argument("--false-block-tolerance", type=float, default=d.false_block_tolerance,
                   help="false-block rate may rise this much above the champion's (default: %(default)s)")
    p.add_argument("--p99-ratio", type=float, default=d.p99_ratio,
                   help="p99 may rise to max(ratio × champion, champion + slack) (default: %(default)s)")
    p.add_argument("--p99-slack-ms", type=float, default=d.p99_slack_ms, help="(default: %(default)s)")
    p.add_argument("--citation-floor", type=float, default=d.citation_floor,
                   help="minimum citation accuracy for a release with an index (default: %(default)s)")
    p.add_argument("--citation-tolerance", type=float, default=d.citation_tolerance,
                   help="citation accuracy may fall this much below the champion's (default: %(default)s)")
    p.add_argument("--min-macro-f1", type=float, default=d.min_macro_f1,
                   help="absolute floor, also the only bar for the first release (default: %(default)s)")
    p.add_argument("--max-false-block-rate", type=float, default=d.max_false_block_rate,
                   help="absolute ceiling on the false-block rate (default: %(default)s)")


def _registry(args):
    from .registry import Registry

    return Registry(args.registry, args.name)


def _guarded(run):
    """Known failures as one line on stderr and exit status 2, like the other commands."""
    def wrapper(args) -> int:
        from brandsafe.bundle import BundleError

        from .evaluation import EvaluationError
        from .gate import IllegalTransition
        from .registry import RegistryError

        try:
            return run(args) or 0
        except (BundleError, EvaluationError, IllegalTransition, RegistryError, FileNotFoundError) as exc:
            print(f"brandsafe release {args.release_command}: error: {exc}", file=sys.stderr)
            return 2
    return wrapper


@_guarded
def _cmd_register(args) -> int:
    release = _registry(args).register(args.bundle, args.index, args.description)
    print(f"registered {args.name} version {release.version}: bundle {release.bundle_id}, "
          f"index {release.index_version or 'none'} (state {release.state})")
    return 0


@_guarded
def _cmd_evaluate(args) -> int:
    from .gate import evaluate_version

    registry = _registry(args)
    version = registry.get(args.version).version
    metrics = evaluate_version(registry, version, args.data, args.citations, args.latency_rows)
    print(_table([("version " + version, metrics)]))
    print(f"version {version}: evaluated (alias challenger)")
    return 0


@_guarded
def _cmd_promote(args) -> int:
    from .gate import PROMOTED, Thresholds, promote

    registry = _registry(args)
    version = registry.get(args.version).version
    thresholds = Thresholds(macro_f1_tolerance=args.f1_tolerance, false_block_tolerance=args.false_block_tolerance,
                            p99_ratio=args.p99_ratio, p99_slack_ms=args.p99_slack_ms,
                            citation_floor=args.citation_floor, citation_tolerance=args.citation_tolerance,
                            min_macro_f1=args.min_macro_f1, max_false_block_rate=args.max_false_block_rate)
    result = promote(registry, version, args.data, args.citations, thresholds, args.latency_rows)
    if args.json:
        print(json.dumps(vars(result), indent=2, default=str))
    else:
        columns = [(f"champion v{result.champion_version}", result.champion)] if result.champion else []
        print(_table(columns + [(f"candidate v{result.version}", result.candidate)]))
        print(f"verdict: {result.verdict.upper()}")
        for reason in result.reasons:
            print(f"  - {reason}")
        if result.verdict == PROMOTED:
            print(f"champion → version {result.version}")
        elif result.champion_version:
            print(f"champion stays version {result.champion_version}")
    return 0 if result.verdict == PROMOTED else REJECTED_EXIT


@_guarded
def _cmd_status(args) -> int:
    registry = _registry(args)
    releases = registry.releases()
    if not releases:
        print(f"no releases of {args.name} in {registry.uri}")
        return 0
    header = ("version", "state", "aliases", "bundle", "index", "macro-F1", "FBR@90", "p99 ms", "why rejected")
    rows = [(r.version, r.state, ",".join(r.aliases), r.bundle_id, r.index_version or "-",
             r.tags.get("metric.macro_f1", ""), r.tags.get("metric.false_block_rate_at_90_recall", ""),
             r.tags.get("metric.p99_ms", ""), r.tags.get("gate.reasons", "")) for r in releases]
    print(f"{args.name} in {registry.uri}")
    print(_columns([header, *rows]))
    return 0


ROWS = (("bundle", "bundle_id", "{}"), ("index", "index_version", "{}"), ("rows", "rows", "{}"),
        ("macro-F1", "macro_f1", "{:.4f}"), ("unsafe AUROC", "unsafe_auroc", "{:.4f}"),
        ("false-block @90% recall", "false_block_rate_at_90_recall", "{:.4f}"),
        ("citation accuracy", "citation_accuracy", "{:.4f}"),
        ("citation retrieval recall", "citation_retrieval_recall", "{:.4f}"),
        ("p50 ms", "p50_ms", "{:.2f}"), ("p99 ms", "p99_ms", "{:.2f}"))


def _table(columns: list[tuple[str, dict]]) -> str:
    lines = [("", *(name for name, _ in columns))]
    for title, key, fmt in ROWS:
        cells = []
        for _, metrics in columns:
            value = metrics.get(key)
            cells.append("-" if value in (None, "") else fmt.format(value))
        lines.append((title, *cells))
    return _columns(lines)


def _columns(rows) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
