"""The evaluation report: the model beside the classical baseline and the untrained encoder's
zero-shot scores, on every view of `quality` (pages as bidders send them, as listed, titles, the
realistic page set), and the probes."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from brandsafe.labels import LabelSet

from . import calibrate
from . import quality
from .dataset import Examples
from .evaluate import evaluate
from .probes import load_probes, probe_results
from .recipe import Recipe

log = logging.getLogger(__name__)
HEADLINE = quality.HEADLINE


def build(recipe: Recipe, labels: LabelSet, train_set: Examples, val_set: Examples, probs: np.ndarray,
          thresholds: np.ndarray, temperature: float, val_logits: np.ndarray, score_texts, facts: dict,
          probes_path: Path | None, views: dict | None = None, taxonomy=None) -> dict:
    model_metrics = evaluate(probs, val_set.targets, labels, thresholds)

    def model_scores(texts):
        return calibrate.calibrated(score_texts(texts), temperature)

    # Imported here: scikit-learn is the report's, not the training loop's (loadtest/gpu_check.py runs
    # the loop on a machine that has no scikit-learn).
    from .baseline import Baseline
    from .zeroshot import PrototypeScorer

    started = time.time()
    baseline = Baseline(recipe.seed).fit(train_set)
    scorers = quality.Scorers(labels, val_set, recipe.threshold_min_precision)
    scorers.add("model", model_scores, thresholds)
    scorers.add("tfidf", baseline.predict)
    if taxonomy is not None:
        scorers.add("zero-shot", PrototypeScorer(labels, taxonomy))
    baseline_metrics = evaluate(scorers.tuning_probs["tfidf"], val_set.targets, labels, scorers.thresholds["tfidf"])
    log.info("baseline and zero-shot scorers ready in %.0fs", time.time() - started)
    measured = quality.measure(views, scorers, quality.page_set_view(labels, taxonomy)) if views else None

    probes = None
    if probes_path and Path(probes_path).is_file():
        loaded = load_probes(Path(probes_path), labels)
        probe_texts = Examples([p.page for p in loaded], np.zeros((len(loaded), len(labels))), []).texts()
        probes = {"file": str(probes_path), **{name: probe_results(loaded, score(probe_texts), labels,
                                                                    scorers.thresholds[name])
                                               for name, score in scorers.score.items()}}

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
        "quality": measured,
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
    if report.get("quality"):
        lines += [""] + quality.markdown(report["quality"])
    probes = report.get("probes")
    if probes:
        others = ", ".join(f"{name} {probes[name]['rate']:.0%}" for name in probes if name not in ("file", "model"))
        lines += ["", f"## Title probes ({probes['file']})", "",
                  f"Model right on **{probes['model']['rate']:.0%}** of {len(probes['model']['probes'])} probes "
                  f"({others}).", "",
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
