"""Validation metrics: per-category P/R/F1, macro-F1, unsafe-vs-safe AUROC, and the false-block
rate on safe rows at the operating point that catches 90 % of unsafe rows."""
from __future__ import annotations

import numpy as np

from brandsafe.labels import LabelSet

# scikit-learn is imported in the metric functions that use it: train.py imports this module, and its
# loop also runs where scikit-learn is not installed (loadtest/gpu_check.py on the GPU test machine).
UNSAFE_RECALL_TARGET = 0.90


def choose_thresholds(probs: np.ndarray, targets: np.ndarray, min_support: int = 5, default: float = 0.5,
                      min_precision: float = 0.0) -> np.ndarray:
    """Per category, the threshold that maximises F1 on validation (among those reaching
    `min_precision`); categories with too few validation positives keep `default`."""
    thresholds = np.full(probs.shape[1], default, dtype=np.float64)
    candidates = np.linspace(0.05, 0.95, 91)
    for j in range(probs.shape[1]):
        y = targets[:, j] > 0.5
        if y.sum() < min_support:
            continue
        best_f1, best_t = -1.0, default
        for t in candidates:
            pred = probs[:, j] >= t
            tp = float((pred & y).sum())
            precision = tp / max(pred.sum(), 1)
            recall = tp / y.sum()
            f1 = 2 * precision * recall / max(precision + recall, 1e-9)
            if precision >= min_precision and f1 > best_f1:
                best_f1, best_t = f1, t
        thresholds[j] = best_t
    return thresholds


def unsafe_score(probs: np.ndarray) -> np.ndarray:
    """One risk score per row: the highest category probability (any label means not brand-safe)."""
    return probs.max(axis=1)


def false_block_rate_at_recall(scores: np.ndarray, unsafe: np.ndarray, recall: float = UNSAFE_RECALL_TARGET) -> tuple[float, float]:
    """(false-block rate on safe rows, threshold) at the highest threshold that still flags
    `recall` of the unsafe rows."""
    unsafe_scores = np.sort(scores[unsafe])[::-1]
    if len(unsafe_scores) == 0 or (~unsafe).sum() == 0:
        return float("nan"), float("nan")
    k = int(np.ceil(recall * len(unsafe_scores))) - 1
    threshold = float(unsafe_scores[k])
    return float((scores[~unsafe] >= threshold).mean()), threshold


def macro_f1(probs: np.ndarray, targets: np.ndarray, thresholds: np.ndarray) -> float:
    """Mean F1 over the categories that have validation positives."""
    from sklearn.metrics import precision_recall_fscore_support

    truth = targets > 0.5
    _, _, f1, support = precision_recall_fscore_support(truth, probs >= thresholds[None, :], average=None,
                                                        zero_division=0)
    return float(f1[support > 0].mean()) if (support > 0).any() else float("nan")


def evaluate(probs: np.ndarray, targets: np.ndarray, labels: LabelSet, thresholds: np.ndarray) -> dict:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    pred = probs >= thresholds[None, :]
    truth = targets > 0.5
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    per_category = []
    for j, label in enumerate(labels):
        per_category.append({
            "id": label.id, "name": label.name, "support": int(support[j]),
            "precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
            "threshold": float(thresholds[j]),
        })
    scored = [c for c in per_category if c["support"] > 0]
    unsafe = truth.any(axis=1)
    scores = unsafe_score(probs)
    auroc = float(roc_auc_score(unsafe, scores)) if 0 < unsafe.sum() < len(unsafe) else float("nan")
    fbr, fbr_threshold = false_block_rate_at_recall(scores, unsafe)
    return {
        "rows": int(len(targets)),
        "unsafe_rows": int(unsafe.sum()),
        "macro_f1": float(np.mean([c["f1"] for c in scored])) if scored else float("nan"),
        "macro_f1_categories": len(scored),
        "unsafe_auroc": auroc,
        "false_block_rate_at_90_recall": fbr,
        "unsafe_threshold_at_90_recall": fbr_threshold,
        "per_category": per_category,
    }
