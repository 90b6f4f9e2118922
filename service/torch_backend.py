"""PyTorch execution backend: the same interface as `backend.OnnxRuntimeBackend`, for GPU hosts where
the CUDA build of ONNX Runtime cannot be installed.

It runs the merged Hugging Face checkpoint a bundle was exported from, with the same last-token
head as the exported graph (export/decoder_head.py), so its scores match the bundle's. On CUDA it
runs bf16 and replays one CUDA graph per warmed (rows, length) shape: a 36-layer decoder launches
hundreds of small kernels per batch, and at batch 1 launching them takes about as long as the
GPU needs to read the weights. The attention mask is built here as a 4D additive tensor, so the
captured forward has no host synchronisation that would break graph capture.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from brandsafe.export.decoder_head import is_decoder_classifier, score_last_token_only

from .buckets import bucket_for, pad_rows

log = logging.getLogger(__name__)


class TorchBackend:
    def __init__(self, model_dir: str | Path, device: str = "auto", threads: int = 0, dtype: str | None = None,
                 cuda_graphs: bool = True, batch_buckets: list[int] | None = None):
        self.model_dir = Path(model_dir)
        cuda = device in ("auto", "cuda", "tensorrt") and torch.cuda.is_available()
        if device in ("cuda", "tensorrt") and not cuda:
            raise RuntimeError(f"device={device} but PyTorch sees no CUDA device")
        self.device = torch.device("cuda" if cuda else "cpu")
        # bf16 on the GPU (what training used); fp32 on CPU, where bf16 matmuls are slow.
        self.dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if cuda else torch.float32)
        self.threads = threads
        self.cuda_graphs = cuda_graphs and cuda
        self.batch_buckets = sorted(batch_buckets) if batch_buckets else None
        self.on_device = cuda
        self.name = f"torch:{self.device.type}:{str(self.dtype).removeprefix('torch.')}"
        self._graphs: dict[tuple, tuple] = {}  # shape → (graph, static ids, static mask, static logits)

    def initialize(self) -> "TorchBackend":
        from transformers import AutoModelForSequenceClassification

        if self.threads and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, dtype=self.dtype,
                                                                   attn_implementation="sdpa")
        self.model = score_last_token_only(model.to(self.device).eval())
        self.causal = is_decoder_classifier(self.model)  # encoders (BERT) take their 2D mask as it is
        self.pad_token_id = self.model.config.pad_token_id
        log.info("PyTorch backend %s from %s (CUDA graphs %s)", self.name, self.model_dir,
                 "on" if self.cuda_graphs else "off")
        return self

    def _mask_4d(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, 1, q, k] additive mask: causal, and padding keys masked out."""
        length = attention_mask.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
        allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=attention_mask.device)
        return mask.masked_fill(~allowed, torch.finfo(self.dtype).min)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=self._mask_4d(mask) if self.causal else mask).logits

    @torch.inference_mode()
    def execute(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: batch[k] for k in ("input_ids", "attention_mask")}
        rows = feeds["input_ids"].shape[0]
        if self.batch_buckets and rows <= self.batch_buckets[-1]:
            feeds = pad_rows(feeds, bucket_for(rows, self.batch_buckets))
        ids, mask = (torch.from_numpy(np.ascontiguousarray(feeds[k])) for k in ("input_ids", "attention_mask"))
        if self.cuda_graphs:
            logits = self._replay(ids, mask)
        else:
            logits = self._forward(ids.to(self.device), mask.to(self.device))
        return logits.float().cpu().numpy()[:rows]

    def _replay(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        key = tuple(ids.shape)
        if key not in self._graphs:
            self._graphs[key] = self._capture(ids, mask)
        graph, static_ids, static_mask, static_logits = self._graphs[key]
        if graph is None:  # capture failed for this shape: run eagerly
            return self._forward(ids.to(self.device), mask.to(self.device))
        static_ids.copy_(ids, non_blocking=True)
        static_mask.copy_(mask, non_blocking=True)
        graph.replay()
        return static_logits

    def _capture(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple:
        static_ids, static_mask = ids.to(self.device), mask.to(self.device)
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up runs off the default stream, as capture requires
                for _ in range(2):
                    self._forward(static_ids, static_mask)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_logits = self._forward(static_ids, static_mask)
            return graph, static_ids, static_mask, static_logits
        except RuntimeError as exc:  # an op that cannot be captured: correctness first
            log.warning("CUDA graph capture failed for shape %s (%s); running it eagerly", tuple(ids.shape), exc)
            return None, None, None, None

    def finalize(self) -> None:
        self._graphs.clear()
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
