"""Dynamic micro-batching: requests queue on the event loop; `workers` inference threads drain them.

A batch closes when it is full or when its oldest request has waited `max_wait_us`; requests
that queued while the previous batch ran are not made to wait again, and a lone request does
not wait at all when traffic is too thin for another one to arrive within the window (an
exponentially weighted inter-arrival gap tells). Inference runs in worker threads so the event
loop keeps accepting and parsing while a batch executes. With several workers (the CPU default:
one per core, each running ONNX Runtime single-threaded) a second batch starts while the first is
still computing, instead of waiting behind it: at the batch sizes a 20 ms budget allows, that
cuts queueing more than splitting one batch's ops across cores speeds it up (loadtest/TUNING.md §10).

The queue is bounded (`QueueFull` at once beyond it), a request whose deadline passes while it
waits is dropped before inference (`Expired`), and `expected_wait()` tells a caller, before it
queues, whether an answer can arrive inside its budget.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ctypes
import ctypes.util
import itertools
import sys
import time
from typing import Callable

import numpy as np

from .scheduling import as_serving_work


_thread_numbers = itertools.count()


def start_inference_thread(prefix: str = "inference") -> None:
    """Executor initializer of the inference workers: the serving threads' scheduling class
    (scheduling.py), and an OS-level name (`top -H`, /proc/PID/task/*/comm),
    so per-thread CPU can be told apart from the event loop and gRPC's threads."""
    as_serving_work()
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(15, f"{prefix}-{next(_thread_numbers)}".encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME


class QueueFull(Exception):
    pass


class Expired(Exception):
    """The request's deadline passed while it waited; it was not computed."""


class MicroBatcher:
    def __init__(self, run_batch: Callable[[list[str]], np.ndarray], max_batch: int = 32, max_wait_us: int = 2000,
                 max_queue: int = 1024, metrics=None, workers: int = 1):
        if max_batch < 1 or max_wait_us < 0 or max_queue < 1 or workers < 1:
            raise ValueError("max_batch, max_queue and workers must be >= 1, max_wait_us >= 0")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_us / 1e6
        self.max_queue = max_queue
        self.metrics = metrics
        self.workers = workers
        self._pending: collections.deque = collections.deque()  # (enqueued, deadline, text, future)
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference",
                                                                initializer=start_inference_thread)
        self._free_workers = asyncio.Semaphore(workers)
        self._worker: asyncio.Task | None = None
        self._running: dict[asyncio.Task, float] = {}  # batches being computed → when each started
        self._last_arrival = 0.0
        self._arrival_gap = float("inf")  # EWMA of seconds between submissions
        self._batch_seconds = 0.0         # EWMA of one batch's compute time
        self._row_seconds = 0.0           # EWMA of compute time per row (batch time / batch size)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        for task in [self._worker, *self._running]:
            if task:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._executor.shutdown(wait=True)

    async def drain(self, poll_seconds: float = 0.005) -> None:
        """Return once everything submitted so far has been answered (hot swap retires a batcher
        this way: no new work reaches it, and what it holds finishes)."""
        while self._pending or self._running:
            await asyncio.sleep(poll_seconds)

    def depth(self) -> int:
        return len(self._pending)

    def expected_wait(self) -> float:
        """Seconds until a request queued now would be answered: until a worker is free (now, or
        when the running batch that started first should end), plus the rows queued ahead of it
        and itself at the recent cost per row, shared by as many workers as the queue makes
        batches. An idle batcher promises nothing it cannot check, so it admits (and so keeps its
        estimate fresh)."""
        if len(self._running) < self.workers and not self._pending:
            return 0.0
        until_free = 0.0
        if len(self._running) >= self.workers:
            until_free = max(0.0, self._batch_seconds - (time.monotonic() - min(self._running.values())))
        rows = len(self._pending) + 1
        sharing = min(self.workers, -(-rows // self.max_batch))
        return until_free + rows * self._row_seconds / sharing

    async def submit(self, text: str, deadline: float | None = None) -> np.ndarray:
        """Scores for `text`. `deadline` is a time.monotonic() instant after which computing it is
        pointless; raises QueueFull or Expired instead of answering late."""
        if len(self._pending) >= self.max_queue:
            raise QueueFull(f"{len(self._pending)} requests already queued")
        future = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        gap = now - self._last_arrival
        self._arrival_gap = gap if self._arrival_gap == float("inf") else 0.8 * self._arrival_gap + 0.2 * gap
        self._last_arrival = now
        self._pending.append((now, deadline, text, future))
        self._has_items.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    def _take_batch(self) -> list:
        # A request that cannot finish before its deadline even if its batch starts now would
        # only be answered late: drop it instead of computing it.
        now = time.monotonic()
        finish_by = now + self._batch_seconds
        batch = []
        while self._pending and len(batch) < self.max_batch:
            item = self._pending.popleft()
            enqueued, deadline, _, future = item
            if future.done():  # the caller went away (cancelled): do not compute for it
                continue
            if deadline is not None and deadline <= finish_by:
                future.set_exception(Expired())
                if self.metrics:
                    self.metrics.dropped.labels(reason="deadline_in_queue").inc()
                continue
            if self.metrics:
                self.metrics.queue_wait.observe(now - enqueued)
            batch.append(item)
        if not self._pending:
            self._has_items.clear()
        if len(self._pending) < self.max_batch:
            self._full.clear()
        if self.metrics:
            self.metrics.queue_depth.set(len(self._pending))
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._has_items.wait()
            await self._free_workers.acquire()
            if len(self._pending) < self.max_batch and self._arrival_gap < self.max_wait:
                wait = self._pending[0][0] + self.max_wait - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self._full.wait(), wait)
                    except TimeoutError:
                        pass
            batch = self._take_batch()
            if not batch:
                self._free_workers.release()
                continue
            task = loop.create_task(self._compute(batch))
            self._running[task] = time.monotonic()
            task.add_done_callback(self._running.pop)

    async def _compute(self, batch: list) -> None:
        started = time.monotonic()
        try:
            scores = await asyncio.get_running_loop().run_in_executor(self._executor, self.run_batch,
                                                                      [item[2] for item in batch])
        except Exception as exc:  # noqa: BLE001 - a failed batch fails its callers, not the batcher
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._free_workers.release()
            elapsed = time.monotonic() - started
            self._batch_seconds = elapsed if not self._batch_seconds else 0.8 * self._batch_seconds + 0.2 * elapsed
            per_row = elapsed / len(batch)
            self._row_seconds = per_row if not self._row_seconds else 0.8 * self._row_seconds + 0.2 * per_row
            if self.metrics:
                self.metrics.batch_size.observe(len(batch))
                self.metrics.inference.observe(elapsed)
        for (*_, future), row in zip(batch, scores):
            if not future.done():
                future.set_result(row)
