"""The evaluation report: the model beside the classical baseline, the shortcut check, the probes."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from brandsafe.labels import LabelSet

from . import calibrate
from .augment import has_path, neutral_path, strip_path
from .dataset import Examples
from .evaluate import choose_thresholds, evaluate
from .probes import load_probes, probe_results
from .recipe import Recipe

log = logging.getLogger(__name__)
HEADLINE = ("macro_f1", "unsafe_auroc", "false_block_rate_at_90_recall")


def build(recipe: Recipe, labels: LabelSet, train_set: Examples, val_set: Examples, probs: np.ndarray,
          thresholds: np.ndarray, temperature: float, val_logits: np.ndarray, score_texts, facts: dict,
          probes_path: Path | None) -> dict:
    model_metrics = evaluate(probs, val_set.targets, labels, thresholds)

    # Imported here: scikit-learn is the report's, not the training loop's (loadtest/gpu_check.py runs
    # the loop on a machine that has no scikit-learn).
    from .baseline import Baseline

    started = time.time()
    baseline = Baseline(recipe.seed).fit(train_set)
    baseline_probs = baseline.predict(val_set.texts())
    baseline_thresholds = choose_thresholds(baseline_probs, val_set.targets,
                                            min_precision=recipe.threshold_min_precision)
    baseline_metrics = evaluate(baseline_probs, val_set.targets, labels, baseline_thresholds)
    log.info("baseline fitted and scored in %.0fs", time.time() - started)

    def model_scores(texts):
        return calibrate.calibrated(score_texts(texts), temperature)

    shortcut = {}
    for name, transform in _shortcut_variants(val_set, recipe.seed).items():
        texts = val_set.texts(transform)
        shortcut[name] = {
            "model": _headline(evaluate(model_scores(texts), val_set.targets, labels, thresholds)),
            "baseline": _headline(evaluate(baseline.predict(texts), val_set.targets, labels, baseline_thresholds)),
        }

    probes = None
    if probes_path and Path(probes_path).is_file():
        loaded = load_probes(Path(probes_path), labels)
        probe_texts = Examples([p.page for p in loaded], np.zeros((len(loaded), len(labels))), []).texts()
        probes = {"file": str(probes_path),
                  "model": probe_results(loaded, model_scores(probe_texts), labels, thresholds),
                  "baseline": probe_results(loaded, baseline.predict(probe_texts), labels, baseline_thresholds)}

    return {
        "recipe": recipe.name,
        "train_rows": len(train_set),
        "validation_rows": len(val_set),
        **facts,
        "temperature": temperature,
        "bce_before_calibration": calibrate.bce(val_logits, val_set.targets),
        "bce_after_calibration": calibrate.bce(val_logits / temperature, val_set.targets),
        "model": model_metrics,
        "baseline": baseline_metrics,
        "vs_baseline": _comparison(model_metrics, baseline_metrics),
        "shortcut_check": shortcut,
        "probes": probes,
    }


def context_check(retriever, top_k: int, val_set: Examples, citations: Examples, labels: LabelSet, score_texts,
                  temperature: float, thresholds: np.ndarray) -> dict:
    """Validation with and without retrieved passages, and the citation check: on made-up hosts whose
    label only their note gives, how often the predicted label set is exactly the note's."""
    from .context import with_retrieval

    def predict(examples: Examples) -> np.ndarray:
        return calibrate.calibrated(score_texts(examples.texts()), temperature)

    def follows(examples: Examples) -> float:
        predicted = predict(examples) >= thresholds[None, :]
        return float((predicted == (examples.targets > 0.5)).all(axis=1).mean())

    with_passages = evaluate(predict(with_retrieval(val_set, retriever, top_k)), val_set.targets, labels, thresholds)
    return {
        "index_version": retriever.version,
        "top_k": top_k,
        "validation_without_context": _headline(evaluate(predict(val_set), val_set.targets, labels, thresholds)),
        "validation_with_retrieval": _headline(with_passages),
        "citation_rows": len(citations),
        "citation_accuracy_with_passage": follows(with_retrieval(citations, retriever, top_k)),
        "citation_accuracy_without_passage": follows(citations),
    }


def _shortcut_variants(val_set: Examples, seed: int) -> dict:
    """Validation rows as they are; with every path stripped; with neutral paths added to bare
    safe hosts. A model that keys on path presence moves a lot between these."""
    safe = {id(p) for p, t in zip(val_set.pages, val_set.targets) if not t.any()}
    path_rng = random.Random(seed)

    def strip(page):
        return replace(page, url=strip_path(page.url)) if page.url and has_path(page.url) else page

    def add_to_safe(page):
        if id(page) in safe and page.url and not has_path(page.url):
            return replace(page, url=strip_path(page.url) + neutral_path(path_rng))
        return page

    return {"as_is": None, "paths_stripped": strip, "neutral_paths_on_safe": add_to_safe}


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE}


def _comparison(model: dict, baseline: dict) -> dict:
    out = {}
    for key in HEADLINE:
        out[key] = {"model": model[key], "baseline": baseline[key], "difference": model[key] - baseline[key],
                    "ratio": model[key] / baseline[key] if baseline[key] else float("inf")}
    per_category = {}
    for m, b in zip(model["per_category"], baseline["per_category"]):
        if m["support"]:
            per_category[m["name"]] = {"model_f1": m["f1"], "baseline_f1": b["f1"]}
    out["per_category_f1"] = per_category
    return out


def markdown(report: dict) -> str:
    model, baseline, versus = report["model"], report["baseline"], report["vs_baseline"]
    lines = [
        f"# Evaluation report: {report['recipe']}", "",
        f"Trained {report['optimizer_steps']} optimizer steps (kept step {report['best_step']}, best validation "
        f"macro-F1) on {report['train_rows']} rows in {report['train_seconds'] / 60:.1f} min. Validation: "
        f"{report['validation_rows']} rows ({model['unsafe_rows']} unsafe) on registrable domains never seen in "
        f"training. Temperature {report['temperature']:.3f} (validation BCE {report['bce_before_calibration']:.4f} "
        f"→ {report['bce_after_calibration']:.4f}).", "",
        "## Model vs baseline (TF-IDF char 2-5-grams + logistic regression, same split)", "",
        "| metric | model | baseline | model − baseline | model / baseline |", "|---|---:|---:|---:|---:|",
    ]
    names = {"macro_f1": "macro-F1", "unsafe_auroc": "unsafe-vs-safe AUROC",
             "false_block_rate_at_90_recall": "false-block rate on safe @ 90 % unsafe recall"}
    for key, label in names.items():
        v = versus[key]
        lines.append(f"| {label} | {v['model']:.4f} | {v['baseline']:.4f} | {v['difference']:+.4f} | {v['ratio']:.2f}× |")
    lines += ["", "## Per category (model thresholds chosen on validation)", "",
              "| category | id | support | precision | recall | F1 | baseline F1 | threshold |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for m, b in zip(model["per_category"], baseline["per_category"]):
        lines.append(f"| {m['name']} | {m['id']} | {m['support']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                     f"{m['f1']:.3f} | {b['f1']:.3f} | {m['threshold']:.2f} |")
    lines += ["", "## Shortcut check: does the score follow the path, or the words?", "",
              "| validation variant | model macro-F1 | model AUROC | model false-block | baseline macro-F1 | "
              "baseline AUROC | baseline false-block |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in report["shortcut_check"].items():
        m, b = row["model"], row["baseline"]
        lines.append(f"| {name} | {m['macro_f1']:.4f} | {m['unsafe_auroc']:.4f} | {m['false_block_rate_at_90_recall']:.2%} "
                     f"| {b['macro_f1']:.4f} | {b['unsafe_auroc']:.4f} | {b['false_block_rate_at_90_recall']:.2%} |")
    probes = report.get("probes")
    if probes:
        lines += ["", f"## Title probes ({probes['file']})", "",
                  f"Model right on **{probes['model']['rate']:.0%}** of {len(probes['model']['probes'])} probes "
                  f"(baseline {probes['baseline']['rate']:.0%}).", "",
                  "| title | expected | model says | ok |", "|---|---|---|---|"]
        for p in probes["model"]["probes"]:
            lines.append(f"| {p['title']} | {p['expected']} | {p['predicted']} ({p['top_score']:.2f}) | "
                         f"{'yes' if p['correct'] else 'NO'} |")
    ctx = report.get("context")
    if ctx:
        without, with_ = ctx["validation_without_context"], ctx["validation_with_retrieval"]
        lines += ["", f"## Context (retrieval, index {ctx['index_version']}, top {ctx['top_k']})", "",
                  "| validation | macro-F1 | AUROC | false-block |", "|---|---:|---:|---:|",
                  f"| without context | {without['macro_f1']:.4f} | {without['unsafe_auroc']:.4f} | "
                  f"{without['false_block_rate_at_90_recall']:.2%} |",
                  f"| with retrieved passages | {with_['macro_f1']:.4f} | {with_['unsafe_auroc']:.4f} | "
                  f"{with_['false_block_rate_at_90_recall']:.2%} |", "",
                  f"Citation check ({ctx['citation_rows']} made-up hosts whose label only a passage gives): the "
                  f"answer follows the passage on **{ctx['citation_accuracy_with_passage']:.0%}** with retrieval, "
                  f"{ctx['citation_accuracy_without_passage']:.0%} without."]
    return "\n".join(lines) + "\n"
