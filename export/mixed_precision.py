"""Int8 where it holds parity, fp32 where it does not.

Dynamic int8 quantizes each activation per tensor; a fine-tuned encoder with outlier features
can lose more than the parity bound that way. Rather than ship the drift or give up int8
entirely, measure how much each weight MatMul alone moves the scores, then quantize the least
sensitive ones — as many as still pass the bound with a margin — and keep the rest in fp32.
"""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm.auto import tqdm

from brandsafe.tokenization import BatchTokenizer

from .onnx_export import quantize_int8, weight_matmuls

log = logging.getLogger(__name__)


def _probabilities(model: Path, batches: list[dict], temperature: float) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    logits = np.concatenate([session.run(["logits"], {k: v for k, v in b.items() if k in names})[0] for b in batches])
    return 1 / (1 + np.exp(-logits.astype(np.float32) / temperature))


def _p99_drift(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.percentile(np.abs(reference - other).max(axis=1), 99))


def search(fp32_model: Path, out_dir: Path, tokenizer: BatchTokenizer, texts: list[str], temperature: float,
           drift_bound: float, margin: float = 0.7) -> tuple[Path, list[str]]:
    """(int8 model, nodes kept in fp32). Drift is measured against the fp32 ONNX model, which the
    parity gate separately holds to the PyTorch model."""
    batches = [tokenizer(texts[i:i + 64]) for i in range(0, len(texts), 64)]
    reference = _probabilities(fp32_model, batches, temperature)
    nodes = weight_matmuls(fp32_model)
    target = drift_bound * margin
    # Minutes on a 2-core CPU: at most one graph for all-int8, one per node, and the bisection's.
    progress = tqdm(total=1 + len(nodes) + math.ceil(math.log2(len(nodes) + 1)), desc="int8 search",
                    unit="graph")

    def drift_with(quantized: list[str]) -> float:
        keep = [n for n in nodes if n not in set(quantized)]
        with tempfile.TemporaryDirectory() as tmp:
            drift = _p99_drift(reference, _probabilities(quantize_int8(fp32_model, Path(tmp), keep), batches,
                                                         temperature))
        progress.update()
        return drift

    all_drift = drift_with(nodes)
    if all_drift <= target:
        progress.close()
        return quantize_int8(fp32_model, out_dir), []
    sensitivity = {node: drift_with([node]) for node in nodes}
    order = sorted(nodes, key=sensitivity.get)
    low, high = 0, len(order)  # the largest k whose k least sensitive nodes pass
    while low < high:
        middle = (low + high + 1) // 2
        if drift_with(order[:middle]) <= target:
            low = middle
        else:
            high = middle - 1
    progress.close()
    kept = order[low:]
    log.info("int8 for %d of %d MatMuls (all-int8 p99 drift %.3f > target %.3f); fp32 kept for: %s",
             low, len(nodes), all_drift, target, ", ".join(kept))
    return quantize_int8(fp32_model, out_dir, kept), kept
