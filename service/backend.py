"""Execution backends behind one interface: initialize → execute(batch) → finalize.

ONNX Runtime picks the CUDA EP when the GPU build is installed and a device is visible, and the
CPU EP otherwise; `device="tensorrt"` puts the TensorRT EP in front of CUDA. On a device, inputs
and logits are bound with IO binding into buffers allocated once per shape, so a batch costs one
host→device copy of its token ids and one device→host copy of its logits, never a per-request
copy or allocation. `torch_backend.TorchBackend` implements the same interface with PyTorch (for
GPU hosts where the CUDA build of ONNX Runtime cannot be installed).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from .buckets import bucket_for, pad_rows
from .cpus import available_cpus

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")


class Backend(Protocol):
    name: str
    on_device: bool  # True: a GPU runs it, so batches should come padded to warmed shapes

    def initialize(self) -> "Backend": ...

    def execute(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...

    def finalize(self) -> None: ...


# ORT's pool threads busy-wait between parallel sections by default. In a server the cores are
# shared with the gRPC event loop (and, in a benchmark, the load generator): a spinning thread takes
# the core the event loop needs, and a preempted one stalls every barrier of the next op. Sleeping
# instead measured 1.7-1.9x faster per batch on a busy 2-core box (loadtest/TUNING.md).
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


class OnnxRuntimeBackend:
    def __init__(self, model_path: Path, intra_op_threads: int = 0, device: str = "auto",
                 session_config: dict[str, str] | None = None, io_binding: bool | None = None,
                 batch_buckets: list[int] | None = None, trt_cache_dir: Path | None = None):
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.model_path = Path(model_path)
        self.intra_op_threads = intra_op_threads or available_cpus()
        self.device = device
        self.session_config = {**SESSION_CONFIG, **(session_config or {})}  # overrides: for benchmarks
        self.io_binding = io_binding  # None: on for CUDA/TensorRT, off for CPU (session.run is cheaper there)
        self.batch_buckets = sorted(batch_buckets) if batch_buckets else None
        self.trt_cache_dir = Path(trt_cache_dir or os.environ.get("BRANDSAFE_TRT_CACHE", "/tmp/brandsafe-trt-cache"))
        self.session: ort.InferenceSession | None = None
        self._buffers: dict[tuple, tuple] = {}  # (thread, shape) → (input OrtValues, output OrtValue, binding)

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
        provider = self.session.get_providers()[0]
        self.name = f"onnxruntime:{provider}"
        self.on_device = provider != "CPUExecutionProvider"
        # ORT names device memory "cuda" for both the CUDA and the TensorRT EP.
        self.ort_device = "cuda" if self.on_device else "cpu"
        if self.io_binding is None:
            self.io_binding = self.on_device
        log.info("ONNX Runtime session on %s (%d intra-op threads, IO binding %s)", self.session.get_providers(),
                 self.intra_op_threads, "on" if self.io_binding else "off")
        return self

    def _providers(self) -> list:
        available = ort.get_available_providers()
        if self.device == "tensorrt":
            if "TensorrtExecutionProvider" not in available:
                raise RuntimeError("device=tensorrt but this onnxruntime has no TensorRT EP "
                                   "(install the [gpu] extra and TensorRT's libraries)")
            self.trt_cache_dir.mkdir(parents=True, exist_ok=True)
            # fp16 engines, cached on disk: building them takes minutes for a 4B model, so a restart
            # must not rebuild; the CUDA EP takes whatever TensorRT cannot run.
            trt = {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": str(self.trt_cache_dir), "trt_timing_cache_enable": True,
                   "trt_timing_cache_path": str(self.trt_cache_dir)}
            return [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider", "CPUExecutionProvider"]
        if self.device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if self.device == "cuda":
            raise RuntimeError("device=cuda but this onnxruntime has no CUDA EP (install the [gpu] extra)")
        return ["CPUExecutionProvider"]

    def execute(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: v for k, v in batch.items() if k in self.input_names}
        rows = next(iter(feeds.values())).shape[0]
        if self.batch_buckets and rows <= self.batch_buckets[-1]:
            feeds = pad_rows(feeds, bucket_for(rows, self.batch_buckets))
        if self.io_binding:
            logits = self._run_bound(feeds)
        else:
            logits = self.session.run(["logits"], feeds)[0]
        return logits[:rows]

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run with inputs and logits bound to device buffers kept per shape: the copy of this
        batch's ids into them is the only host→device transfer, the logits the only way back.
        Buffers are per worker thread: two batches of one shape must not overwrite each other's ids."""
        shape = next(iter(feeds.values())).shape
        key = (threading.get_ident(), shape, tuple(sorted(feeds)))
        if key not in self._buffers:
            binding = self.session.io_binding()
            inputs = {}
            for name, value in feeds.items():
                inputs[name] = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), self.ort_device, 0)
                binding.bind_ortvalue_input(name, inputs[name])
            labels = self.session.get_outputs()[0].shape[-1]
            output = ort.OrtValue.ortvalue_from_shape_and_type([shape[0], labels], np.float32, self.ort_device, 0)
            binding.bind_ortvalue_output("logits", output)
            self._buffers[key] = (inputs, output, binding)
        else:
            inputs, output, binding = self._buffers[key]
            for name, value in feeds.items():
                inputs[name].update_inplace(np.ascontiguousarray(value))
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def finalize(self) -> None:
        self._buffers.clear()
        self.session = None


def create(kind: str, model_path: Path, intra_op_threads: int = 0, device: str = "auto",
           torch_model: Path | None = None) -> Backend:
    """The backend a bundle runs on: "onnxruntime" (the bundle's graph) or "torch" (a merged
    Hugging Face checkpoint, `torch_model`)."""
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(model_path, intra_op_threads, device).initialize()
    if kind == "torch":
        from .torch_backend import TorchBackend

        if torch_model is None:
            raise ValueError("--backend torch needs --torch-model: the merged checkpoint folder "
                             "(runs/<recipe>/merged) the bundle was exported from")
        return TorchBackend(torch_model, device, intra_op_threads).initialize()
    raise ValueError(f"backend must be 'onnxruntime' or 'torch', got {kind!r}")
