"""Execution backends behind one interface: initialize → execute(batch) → finalize.

ONNX Runtime picks the CUDA EP when the GPU build is installed and a device is visible, and the
CPU EP otherwise.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def execute(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...

    def finalize(self) -> None: ...


# ORT's pool threads busy-wait between parallel sections by default. In a server the cores are
# shared with the gRPC event loop (and, in a benchmark, the load generator): a spinning thread takes
# the core the event loop needs, and a preempted one stalls every barrier of the next op. Sleeping
# instead measured 1.7-1.9x faster per batch on a busy 2-core box (loadtest/TUNING.md).
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


class OnnxRuntimeBackend:
    def __init__(self, model_path: Path, intra_op_threads: int = 0, device: str = "auto",
                 session_config: dict[str, str] | None = None):
        self.model_path = Path(model_path)
        self.intra_op_threads = intra_op_threads or (os.cpu_count() or 1)
        self.device = device
        self.session_config = {**SESSION_CONFIG, **(session_config or {})}  # overrides: for benchmarks
        self.session: ort.InferenceSession | None = None

    def initialize(self) -> "OnnxRuntimeBackend":
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        for key, value in self.session_config.items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=self._providers())
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.name = f"onnxruntime:{self.session.get_providers()[0]}"
        log.info("ONNX Runtime session on %s (%d intra-op threads)", self.session.get_providers(), self.intra_op_threads)
        return self

    def _providers(self) -> list[str]:
        available = ort.get_available_providers()
        if self.device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if self.device == "cuda":
            raise RuntimeError("device=cuda but this onnxruntime has no CUDA EP (install the [gpu] extra)")
        return ["CPUExecutionProvider"]

    def execute(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {k: v for k, v in batch.items() if k in self.input_names})[0]

    def finalize(self) -> None:
        self.session = None
