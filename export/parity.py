"""Parity gate: the exported ONNX model must agree with the PyTorch model it came from."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnxruntime as ort
import torch

from brandsafe.tokenization import BatchTokenizer

MIN_TOP_LABEL_AGREEMENT = 0.99
# Bound on the 99th percentile of |Δ calibrated probability|: int8 rounding moves scores a
# little; anything more means a broken graph, not quantization noise.
MAX_P99_SCORE_DRIFT = {"fp32": 0.001, "fp16": 0.02, "int8": 0.06}
# Scores the reference itself puts within this of each other (or of a threshold) are a tie the
# export may break either way: twice what op reordering alone may move one score. Without it a
# random-weights test model, whose top labels sit 0.0004 apart, fails fp16 parity on one CPU and
# passes on another.
TIE_TOLERANCE = 2 * MAX_P99_SCORE_DRIFT["fp32"]


class ParityError(RuntimeError):
    pass


@dataclass
class ParityResult:
    rows: int
    top_label_agreement: float
    p99_score_drift: float
    max_score_drift: float
    bound_p99_score_drift: float
    min_top_label_agreement: float
    strict_top_label_agreement: float = 1.0  # ties counted as disagreements; reported, not gated
    device: str = "cpu"  # where both sides ran: "cuda" when a GPU checked the fp16 graph

    @property
    def passed(self) -> bool:
        return (self.top_label_agreement >= self.min_top_label_agreement
                and self.p99_score_drift <= self.bound_p99_score_drift)

    def as_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def top_labels(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The highest-scoring label where any label passes its threshold, else -1 (brand-safe)."""
    best = probs.argmax(axis=1)
    passes = (probs >= thresholds[None, :]).any(axis=1)
    return np.where(passes, best, -1)


def top_label_agreement(p_reference: np.ndarray, p_candidate: np.ndarray, thresholds: np.ndarray,
                        tie: float = TIE_TOLERANCE) -> tuple[float, float]:
    """(agreement with ties excused, strict agreement). A row whose decision differs still agrees
    when the reference could have made the candidate's decision within `tie`: the candidate's label
    scores within `tie` of the reference's top and clears its threshold within `tie`, or the
    candidate blocks nothing and no reference label clears its threshold by `tie`."""
    reference, candidate = top_labels(p_reference, thresholds), top_labels(p_candidate, thresholds)
    same = reference == candidate
    rows = np.arange(len(candidate))
    label = np.maximum(candidate, 0)
    chosen = p_reference[rows, label]
    near_top = chosen >= p_reference.max(axis=1) - tie
    near_pass = chosen >= thresholds[label] - tie
    near_nothing = (p_reference - thresholds[None, :]).max(axis=1) < tie
    tied = np.where(candidate >= 0, near_top & near_pass, near_nothing)
    return float((same | tied).mean()), float(same.mean())


def on_gpu() -> bool:
    """Parity runs where the model will serve when a GPU is here: fp16 kernels on CUDA are what
    production computes, and a 4B reference model is minutes faster there than on CPU."""
    return torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()


def check(torch_model, onnx_path, tokenizer: BatchTokenizer, texts: list[str], temperature: float,
          thresholds: np.ndarray, precision: str, batch_size: int = 64, gpu: bool | None = None) -> ParityResult:
    gpu = on_gpu() if gpu is None else gpu
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(onnx_path), providers=providers)
    input_names = {i.name for i in session.get_inputs()}
    device = torch.device("cuda" if gpu else "cpu")
    torch_model.eval().to(device)
    torch_logits, onnx_logits = [], []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size])
        with torch.no_grad():
            torch_logits.append(torch_model(input_ids=torch.from_numpy(batch["input_ids"]).to(device),
                                            attention_mask=torch.from_numpy(batch["attention_mask"]).to(device)
                                            ).logits.float().cpu().numpy())
        onnx_logits.append(session.run(["logits"], {k: v for k, v in batch.items() if k in input_names})[0])
    p_torch = 1 / (1 + np.exp(-np.concatenate(torch_logits) / temperature))
    p_onnx = 1 / (1 + np.exp(-np.concatenate(onnx_logits).astype(np.float32) / temperature))
    drift = np.abs(p_torch - p_onnx).max(axis=1)
    agreement, strict = top_label_agreement(p_torch, p_onnx, thresholds)
    return ParityResult(len(texts), agreement, float(np.percentile(drift, 99)), float(drift.max()),
                        MAX_P99_SCORE_DRIFT[precision], MIN_TOP_LABEL_AGREEMENT, strict, device.type)
