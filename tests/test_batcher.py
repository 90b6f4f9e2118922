import asyncio
import threading
import time

import numpy as np
import pytest

from brandsafe.service.batcher import MicroBatcher


def _row_scorer(record: list):
    def run(texts):
        record.append((len(texts), threading.current_thread().name))
        time.sleep(0.01)
        return np.array([[float(t)] for t in texts])
    return run


def test_concurrent_requests_are_batched_and_answered_with_their_own_row():
    batches: list = []

    async def main():
        batcher = MicroBatcher(_row_scorer(batches), max_batch=8, max_wait_us=5000)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(str(i)) for i in range(40)))
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert [float(r[0]) for r in results] == [float(i) for i in range(40)]
    assert max(size for size, _ in batches) == 8 and len(batches) <= 10
    assert all(name.startswith("inference") for _, name in batches)  # off the event loop


def test_sparse_traffic_does_not_wait_for_a_batch_that_cannot_fill():
    batches: list = []

    async def main():
        batcher = MicroBatcher(_row_scorer(batches), max_batch=32, max_wait_us=200_000)
        batcher.start()
        elapsed = []
        for i in range(3):
            started = time.monotonic()
            await batcher.submit(str(i))
            elapsed.append(time.monotonic() - started)
            await asyncio.sleep(0.3)  # gaps longer than max_wait: nothing to wait for
        await batcher.stop()
        return elapsed

    elapsed = asyncio.run(main())
    assert [size for size, _ in batches] == [1, 1, 1]
    assert max(elapsed) < 0.15  # well under the 200 ms window


def test_steady_traffic_waits_at_most_max_wait_for_a_batch_to_fill():
    batches: list = []

    async def main():
        batcher = MicroBatcher(_row_scorer(batches), max_batch=64, max_wait_us=30_000)
        batcher.start()
        tasks, latencies = [], []

        async def timed(i):
            started = time.monotonic()
            await batcher.submit(str(i))
            latencies.append(time.monotonic() - started)

        for i in range(30):  # one request every 2 ms: several arrive within each window
            tasks.append(asyncio.ensure_future(timed(i)))
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        await batcher.stop()
        return latencies

    latencies = asyncio.run(main())
    assert max(size for size, _ in batches) > 3  # it did wait for company
    assert max(latencies) < 0.03 + 0.01 + 0.1  # window + one batch + scheduling slack


def test_cancelled_callers_are_not_computed_and_failures_reach_callers():
    seen: list[list[str]] = []

    def run(texts):
        seen.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("backend failed")
        return np.zeros((len(texts), 1))

    async def main():
        batcher = MicroBatcher(run, max_batch=4, max_wait_us=50_000)
        batcher.start()
        doomed = asyncio.ensure_future(batcher.submit("cancelled"))
        await asyncio.sleep(0)
        doomed.cancel()
        await batcher.submit("kept")
        with pytest.raises(RuntimeError, match="backend failed"):
            await batcher.submit("boom")
        assert (await batcher.submit("after")).shape == (1,)  # the batcher survives a failed batch
        await batcher.stop()

    asyncio.run(main())
    assert ["cancelled"] not in seen and all("cancelled" not in batch for batch in seen)
