"""Quality as the product is used: the views every training report measures, each for the model,
the TF-IDF baseline and the untrained encoder's zero-shot scores on the same rows.

- `bidders`: validation pages (domains never seen in training) as a bid request carries them:
  every bare domain gets a scheme and a meaningless path, safe and unsafe alike, so "has a path"
  means nothing. The headline.
- `as_listed`: the same pages as the source lists wrote them (most safe rows bare domains).
- `paths_stripped`: the same pages with every path removed (what the host alone says).
- `titles`: held-out title-only rows (headlines, posts), published on generic hosts; per source,
  since each source has its own style.
- `pages`: the realistic page set (`training/evalsets/`), written by hand and never trained on:
  harmful content, reporting about sensitive topics, and ordinary pages.

Evaluate an existing run on the same views (e.g. one trained before a change):

    python -m brandsafe.training.quality --run runs/minilm-cpu [--data URLS.jsonl CONTENT.jsonl]
"""
from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from brandsafe.labels import LabelSet
from brandsafe.service.policy import DEFAULT_POLICY_FILE, load_policies

from .augment import as_bidders_send, publish, strip_path
from .data import LabelledRow, read_rows
from .dataset import Examples, to_examples
from .evaluate import choose_thresholds, evaluate
from .failures import by_source

PAGE_SET = Path(__file__).resolve().parent / "evalsets" / "realistic-pages.jsonl"
HEADLINE = ("macro_f1", "unsafe_auroc", "false_block_rate_at_90_recall")
# The profiles the page-set table shows: the default, and the one for news advertisers.
TABLE_PROFILES = ("default", "news-publisher-friendly")


@dataclass
class View:
    examples: Examples
    sources: list[str]  # "source:source_label" per row ("" where the file names none)


def published(rows: list[LabelledRow], seed: int) -> list[LabelledRow]:
    """Title-only rows get a page on a generic host (see augment.publish); pages stay as they are."""
    rng = random.Random(seed)
    return [replace(r, url=publish(r.title, rng)) if not r.url else r for r in rows]


def validation_views(rows: list[LabelledRow], title_only: list[bool], examples: Examples,
                     val_idx: list[int], seed: int) -> dict[str, View]:
    """The validation views of one split (rows already published, `title_only` before that)."""
    paged = [i for i in val_idx if not title_only[i]]
    titled = [i for i in val_idx if title_only[i]]
    listed = examples.subset(paged)
    rng = random.Random(seed)
    views = {
        "bidders": Examples([replace(p, url=as_bidders_send(p.url, rng)) for p in listed.pages], listed.targets,
                            listed.origins),
        "as_listed": listed,
        "paths_stripped": Examples([replace(p, url=strip_path(p.url)) for p in listed.pages], listed.targets,
                                   listed.origins),
    }
    out = {name: View(ex, [rows[i].source for i in paged]) for name, ex in views.items()}
    if titled:
        out["titles"] = View(examples.subset(titled), [rows[i].source for i in titled])
    return out


def page_set_view(labels: LabelSet, taxonomy, path: Path = PAGE_SET) -> View | None:
    if not Path(path).is_file():
        return None
    rows = read_rows(path)
    return View(to_examples(rows, labels, taxonomy), [r.source for r in rows])


def tuning_set(views: dict[str, View]) -> Examples:
    """What temperature, thresholds and early stopping are chosen on: pages as bidders send them
    and held-out titles."""
    chosen = views["bidders"].examples
    return chosen + views["titles"].examples if "titles" in views else chosen


class Scorers:
    """Named scorers (texts → calibrated probabilities) with thresholds chosen on the tuning set."""

    def __init__(self, labels: LabelSet, tuning: Examples, min_precision: float):
        self.labels, self.tuning, self.min_precision = labels, tuning, min_precision
        self.score, self.thresholds, self.tuning_probs = {}, {}, {}
        self.tuning_texts = tuning.texts()

    def add(self, name: str, score, thresholds: np.ndarray | None = None) -> None:
        self.score[name] = score
        if thresholds is None:
            self.tuning_probs[name] = score(self.tuning_texts)
            thresholds = choose_thresholds(self.tuning_probs[name], self.tuning.targets,
                                           min_precision=self.min_precision)
        self.thresholds[name] = thresholds


def measure(views: dict[str, View], scorers: Scorers, page_view: View | None = None,
            policies_path: Path = DEFAULT_POLICY_FILE) -> dict:
    labels = scorers.labels
    out: dict = {"views": {}, "per_source": {}}
    for name, view in views.items():
        texts = view.examples.texts()
        probs_by = {scorer: score(texts) for scorer, score in scorers.score.items()}
        out["views"][name] = {scorer: {k: v for k, v in evaluate(probs, view.examples.targets, labels,
                                                                  scorers.thresholds[scorer]).items() if k in HEADLINE}
                              for scorer, probs in probs_by.items()}
        if name in ("bidders", "titles"):
            out["per_source"][name] = per_source(probs_by["model"], view, texts)
        if name == "titles":
            out["titles_by_source"] = titles_by_source(view, probs_by)
    if page_view is not None:
        out["pages"] = page_set(page_view, scorers, policies_path)
    return out


def per_source(probs: np.ndarray, view: View, texts: list[str]) -> list[dict]:
    """Per source list, at the view's 90 %-recall operating point: unsafe rows caught, safe rows
    blocked (the failure report's summary, `failures.by_source`, on this view's rows)."""
    rows = [{"labels": bool(t.max() > 0.5), "source": source or "-", "text": text}
            for t, source, text in zip(view.examples.targets, view.sources, texts)]
    return by_source(rows, probs.max(axis=1))[1]


def titles_by_source(view: View, probs_by_scorer: dict[str, np.ndarray]) -> list[dict]:
    """Each source's own rows: one label-style per source, so each scorer's AUROC is measured on
    that source's unsafe rows against every safe title (a source with one class has no AUROC alone)."""
    unsafe = view.examples.targets.max(axis=1) > 0.5
    safe = ~unsafe
    rows = []
    for source in sorted(set(view.sources)):
        mine = np.array([s == source for s in view.sources])
        pick = (mine & unsafe) | safe if (mine & unsafe).any() else mine | unsafe
        row = {"source": source, "rows": int(mine.sum()), "unsafe": int((mine & unsafe).sum())}
        for scorer, probs in probs_by_scorer.items():
            row[scorer] = _auroc(unsafe[pick], probs[pick].max(axis=1))
        rows.append(row)
    return rows


def page_set(view: View, scorers: Scorers, policies_path: Path) -> dict:
    """The realistic pages: harmful vs everything else (AUROC, per scorer), and per page what the
    model's top category is and whether each table profile blocks it."""
    labels = scorers.labels
    texts = view.examples.texts()
    harmful = np.array([s.split(":")[1] == "harmful" for s in view.sources])
    out = {"rows": len(texts), "harmful": int(harmful.sum()), "auroc": {}, "auroc_harmful_vs_safe": {}}
    plain_safe = np.array([s.split(":")[1] == "safe" for s in view.sources])
    probs_by = {name: score(texts) for name, score in scorers.score.items()}
    for name, probs in probs_by.items():
        out["auroc"][name] = _auroc(harmful, probs.max(axis=1))
        pick = harmful | plain_safe
        out["auroc_harmful_vs_safe"][name] = _auroc(harmful[pick], probs[pick].max(axis=1))
    thresholds = {l.id: float(t) for l, t in zip(labels, scorers.thresholds["model"])}
    policies = load_policies(policies_path, labels, thresholds)
    probs = probs_by["model"]
    pages = []
    for page, source, p, target in zip(view.examples.pages, view.sources, probs, view.examples.targets):
        _, group, topic = (source.split(":") + ["", ""])[:3]
        top = int(p.argmax())
        pages.append({"url": page.url, "title": page.title, "group": group, "topic": topic,
                      "expected": [labels.labels[j].name for j in np.flatnonzero(target)],
                      "top": labels.labels[top].name, "top_score": round(float(p[top]), 3),
                      "blocked": {pid: bool(policies[pid].decide(p)) for pid in TABLE_PROFILES if pid in policies}})
    out["pages"] = pages
    out["by_group"] = _by_group(pages)
    return out


def _by_group(pages: list[dict]) -> list[dict]:
    """Block rates per group and topic family (war-news and war-history → war): what a person checks
    first. Harmful pages are grouped by their expected category instead."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for p in pages:
        family = p["expected"][0] if p["group"] == "harmful" and p["expected"] else p["topic"].split("-")[0]
        groups[(p["group"], family)].append(p)
    rows = []
    for (group, family), members in sorted(groups.items()):
        tops = defaultdict(int)
        for p in members:
            tops[p["top"]] += 1
        rows.append({"group": group, "topic": family, "pages": len(members),
                     **{f"blocked_{pid}": sum(p["blocked"].get(pid, False) for p in members) for pid in TABLE_PROFILES},
                     "top_categories": dict(sorted(tops.items(), key=lambda kv: -kv[1])[:2])})
    return rows


def _auroc(truth: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # the report's, not the training loop's (see report.py)

    return float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else float("nan")


def markdown(quality: dict) -> list[str]:
    names = {"macro_f1": "macro-F1", "unsafe_auroc": "AUROC", "false_block_rate_at_90_recall": "false-block @90"}
    scorers = list(next(iter(quality["views"].values())).keys())
    lines = ["## Quality as the product is used", "",
             "Validation views (domains and titles never seen in training); `bidders` is the headline: every bare "
             "domain given a scheme and a meaningless path, as a bid request carries it.", "",
             "| view | " + " | ".join(f"{s} {m}" for m in names.values() for s in scorers) + " |",
             "|---|" + "---:|" * (len(names) * len(scorers))]
    for view, row in quality["views"].items():
        cells = []
        for key in names:
            for s in scorers:
                v = row[s][key]
                cells.append(f"{v:.1%}" if key.startswith("false") else f"{v:.4f}")
        lines.append(f"| {view} | " + " | ".join(cells) + " |")
    if "titles_by_source" in quality:
        lines += ["", "### Titles by source (unsafe AUROC: the source's unsafe rows against every safe title)", "",
                  "| source | rows | unsafe | " + " | ".join(scorers) + " |", "|---|---:|---:|" + "---:|" * len(scorers)]
        for r in quality["titles_by_source"]:
            lines.append(f"| {r['source']} | {r['rows']} | {r['unsafe']} | " +
                         " | ".join(f"{r[s]:.4f}" for s in scorers) + " |")
    for name, rows in quality.get("per_source", {}).items():
        lines += ["", f"### Per source list, `{name}` view (model at its 90 %-recall threshold)", "",
                  "| source | unsafe caught | safe blocked |", "|---|---:|---:|"]
        for g in rows:
            caught = f"{g['caught']}/{g['unsafe']}" if g["unsafe"] else "-"
            blocked = f"{g['blocked']}/{g['safe']} ({g['blocked'] / g['safe']:.0%})" if g["safe"] else "-"
            lines.append(f"| {g['source']} | {caught} | {blocked} |")
    pages = quality.get("pages")
    if pages:
        lines += ["", f"### Realistic page set ({pages['rows']} pages, {pages['harmful']} harmful; never trained on)", "",
                  "| scorer | AUROC harmful vs rest | AUROC harmful vs ordinary pages |", "|---|---:|---:|"]
        for s in scorers:
            lines.append(f"| {s} | {pages['auroc'][s]:.4f} | {pages['auroc_harmful_vs_safe'][s]:.4f} |")
        lines += ["", "| group | topic (harmful: expected category) | pages | " + " | ".join(f"blocked ({p})" for p in TABLE_PROFILES) +
                  " | model's top categories |", "|---|---|---:|" + "---:|" * len(TABLE_PROFILES) + "---|"]
        for r in pages["by_group"]:
            tops = ", ".join(f"{k} ×{v}" for k, v in r["top_categories"].items())
            lines.append(f"| {r['group']} | {r['topic']} | {r['pages']} | " +
                         " | ".join(str(r[f'blocked_{p}']) for p in TABLE_PROFILES) + f" | {tops} |")
        wrong = [p for p in pages["pages"] if p["group"] != "harmful" and p["blocked"].get("default")]
        lines += ["", f"Reporting and ordinary pages blocked under `default` ({len(wrong)}):", ""]
        lines += [f"- {p['group']}/{p['topic']}: {p['title'] or p['url']} → {p['top']} {p['top_score']:.2f}"
                  for p in wrong]
    return lines


def run_scorer(run_dir: Path):
    """(labels, calibrated scorer, thresholds) of a finished training run's merged model."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from brandsafe.tokenization import BatchTokenizer

    from . import calibrate

    run_dir = Path(run_dir)
    labels = LabelSet.load(run_dir / "labels.json")
    info = json.loads((run_dir / "run.json").read_text())
    temperature = json.loads((run_dir / "calibration.json").read_text())["temperature"]
    saved = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "merged").eval()
    tokenizer = BatchTokenizer(run_dir / "merged" / "tokenizer.json", info["max_length"], info["pad_token_id"],
                               info["pad_token"])

    @torch.no_grad()
    def score(texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 128):
            batch = {k: torch.from_numpy(v) for k, v in tokenizer(texts[start:start + 128]).items()
                     if k in ("input_ids", "attention_mask")}
            out.append(model(**batch).logits.float().numpy())
        return calibrate.calibrated(np.concatenate(out), temperature) if out else np.zeros((0, len(labels)))

    return labels, score, np.array([saved[l.id] for l in labels]), info


def main(argv=None) -> None:
    from brandsafe.cli import DEFAULT_CONTENT_DATA, DEFAULT_TAXONOMY, DEFAULT_TRAIN_DATA
    from brandsafe.taxonomy import Taxonomy

    from .baseline import Baseline
    from .train import load_split
    from .recipe import load_recipe
    from .zeroshot import PrototypeScorer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="training run folder (merged model inside)")
    parser.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_TRAIN_DATA, DEFAULT_CONTENT_DATA],
                        help="labelled data files (default: the URL and the content data)")
    parser.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON here")
    args = parser.parse_args(argv)

    labels, score, thresholds, info = run_scorer(args.run)
    recipe = load_recipe(info["recipe"]["source"])
    taxonomy = Taxonomy.load(args.taxonomy)
    split = load_split(recipe, args.data, taxonomy, labels)
    scorers = Scorers(labels, tuning_set(split.views), recipe.threshold_min_precision)
    scorers.add("model", score, thresholds)
    baseline = Baseline(recipe.seed).fit(split.train)
    scorers.add("tfidf", baseline.predict)
    scorers.add("zero-shot", PrototypeScorer(labels, taxonomy))
    quality = measure(split.views, scorers, page_set_view(labels, taxonomy))
    print("\n".join(markdown(quality)))
    if args.out:
        args.out.write_text(json.dumps(quality, indent=2) + "\n")


if __name__ == "__main__":
    main()
