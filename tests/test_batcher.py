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


def test_two_workers_compute_two_batches_at_once_and_answer_each_caller_its_own_row():
    running, overlap, names = [0], [0], set()
    lock = threading.Lock()

    def run(texts):
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            names.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return np.array([[float(t)] for t in texts])

    async def main():
        batcher = MicroBatcher(run, max_batch=2, max_wait_us=0, workers=2)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(str(i)) for i in range(12)))
        idle_wait = batcher.expected_wait()  # drained: free workers, nothing queued
        await batcher.stop()
        return results, idle_wait

    results, idle_wait = asyncio.run(main())
    assert [float(r[0]) for r in results] == [float(i) for i in range(12)]
    assert overlap[0] == 2 and len(names) == 2  # never more batches at once than workers
    assert idle_wait == 0.0


def test_expected_wait_counts_a_free_worker_as_no_wait_and_shares_the_queue_among_workers():
    release = threading.Event()

    def run(texts):
        release.wait(5)
        return np.zeros((len(texts), 1))

    async def main():
        batcher = MicroBatcher(run, max_batch=1, max_wait_us=0, workers=2)
        batcher._row_seconds = batcher._batch_seconds = 0.01  # as if measured
        batcher.start()
        first = asyncio.ensure_future(batcher.submit("a"))
        await asyncio.sleep(0.05)
        one_busy = batcher.expected_wait()  # the other worker is free
        second = asyncio.ensure_future(batcher.submit("b"))
        queued = [asyncio.ensure_future(batcher.submit(str(i))) for i in range(4)]
        await asyncio.sleep(0.05)
        both_busy = batcher.expected_wait()
        release.set()
        await asyncio.gather(first, second, *queued)
        await batcher.stop()
        return one_busy, both_busy

    one_busy, both_busy = asyncio.run(main())
    assert one_busy == 0.0  # a worker is free and nothing is queued
    # Both busy past their expected 10 ms: free now; 4 queued + itself = 5 one-row batches on 2 workers.
    assert both_busy == pytest.approx(5 * 0.01 / 2)


def test_worker_and_thread_defaults_share_the_cores_and_a_gpu_gets_one_worker(monkeypatch):
    from pathlib import Path

    from brandsafe.service.server import ServerConfig, inference_threads, inference_workers

    monkeypatch.setattr("brandsafe.service.server.available_cpus", lambda: 8)  # the CPUs the process may use
    default = ServerConfig(bundle=Path("b"))
    assert (inference_workers(default, on_device=False), inference_threads(default)) == (8, 1)
    assert inference_workers(default, on_device=True) == 1
    two = ServerConfig(bundle=Path("b"), inference_workers=2)
    assert (inference_workers(two, on_device=True), inference_threads(two)) == (2, 4)
    assert inference_threads(ServerConfig(bundle=Path("b"), inference_workers=2, intra_op_threads=3)) == 3
