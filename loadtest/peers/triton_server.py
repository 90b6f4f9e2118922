"""Peer: Triton Inference Server (via nvidia-pytriton) with its dynamic batcher, CPU only.

    .venv/peers/triton/bin/python loadtest/peers/triton_server.py --bundle B --threads N --workers W \
        --max-batch 32 --max-wait-us 2000 [--texts texts.jsonl --requests-out infer.bin]

Why a second virtualenv: nvidia-pytriton pins numpy<2 and tritonclient[grpc] pins protobuf<7,
while this project runs numpy 2 and protobuf 7 (its generated stubs refuse an older runtime).
Installing them into .venv would downgrade both under the training jobs, so Triton gets its own:

    python3.11 -m venv .venv/peers/triton
    .venv/peers/triton/bin/pip install nvidia-pytriton "tritonclient[grpc]" onnxruntime==1.32.0 \
        tokenizers==0.22.2 wordsegment

(onnxruntime and tokenizers at the main venv's versions: the model code path must be the same;
wordsegment because brandsafe.bundle imports the renderer. The checkout's own brandsafe/ and
service/ folders are imported from source, not installed.)

The model is bound the way pytriton documents: a Python callable behind Triton's dynamic batcher
(--workers instances over one shared ORT session, as the service's workers share theirs;
max batch / max queue delay equal to this service's). The callable holds a
`LoadedBundle`, so tokenization, ORT session options and thread counts are the service's own.
It takes the rendered page text (BYTES) and returns the calibrated probabilities: the client
pre-renders, so Triton skips request validation, rendering, policy and response building that
this service does per request. That favours Triton, which is the safe side for a comparison.

`--requests-out` writes one serialized ModelInferRequest per text (4-byte little-endian length,
then the bytes), built here with tritonclient's own protobuf classes, so the load generator in
the main venv can send them pre-serialized over a raw gRPC channel without tritonclient.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import socket
import struct
import sys
import sysconfig
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "brandsafe"
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _import_loaded_bundle():
    """`LoadedBundle` from this checkout; in the side venv brandsafe is not installed, so map the
    package folders the way pyproject's package-dir does (brandsafe/ and service/)."""
    try:
        from brandsafe.service.model import LoadedBundle
        return LoadedBundle
    except ImportError:
        pass
    sys.path.insert(0, str(REPO))
    import brandsafe  # noqa: F401 - brandsafe/ is a top-level folder of the checkout

    spec = importlib.util.spec_from_file_location("brandsafe.service", REPO / "service" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "service")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["brandsafe.service"] = module
    spec.loader.exec_module(module)
    from brandsafe.service.model import LoadedBundle
    return LoadedBundle


def write_infer_requests(texts: list[str], out: Path) -> None:
    from tritonclient.grpc import service_pb2

    with open(out, "wb") as f:
        for text in texts:
            data = text.encode()
            request = service_pb2.ModelInferRequest(
                model_name=MODEL_NAME,
                inputs=[service_pb2.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[1, 1])],
                outputs=[service_pb2.ModelInferRequest.InferRequestedOutputTensor(name="probs")],
                # BYTES tensors travel as <u32 length><bytes> per element in raw_input_contents.
                raw_input_contents=[struct.pack("<I", len(data)) + data],
            )
            payload = request.SerializeToString()
            f.write(struct.pack("<I", len(payload)) + payload)


def read_infer_requests(path: Path) -> list[bytes]:
    blob, out, i = Path(path).read_bytes(), [], 0
    while i < len(blob):
        (size,) = struct.unpack_from("<I", blob, i)
        out.append(blob[i + 4:i + 4 + size])
        i += 4 + size
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (as `brandsafe serve`)")
    parser.add_argument("--workers", type=int, default=1,
                        help="model instances, each running its own batches on one shared ORT session "
                             "(as `brandsafe serve --workers`)")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-us", type=int, default=2000)
    parser.add_argument("--port", type=int, default=0, help="Triton gRPC port, 0 = a free one")
    parser.add_argument("--texts", type=Path, help="JSON lines of rendered texts to turn into requests")
    parser.add_argument("--requests-out", type=Path)
    args = parser.parse_args(argv)

    if args.texts and args.requests_out:
        write_infer_requests([json.loads(line) for line in args.texts.read_text().splitlines()], args.requests_out)

    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    logging.basicConfig(level=logging.WARNING)
    # Triton's Python-backend stub embeds libpython; without this it picks up a different build
    # than this interpreter's and dies with "'_thread.RLock' object has no attribute
    # '_recursion_count'". The stub inherits our environment, so point it at our own lib folder.
    libdir = sysconfig.get_config_var("LIBDIR")
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    model = _import_loaded_bundle()(args.bundle, intra_op_threads=args.threads)
    sizes = sorted({1 << k for k in range(args.max_batch.bit_length()) if 1 << k <= args.max_batch} | {args.max_batch})
    model.warm_up(sizes)

    @batch
    def infer(text: np.ndarray):
        # text: (batch, 1) object array of bytes, as the dynamic batcher stacked it.
        texts = [row[0].decode() if isinstance(row[0], bytes) else str(row[0]) for row in text]
        return {"probs": model.score(texts).astype(np.float32, copy=False)}

    port = args.port or _free_port()
    config = TritonConfig(grpc_address="127.0.0.1", grpc_port=port, allow_http=True, http_address="127.0.0.1",
                          http_port=_free_port(), allow_metrics=False, log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=[infer] * args.workers,  # a list: one Triton model instance per callable
            inputs=[Tensor(name="text", dtype=bytes, shape=(1,))],
            outputs=[Tensor(name="probs", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=args.max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_wait_us)),
            strict=False,
        )
        triton.run()  # starts the server and waits until the model is READY
        print(f"triton: serving {model.bundle_id} on 127.0.0.1:{port} (pid {os.getpid()})", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
