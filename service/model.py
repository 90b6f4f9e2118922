"""A loaded bundle: verified files, tokenizer, backend, labels, calibration and thresholds."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from brandsafe import bundle as bundle_files
from brandsafe.bundle import BundleInfo
from brandsafe.labels import LabelSet
from brandsafe.tokenization import BatchTokenizer

from . import backend as backends
from .buckets import bucket_for, pad_length, pad_rows, seq_buckets

log = logging.getLogger(__name__)


class LoadedBundle:
    def __init__(self, bundle_dir: str | Path, intra_op_threads: int = 0, device: str = "auto",
                 backend: str = "onnxruntime", torch_model: str | Path | None = None):
        self.dir = Path(bundle_dir)
        bundle_files.verify(self.dir)  # refuse tampered or incomplete bundles before reading anything
        self.info = BundleInfo.load(self.dir)
        self.labels = LabelSet.load(self.dir / "labels.json")
        self.temperature = float(json.loads((self.dir / "calibration.json").read_text())["temperature"])
        self.thresholds = json.loads((self.dir / "thresholds.json").read_text())["thresholds"]
        self.tokenizer = BatchTokenizer(self.dir / "tokenizer.json", self.info.max_length,
                                        self.info.pad_token_id, self.info.pad_token)
        self.backend = backends.create(backend, self.dir / self.info.model_file, intra_op_threads, device,
                                       Path(torch_model) if torch_model else None)
        # On a GPU every batch runs at a warmed (rows, length) bucket; on CPU rows run at their own length.
        self.bucketed = getattr(self.backend, "on_device", False)
        self.seq_buckets = seq_buckets(self.info.max_length)
        self.warmed_shapes: list[tuple[int, int]] = []

    @property
    def bundle_id(self) -> str:
        return self.info.bundle_id

    def score(self, texts: list[str]) -> np.ndarray:
        """Calibrated per-label probabilities, shape (len(texts), labels). Runs on the calling thread.

        Rows run in groups of equal padded length (the tokenizer pads to a multiple of 8), one
        backend call per group: real page texts are mostly 8 tokens with a tail to 64, and on CPU a
        batch padded to its longest row spends most of its compute on padding. Each row gets
        exactly the padding it would get alone, so batching never changes its input shape.
        """
        if not texts:
            return np.empty((0, len(self.labels.labels)), dtype=np.float32)
        batch = self.tokenizer(texts)
        if self.bucketed:
            return self._calibrated(self._execute_bucketed(batch))
        padded = (batch["attention_mask"].sum(axis=1) + 7) // 8 * 8
        logits = None
        for length in np.unique(padded):
            rows = np.flatnonzero(padded == length)
            if len(rows) == len(texts):
                part = {k: v[:, :length] for k, v in batch.items()}
            else:
                part = {k: v[rows, :length] for k, v in batch.items()}
            out = self.backend.execute(part)
            if logits is None:
                logits = np.empty((len(texts), out.shape[1]), dtype=np.float32)
            logits[rows] = out
        return self._calibrated(logits)

    def _calibrated(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(logits / self.temperature, -60, 60)))

    def _execute_bucketed(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """One device call for the whole batch, padded to the next sequence-length bucket (the
        backend pads rows to its batch bucket): a GPU is not faster on shorter rows in small
        batches, but an unwarmed shape would cost it far more than the padding."""
        length = bucket_for(int(batch["attention_mask"].sum(axis=1).max()), self.seq_buckets)
        return self.backend.execute(pad_length(batch, length, self.info.pad_token_id))

    def warm_up(self, batch_sizes: list[int]) -> None:
        """Run every shape the request path can produce before health says SERVING."""
        if not self.bucketed:
            for size in batch_sizes:
                self.score(["warm up example com | title: warm up"] * size)
            return
        self.backend.batch_buckets = sorted(set(batch_sizes))
        row = self.tokenizer(["warm up example com | title: warm up"])
        for rows in self.backend.batch_buckets:
            for length in self.seq_buckets:
                self.backend.execute(pad_rows(pad_length(row, length, self.info.pad_token_id), rows))
                self.warmed_shapes.append((rows, length))
        log.info("warmed %d shapes: batch %s x length %s", len(self.warmed_shapes), self.backend.batch_buckets,
                 self.seq_buckets)

    def close(self) -> None:
        self.backend.finalize()
