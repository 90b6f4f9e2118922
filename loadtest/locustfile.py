"""Locust against the BrandSafety gRPC service, following locust's documented gRPC pattern: a User
that owns a gRPC channel and fires locust's `request` event for every call.

    brandsafe serve --bundle bundles/minilm-cpu &
    locust -f loadtest/locustfile.py --headless -u 20 -r 5 -t 20s --host 127.0.0.1:50051

Requests are the replay file's impressions (loadtest/replay.jsonl, or built in memory the same
way if it is missing). Locust users are closed-loop: each waits for its answer before sending
again, so a slow server also slows the load and its queue never shows (coordinated omission).
Use it for a quick look and for its UI; use `python -m brandsafe.loadtest.openloop` for numbers
that decide anything. Set BRANDSAFE_LOCUST_RPS to pace each user at that many requests/s.
"""
from __future__ import annotations

import itertools
import os
import time

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, constant_throughput, task

# Locust users are greenlets; gRPC's C core must cooperate with gevent's hub, or one blocking call
# would stall every user in the process.
grpc_gevent.init_gevent()

from brandsafe.loadtest import replay  # noqa: E402 - after gevent is wired in
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc  # noqa: E402

REQUESTS = [replay.to_request(r) for r in replay.load_or_build(replay.DEFAULT_REPLAY)]
_NEXT = itertools.count()  # all users walk one stream, so the mix keeps the file's repetition
RPS_PER_USER = float(os.environ.get("BRANDSAFE_LOCUST_RPS", "0"))


class GrpcUser(User):
    """A locust User with a gRPC channel; `timed_call` reports each call to locust's statistics."""

    abstract = True
    timeout_s = 1.0

    def on_start(self) -> None:
        if not self.host:
            raise ValueError("pass --host HOST:PORT (the gRPC server)")
        self.channel = grpc.insecure_channel(self.host)

    def on_stop(self) -> None:
        self.channel.close()

    def timed_call(self, name: str, method, request):
        started = time.perf_counter()
        response, error = None, None
        try:
            response = method(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:  # the status code becomes locust's failure name
            error = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=response.ByteSize() if response is not None else 0,
            response=response,
            context={},
            exception=error,
        )
        return response


class BrandSafetyUser(GrpcUser):
    wait_time = constant_throughput(RPS_PER_USER) if RPS_PER_USER > 0 else constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.stub = pb_grpc.BrandSafetyStub(self.channel)

    @task
    def classify(self) -> None:
        self.timed_call("Classify", self.stub.Classify, REQUESTS[next(_NEXT) % len(REQUESTS)])
