"""`brandsafe evaluate`: what each brand profile would block and miss on labelled data, by
category and by source list, and an HTML report with the plots (precision-recall per category with
the thresholds marked, reliability per label, a confusion matrix, false blocks at fixed recalls).

Rows are read and rendered as the release gate reads them (release.evaluation.read_rows), scored by
the bundle in-process, and decided by each profile with the service's own verdict function, so a
profile's numbers here are what it would do in production on the same pages.
"""
from __future__ import annotations

import html
import io
import json
import sys
from pathlib import Path

import numpy as np

RECALLS = (0.5, 0.7, 0.8, 0.9, 0.95)
MIN_POSITIVES_FOR_PLOTS = 5
RELIABILITY_BINS = 10


def add_evaluate_command(sub) -> None:
    from brandsafe.cli import DEFAULT_BUNDLE

    p = sub.add_parser("evaluate", help="what each brand profile blocks and misses on labelled data; HTML report",
                       description="Score labelled rows (JSONL: url, title, labels, source, source_label; or a run's "
                                   "validation.jsonl) with the bundle and report, per brand profile, what it "
                                   "blocks and misses by category and by source list. Writes an HTML report with "
                                   "precision-recall per category (thresholds marked), reliability per label, a "
                                   "confusion matrix and the false-block rate at fixed recalls.")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--data", type=Path, required=True, help="labelled rows, JSONL")
    p.add_argument("--policies", type=Path, default=None,
                   help="brand profiles TOML (default: the packaged brandsafe/policies.toml)")
    p.add_argument("--html", type=Path, default=Path("evaluation.html"),
                   help="HTML report to write (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="also write the tables as JSON here")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads, 0 = every core (default: %(default)s)")
    p.set_defaults(func=_cmd_evaluate)


def sources(path: Path) -> list[str]:
    """`source:source_label` of each row in file order (release.evaluation.read_rows' order): the
    row's own fields, or for a run's validation rows the data row its `origin` points at."""
    from brandsafe.jsonl import json_objects
    from brandsafe.release.evaluation import EvaluationError
    from brandsafe.training.failures import source_of

    cache: dict = {}
    out = []
    for _, record in json_objects(path, EvaluationError):
        if record.get("source") or record.get("source_label"):
            out.append(f"{record.get('source') or '-'}:{record.get('source_label') or '-'}")
        elif record.get("origin"):
            out.append(source_of(str(record["origin"]), cache))
        else:
            out.append("-")
    return out


def profile_tables(scores: np.ndarray, truth: np.ndarray, row_sources: list[str], pages: list, policies: dict,
                   model) -> dict:
    """Per profile: overall, per category and per source list, what it blocks and misses. A row
    should be blocked by a profile when one of its labels is a category the profile blocks."""
    from brandsafe.service.servicer import verdict_body
    from brandsafe.v1 import brandsafe_pb2 as pb

    labels = model.labels.labels
    result = {}
    for pid, policy in sorted(policies.items()):
        blocks_label = np.isfinite(policy.thresholds)
        should = (truth & blocks_label[None, :]).any(axis=1)
        bodies = [verdict_body(s, policy, model, page) for s, page in zip(scores, pages)]
        blocked = np.array([b.decision == pb.BLOCK for b in bodies])
        first_reason = [b.reasons[0].category_id if b.reasons else "" for b in bodies]
        categories = []
        for j in np.flatnonzero(blocks_label):
            has = truth[:, j]
            blamed = np.array([r == labels[j].id for r in first_reason])
            categories.append({
                "category": labels[j].name, "threshold": float(policy.thresholds[j]), "rows": int(has.sum()),
                "blocked": int((has & blocked).sum()), "missed": int((has & ~blocked).sum()),
                "blocked_for_it": int(blamed.sum()), "wrongly_blamed": int((blamed & ~has).sum()),
            })
        by_source = {}
        for name in sorted(set(row_sources)):
            rows = np.array([s == name for s in row_sources])
            by_source[name] = {"rows": int(rows.sum()), "should_block": int((rows & should).sum()),
                               "caught": int((rows & should & blocked).sum()),
                               "missed": int((rows & should & ~blocked).sum()),
                               "false_blocks": int((rows & ~should & blocked).sum()),
                               "safe": int((rows & ~should).sum())}
        result[pid] = {
            "rows": int(len(scores)), "should_block": int(should.sum()), "blocked": int(blocked.sum()),
            "caught": int((should & blocked).sum()), "missed": int((should & ~blocked).sum()),
            "false_blocks": int((~should & blocked).sum()), "safe": int((~should).sum()),
            "recall": float((should & blocked).sum() / max(should.sum(), 1)),
            "false_block_rate": float((~should & blocked).sum() / max((~should).sum(), 1)),
            "categories": sorted(categories, key=lambda c: -c["rows"]),
            "sources": dict(sorted(by_source.items(), key=lambda kv: -(kv[1]["false_blocks"] + kv[1]["missed"]))),
        }
    return result


def false_blocks_at_recalls(scores: np.ndarray, truth: np.ndarray) -> list[dict]:
    from brandsafe.training.evaluate import false_block_rate_at_recall, unsafe_score

    unsafe = truth.any(axis=1)
    risk = unsafe_score(scores)
    out = []
    for recall in RECALLS:
        rate, threshold = false_block_rate_at_recall(risk, unsafe, recall)
        out.append({"recall": recall, "false_block_rate": rate, "threshold": threshold})
    return out


def reliability(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Per label with positives: (mean predicted, observed frequency, rows) per bin, and the
    expected calibration error: is "calibrated" true for this label?"""
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    out = {}
    for j in range(scores.shape[1]):
        if truth[:, j].sum() < MIN_POSITIVES_FOR_PLOTS:
            continue
        bins = np.clip(np.digitize(scores[:, j], edges) - 1, 0, RELIABILITY_BINS - 1)
        points, ece = [], 0.0
        for b in range(RELIABILITY_BINS):
            rows = bins == b
            if rows.any():
                predicted, observed = float(scores[rows, j].mean()), float(truth[rows, j].mean())
                points.append((predicted, observed, int(rows.sum())))
                ece += rows.mean() * abs(predicted - observed)
        out[j] = {"points": points, "ece": float(ece)}
    return out


# --- the HTML report ----------------------------------------------------------------------------

def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: drop the XML prolog and doctype


def plots(scores: np.ndarray, truth: np.ndarray, model, policies: dict, calibration: dict,
          fbr: list[dict]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    labels = model.labels.labels
    default = policies.get("default")
    with_positives = [j for j in range(scores.shape[1]) if truth[:, j].sum() >= MIN_POSITIVES_FOR_PLOTS]
    out = {}

    cols = 4
    rows = max(1, -(-len(with_positives) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(with_positives):]:
        ax.axis("off")
    for ax, j in zip(axes.flat, with_positives):
        precision, recall, thresholds = precision_recall_curve(truth[:, j], scores[:, j])
        ax.plot(recall, precision, color="#1f77b4", lw=1.5)
        marks = {"bundle": float(model.thresholds.get(labels[j].id, 0.5))}
        if default is not None and np.isfinite(default.thresholds[j]):
            marks["default profile"] = float(default.thresholds[j])
        for (name, t), style in zip(marks.items(), ("o", "x")):
            predicted = scores[:, j] >= t
            if not predicted.any():  # blocks nothing here: no precision to mark
                ax.plot([], [], style, color="#d62728", label=f"{name} {t:.2f} (blocks none)")
                continue
            tp = float((predicted & truth[:, j]).sum())
            ax.plot(tp / max(truth[:, j].sum(), 1), tp / max(predicted.sum(), 1), style, color="#d62728", ms=8,
                    label=f"{name} {t:.2f}")
        ax.set_title(labels[j].name[:38], fontsize=8)
        ax.set_xlim(0, 1.02), ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=7), ax.set_ylabel("precision", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle("Precision-recall per category (thresholds marked)", fontsize=11)
    fig.tight_layout()
    out["pr"] = _svg(fig)

    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(with_positives):]:
        ax.axis("off")
    for ax, j in zip(axes.flat, with_positives):
        points = calibration[j]["points"]
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="#2ca02c", ms=4)
        ax.set_title(f"{labels[j].name[:30]} (ECE {calibration[j]['ece']:.3f})", fontsize=8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted", fontsize=7), ax.set_ylabel("observed", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle("Reliability per label (on the diagonal = calibrated)", fontsize=11)
    fig.tight_layout()
    out["reliability"] = _svg(fig)

    # Confusion: each row's first true label (or safe) against the default profile's deciding category.
    names = [labels[j].name for j in with_positives]
    row_names, col_names = names + ["(safe)"], names + ["(other)", "(allowed)"]
    matrix = np.zeros((len(row_names), len(col_names)))
    index = {j: i for i, j in enumerate(with_positives)}
    thresholds = default.thresholds if default is not None else np.full(scores.shape[1], 0.5)
    for s, t in zip(scores, truth):
        true_idx = next((index[j] for j in np.flatnonzero(t) if j in index), len(names))
        hits = np.flatnonzero(s >= thresholds)
        if not len(hits):
            col = len(names) + 1
        else:
            top = int(hits[np.argmax(s[hits])])
            col = index.get(top, len(names))
        matrix[true_idx, col] += 1
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 0.42 * len(col_names) + 3
    fig, ax = plt.subplots(figsize=(size, size * len(row_names) / len(col_names) + 1))
    ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(col_names)), [n[:28] for n in col_names], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(row_names)), [n[:28] for n in row_names], fontsize=7)
    for (r, c), value in np.ndenumerate(matrix):
        if value:
            ax.text(c, r, int(value), ha="center", va="center", fontsize=6,
                    color="white" if normalized[r, c] > 0.5 else "black")
    ax.set_xlabel("default profile blocks for (highest-scoring category over its threshold)")
    ax.set_ylabel("true label")
    ax.set_title("Confusion matrix (row-normalized colour, counts)")
    fig.tight_layout()
    out["confusion"] = _svg(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([f["recall"] for f in fbr], [f["false_block_rate"] for f in fbr], "o-", color="#9467bd")
    for f in fbr:
        ax.annotate(f"{f['false_block_rate']:.1%}", (f["recall"], f["false_block_rate"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("unsafe rows caught (recall)"), ax.set_ylabel("safe rows blocked")
    ax.set_title("False-block rate at fixed recalls (any category)")
    fig.tight_layout()
    out["false_blocks"] = _svg(fig)
    return out


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(bundle_id: str, data: Path, tables: dict, fbr: list[dict], figures: dict[str, str]) -> str:
    sections = []
    for pid, t in tables.items():
        sections.append(
            f"<h3>Profile <code>{html.escape(pid)}</code></h3>"
            f"<p>{t['caught']} of {t['should_block']} rows it should block are blocked "
            f"(recall {t['recall']:.1%}); {t['false_blocks']} of {t['safe']} other rows blocked "
            f"(false-block rate {t['false_block_rate']:.1%}).</p>"
            + _table(["category", "threshold", "rows", "blocked", "missed", "blocked for it", "wrongly blamed"],
                     [[c["category"], f"{c['threshold']:.2f}", c["rows"], c["blocked"], c["missed"],
                       c["blocked_for_it"], c["wrongly_blamed"]] for c in t["categories"] if c["rows"] or
                      c["blocked_for_it"]])
            + "<details><summary>by source list</summary>"
            + _table(["source list", "rows", "should block", "caught", "missed", "false blocks"],
                     [[name, s["rows"], s["should_block"], s["caught"], s["missed"], s["false_blocks"]]
                      for name, s in t["sources"].items()])
            + "</details>")
    fbr_table = _table(["recall", "false-block rate", "threshold"],
                       [[f"{f['recall']:.0%}", f"{f['false_block_rate']:.2%}", f"{f['threshold']:.3f}"] for f in fbr])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>brandsafe evaluation: {html.escape(bundle_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>brandsafe evaluation</h1>
<p>Bundle <code>{html.escape(bundle_id)}</code> on <code>{html.escape(str(data))}</code>.</p>
<h2>What each brand profile does</h2>
{''.join(sections)}
<h2>Precision-recall per category</h2>
<figure id="pr">{figures['pr']}</figure>
<h2>Reliability</h2>
<figure id="reliability">{figures['reliability']}</figure>
<h2>Confusion matrix</h2>
<figure id="confusion">{figures['confusion']}</figure>
<h2>False blocks at fixed recalls</h2>
{fbr_table}
<figure id="false-blocks">{figures['false_blocks']}</figure>
</body></html>
"""


def evaluate_bundle(bundle: Path, data: Path, policies_path: Path | None, threads: int = 0) -> dict:
    from brandsafe.release.evaluation import label_matrix, read_rows
    from brandsafe.service.model import LoadedBundle
    from brandsafe.service.policy import DEFAULT_POLICY_FILE, load_policies

    model = LoadedBundle(bundle, intra_op_threads=threads)
    try:
        policies = load_policies(policies_path or DEFAULT_POLICY_FILE, model.labels, model.thresholds)
        rows = read_rows(data, model.labels)
        texts = [r.text for r in rows]
        scores = np.concatenate([model.score(texts[i:i + 64]) for i in range(0, len(texts), 64)])
        truth = label_matrix(rows, model.labels) > 0.5
        pages = [r.page for r in rows]
        row_sources = sources(data)
        tables = profile_tables(scores, truth, row_sources, [p or _NO_PAGE for p in pages], policies, model)
        fbr = false_blocks_at_recalls(scores, truth)
        calibration = reliability(scores, truth)
        figures = plots(scores, truth, model, policies, calibration, fbr)
        return {"bundle_id": model.bundle_id, "tables": tables, "false_blocks_at_recalls": fbr,
                "ece": {model.labels.labels[j].name: c["ece"] for j, c in calibration.items()},
                "figures": figures}
    finally:
        model.close()


class _NoPage:
    url = ""  # text-only rows: no site, so no domain list applies


_NO_PAGE = _NoPage()


def format_tables(tables: dict) -> str:
    lines = []
    for pid, t in tables.items():
        lines.append(f"profile {pid}: blocks {t['caught']}/{t['should_block']} it should (recall {t['recall']:.1%}), "
                     f"{t['false_blocks']}/{t['safe']} others (false-block rate {t['false_block_rate']:.1%})")
        lines.append(f"  {'category':44s} {'thr':>5s} {'rows':>5s} {'blocked':>7s} {'missed':>6s}")
        for c in t["categories"]:
            if c["rows"]:
                lines.append(f"  {c['category'][:44]:44s} {c['threshold']:5.2f} {c['rows']:5d} {c['blocked']:7d} "
                             f"{c['missed']:6d}")
        worst = [(n, s) for n, s in t["sources"].items() if s["false_blocks"] or s["missed"]][:5]
        if worst:
            lines.append("  source lists with the most misses + false blocks: " + "; ".join(
                f"{n} missed {s['missed']}/{s['should_block']}, false {s['false_blocks']}/{s['safe']}"
                for n, s in worst))
    return "\n".join(lines)


def _cmd_evaluate(args) -> None:
    result = evaluate_bundle(args.bundle, args.data, args.policies, args.threads)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(render_html(result["bundle_id"], args.data, result["tables"],
                                     result["false_blocks_at_recalls"], result["figures"]))
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in result.items() if k != "figures"}, indent=2) + "\n")
    print(format_tables(result["tables"]))
    print(f"report: {args.html}", file=sys.stderr)
