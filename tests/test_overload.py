"""Overload on loopback: at 3x the measured capacity, answered requests stay inside their
deadline, the rest fail fast (RESOURCE_EXHAUSTED or the profile's fallback), and the server
recovers as soon as the load drops."""
import asyncio
import time

import grpc
import numpy as np

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess

DEADLINE_S = 0.1
OVERLOAD_SECONDS = 4.0
GENERATOR_SLACK_S = 0.005


async def _closed_loop_capacity(target: str, seconds: float = 3.0, concurrency: int = 48) -> float:
    done = 0
    stop_at = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.BrandSafetyStub(channel)

        async def worker(w: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                await stub.Classify(site_request(f"cap{w}-{n}.example/p"), timeout=5)
                done += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / seconds


async def _open_loop(target: str, rate: float, seconds: float, tag: str) -> list[tuple[str, float, str, float]]:
    """(outcome, latency from intended send time, fallback reason or "", latency from actual send)
    per request: the first shows queues (no coordinated omission), the second is what the
    server's deadline promise is about (the generator's own lag is not the server's)."""
    results = []
    # Pre-serialized and sent as bytes: the generator shares the two cores with the server and must
    # stay cheap, or its own lag ends up in the latencies.
    payloads = [site_request(f"{tag}{i}.example/p").SerializeToString() for i in range(int(rate * seconds))]
    async with grpc.aio.insecure_channel(target) as channel:
        classify = channel.unary_unary("/brandsafe.v1.BrandSafety/Classify")

        async def one(i: int, intended: float) -> None:
            sent = time.monotonic()
            try:
                raw = await classify(payloads[i], timeout=DEADLINE_S)
                now = time.monotonic()
                results.append(("OK", now - intended, pb.ClassifyResponse.FromString(raw).fallback_reason, now - sent))
            except grpc.aio.AioRpcError as exc:
                now = time.monotonic()
                results.append((exc.code().name, now - intended, "", now - sent))

        start = time.monotonic()
        tasks = []
        for i in range(int(rate * seconds)):
            intended = start + i / rate
            delay = intended - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, intended)))
        await asyncio.gather(*tasks)
    return results


def test_three_times_capacity_fails_fast_and_recovers(minilm_bundle):
    # One inference worker: with the default two (one per core here), 3x capacity means ~1,350
    # requests/s from this in-process Python generator on the same two cores as two busy inference
    # threads, and its own loop lag (not the server's admission) pushed the refusals' p99 to 73 ms in
    # 2 of 6 runs. Admission is the same code for any worker count; test_batcher covers expected_wait
    # with two workers.
    server = ServerProcess(minilm_bundle, "--cache-entries", "0", "--max-queue", "64", "--max-batch", "16",
                           "--workers", "1")
    try:
        capacity = asyncio.run(_closed_loop_capacity(server.target))
        assert capacity > 20, capacity
        overload = asyncio.run(_open_loop(server.target, 3 * capacity, OVERLOAD_SECONDS, "over"))
        outcomes = {}
        for code, _, fallback, _ in overload:
            key = f"FALLBACK:{fallback}" if fallback else code
            outcomes[key] = outcomes.get(key, 0) + 1
        answered = [lat for code, _, fallback, lat in overload if code == "OK" and not fallback]
        refused = [lat for code, _, fallback, lat in overload
                   if code == "RESOURCE_EXHAUSTED" or fallback == "expected_wait_exceeds_deadline"]
        dropped = [lat for code, _, fallback, lat in overload if fallback == "deadline_passed_in_queue"]
        shed = refused + dropped
        print(f"capacity {capacity:.0f}/s; at {3 * capacity:.0f}/s: {outcomes}")
        assert {k.split(":")[0] for k in outcomes} <= {"OK", "FALLBACK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
        # Still doing useful work: at least a quarter of what it sustains closed-loop (the load
        # generator shares the two cores, so the server has less CPU now than when measured).
        assert len(answered) > 0.25 * capacity * OVERLOAD_SECONDS
        # An answer later than the deadline is DEADLINE_EXCEEDED at the transport (counted below), so
        # OK answers beat it there; what the generator measures on top is its own event loop, busy
        # sending hundreds of requests a second on the cores the server uses, resuming late.
        assert np.percentile(answered, 99) <= DEADLINE_S + GENERATOR_SLACK_S
        assert len(shed) > 0.3 * len(overload)  # the excess is refused…
        assert np.percentile(refused, 99) < DEADLINE_S / 2  # …at admission, at once
        if dropped:  # dropped from the queue: still answered (with the fallback) inside the deadline
            assert np.percentile(dropped, 99) <= DEADLINE_S + GENERATOR_SLACK_S
        assert outcomes.get("DEADLINE_EXCEEDED", 0) <= 0.10 * len(overload)

        time.sleep(0.5)  # load drops
        calm = asyncio.run(_open_loop(server.target, capacity / 4, 2.0, "calm"))
        assert all(code == "OK" and not fallback for code, _, fallback, _ in calm), calm[:5]
        assert np.percentile([lat for _, lat, _, _ in calm], 99) < DEADLINE_S
    finally:
        server.stop()
