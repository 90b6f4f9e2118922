"""Peer: the server people write first. Sync gRPC, one worker thread, one request per model call.

    python -m brandsafe.loadtest.peers.naive_server --bundle B --threads N --port 0

Same work per request as `brandsafe serve` (validate, render, score, policy, the same response
message, built by the service's own code), minus the micro-batcher: each request runs the model
alone, and requests that arrive meanwhile wait in gRPC's queue for the single worker.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc

from brandsafe.rendering import render
from brandsafe.service.model import LoadedBundle
from brandsafe.service.policy import DEFAULT_POLICY_FILE, DEFAULT_POLICY_ID, load_policies
from brandsafe.service.requests import RequestError, parse
from brandsafe.service.servicer import BrandSafetyService, for_request
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc


class NaiveService(pb_grpc.BrandSafetyServicer):
    """No cache, no deadline handling, no queue bound: the handler a first version would have."""

    def __init__(self, model: LoadedBundle):
        self.model = model
        self.policies = load_policies(DEFAULT_POLICY_FILE, model.labels, model.thresholds)
        self._responder = BrandSafetyService()  # only for its response body: the same answer bytes

    def Classify(self, request: pb.ClassifyRequest, context: grpc.ServicerContext) -> pb.ClassifyResponse:
        try:
            parsed = parse(request, DEFAULT_POLICY_ID)
        except RequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        policy = self.policies.get(parsed.policy_id)
        if policy is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"policy_id: unknown brand profile {parsed.policy_id!r}")
        scores = self.model.score([render(parsed.page)])[0]
        return for_request(self._responder.body(scores, policy, self.model), request, "model")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (as `brandsafe serve`)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    model = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    model.warm_up([1, 1, 1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    pb_grpc.add_BrandSafetyServicer_to_server(NaiveService(model), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"naive: serving {model.bundle_id} on 127.0.0.1:{port} (pid {os.getpid()})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
