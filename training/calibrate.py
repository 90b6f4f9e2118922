"""Temperature scaling for multi-label sigmoid outputs, fitted on validation logits."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def bce(logits: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(sigmoid(logits), 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The T > 0 minimising validation BCE of sigmoid(logits / T): a coarse log-grid, then a
    finer one around the best point (one parameter; no optimiser needed)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = min(grid, key=lambda t: bce(logits / t, targets))
    fine = np.exp(np.linspace(np.log(best) - 0.06, np.log(best) + 0.06, 61))
    return float(min(fine, key=lambda t: bce(logits / t, targets)))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    return sigmoid(logits / temperature)
