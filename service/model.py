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

from .backend import OnnxRuntimeBackend

log = logging.getLogger(__name__)


class LoadedBundle:
    def __init__(self, bundle_dir: str | Path, intra_op_threads: int = 0, device: str = "auto"):
        self.dir = Path(bundle_dir)
        bundle_files.verify(self.dir)  # refuse tampered or incomplete bundles before reading anything
        self.info = BundleInfo.load(self.dir)
        self.labels = LabelSet.load(self.dir / "labels.json")
        self.temperature = float(json.loads((self.dir / "calibration.json").read_text())["temperature"])
        self.thresholds = json.loads((self.dir / "thresholds.json").read_text())["thresholds"]
        self.tokenizer = BatchTokenizer(self.dir / "tokenizer.json", self.info.max_length,
                                        self.info.pad_token_id, self.info.pad_token)
        self.backend = OnnxRuntimeBackend(self.dir / self.info.model_file, intra_op_threads, device).initialize()

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
        return 1.0 / (1.0 + np.exp(-np.clip(logits / self.temperature, -60, 60)))

    def warm_up(self, batch_sizes: list[int]) -> None:
        for size in batch_sizes:
            self.score(["warm up example com | title: warm up"] * size)

    def close(self) -> None:
        self.backend.finalize()
