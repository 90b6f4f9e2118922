"""What the serving process leaves for the cyclic garbage collector once its caches are warm.

    python -m brandsafe.loadtest.heap_census --bundle bundles/minilm-cpu

Starts the server in this process (cache on, as deployed), sends the replay through a real gRPC
channel once (so the verdict cache and the remembered answers fill as real traffic fills them),
then prints the objects the GC tracks that were not there after start-up, by type, and how long
a full collection takes before and after. A full collection stops the event loop, so every
object a cache keeps tracked lengthens a pause that lands on whole runs of requests
(loadtest/TUNING.md §11-12).
"""
from __future__ import annotations

import argparse
import collections
import gc
import time
from pathlib import Path

import grpc

from . import openloop


def census() -> collections.Counter:
    """Tracked objects by type name, outside the frozen generation, after a collection."""
    gc.collect()
    return collections.Counter(type(obj).__name__ for obj in gc.get_objects())


def full_collection_ms(repeats: int = 5) -> float:
    """Median wall time of a full collection, in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)[len(times) // 2]


async def measure(bundle: Path, replay: Path | None, top: int) -> None:
    from brandsafe.service.metrics import Metrics
    from brandsafe.service.server import ServerConfig, start
    from prometheus_client import CollectorRegistry

    payloads = openloop.classify_payloads(replay)
    running = await start(ServerConfig(bundle=bundle, port=0), Metrics(CollectorRegistry()))
    try:
        before, before_ms = census(), full_collection_ms()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            classify = channel.unary_unary(openloop.CLASSIFY_METHOD)
            for payload in payloads:
                await classify(payload, timeout=10)
        after, after_ms = census(), full_collection_ms()
        stats = running.service.cache.stats
    finally:
        await running.stop()
        gc.unfreeze()
    grown = after - before
    print(f"replay: {len(payloads)} requests; cache: {stats.local_hits} local hits, {stats.misses} misses")
    print(f"GC-tracked objects after start-up: {sum(before.values())}; after the replay: {sum(after.values())} "
          f"(+{sum(grown.values())})")
    print(f"full collection: {before_ms:.2f} ms after start-up, {after_ms:.2f} ms after the replay")
    print("grown by type: " + (", ".join(f"{name} +{count}" for name, count in grown.most_common(top)) or "none"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"), help="bundle to serve")
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    parser.add_argument("--top", type=int, default=8, help="types to list (default: 8)")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(measure(args.bundle, args.replay, args.top))


if __name__ == "__main__":
    main()
