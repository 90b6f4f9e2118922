"""A bare grpc.aio server on uvloop that answers Classify with fixed bytes: the floor any gRPC
Python service pays per request (transport, HTTP/2, the event loop), with no parsing, no model,
no cache. The cache benchmark compares the service's cache-hit path with it. It schedules its
event loop and gRPC's threads as the benchmarks' `brandsafe serve` processes do (real-time where
permitted, guarded; paired.SERVED; --scheduling), so the comparison is between the two programs'
code, not their priorities.

    python -m brandsafe.loadtest.peers.echo_server --response-file resp.bin --port 0

With --bundle it first loads and warms that bundle as `brandsafe serve` does (word segmenter, ONNX
Runtime sessions, tokenizer, frozen heap) and never uses it: the same bare handler inside a process
the size of the service's, a control for what the process alone costs (echo_control.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import grpc
import uvloop

from brandsafe.service import scheduling


async def serve(response: bytes, host: str, port: int, realtime: bool = True) -> None:
    async def classify(request: bytes, context) -> bytes:
        return response

    handler = grpc.method_handlers_generic_handler("brandsafe.v1.BrandSafety", {
        "Classify": grpc.unary_unary_rpc_method_handler(classify),  # bytes in, bytes out
    })
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    if realtime:
        print(f"echo: scheduling: {scheduling.serve_realtime().describe()}", flush=True)
    print(f"echo: serving echo on {host}:{bound} (fixed {len(response)}-byte responses)", flush=True)
    await server.wait_for_termination()


def load_like_the_service(bundle: Path):
    """`bundle` loaded and warmed the way `brandsafe serve` does (its default batch sizes), the
    heap then frozen; the caller keeps it alive as long as the server."""
    from brandsafe.service import heap
    from brandsafe.service.model import LoadedBundle
    from brandsafe.service.server import ServerConfig, batch_sizes
    from brandsafe.urltext import load_segmenter

    load_segmenter()
    model = LoadedBundle(bundle, 1, "cpu")
    model.warm_up(batch_sizes(ServerConfig(bundle=bundle).max_batch))
    heap.settle()
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--response-file", type=Path, required=True, help="serialized ClassifyResponse to return")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scheduling", choices=("realtime", "normal"), default="realtime",
                        help="as `brandsafe serve --scheduling` (default: %(default)s)")
    parser.add_argument("--bundle", type=Path, help="load and warm this bundle first, as the service does, "
                                                     "and leave it unused (a control; see above)")
    args = parser.parse_args(argv)
    loaded = load_like_the_service(args.bundle) if args.bundle is not None else None
    if loaded is not None:
        print(f"echo: loaded bundle {loaded.bundle_id} (unused)", flush=True)
    uvloop.run(serve(args.response_file.read_bytes(), args.host, args.port, args.scheduling == "realtime"))


if __name__ == "__main__":
    main()
