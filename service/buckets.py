"""Shape buckets for device backends: every batch runs at a (rows, length) shape warmed at start-up.

A GPU backend compiles or autotunes per input shape (cuDNN/cuBLAS algorithm choice, TensorRT
engine profiles, CUDA graphs). An unseen shape on the request path costs milliseconds to seconds,
so batches are padded up to the next bucket: rows to the batcher's batch sizes, tokens to a few
sequence lengths. Padding rows repeat the first row (a real input: no all-masked attention row).
"""
from __future__ import annotations

import numpy as np

SEQ_BUCKETS = (16, 32, 64, 128)


def seq_buckets(max_length: int) -> list[int]:
    """Sequence-length buckets up to and including the bundle's max length."""
    return sorted({b for b in SEQ_BUCKETS if b < max_length} | {max_length})


def bucket_for(size: int, buckets: list[int] | tuple[int, ...]) -> int:
    for bucket in buckets:
        if bucket >= size:
            return bucket
    raise ValueError(f"{size} is larger than the largest bucket {max(buckets)}")


def pad_rows(batch: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """`batch` with its first row repeated until it has `rows` rows."""
    have = next(iter(batch.values())).shape[0]
    if have == rows:
        return batch
    return {k: np.concatenate([v, np.repeat(v[:1], rows - have, axis=0)]) for k, v in batch.items()}


def pad_length(batch: dict[str, np.ndarray], length: int, pad_token_id: int) -> dict[str, np.ndarray]:
    """`batch` cut or right-padded to `length` tokens (pad id for ids, 0 for masks and type ids)."""
    have = batch["input_ids"].shape[1]
    if have >= length:
        return {k: v[:, :length] for k, v in batch.items()}
    out = {}
    for key, value in batch.items():
        fill = pad_token_id if key == "input_ids" else 0
        out[key] = np.pad(value, ((0, 0), (0, length - have)), constant_values=fill)
    return out
