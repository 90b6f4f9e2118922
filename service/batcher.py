"""Dynamic micro-batching: requests queue on the event loop; one inference thread drains them.

A batch closes when it is full or when its oldest request has waited `max_wait_us`; requests
that queued while the previous batch ran are not made to wait again, and a lone request does
not wait at all when traffic is too thin for another one to arrive within the window (an
exponentially weighted inter-arrival gap tells). Inference runs in a
worker thread so the event loop keeps accepting and parsing while a batch executes.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from typing import Callable

import numpy as np


class MicroBatcher:
    def __init__(self, run_batch: Callable[[list[str]], np.ndarray], max_batch: int = 32, max_wait_us: int = 2000):
        if max_batch < 1 or max_wait_us < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_us >= 0")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_us / 1e6
        self._pending: collections.deque = collections.deque()
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._worker: asyncio.Task | None = None
        self._busy = False  # a batch is being computed
        self._last_arrival = 0.0
        self._arrival_gap = float("inf")  # EWMA of seconds between submissions

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def drain(self, poll_seconds: float = 0.005) -> None:
        """Return once everything submitted so far has been answered (hot swap retires a batcher
        this way: no new work reaches it, and what it holds finishes)."""
        while self._pending or self._busy:
            await asyncio.sleep(poll_seconds)

    async def submit(self, text: str) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        gap = now - self._last_arrival
        self._arrival_gap = gap if self._arrival_gap == float("inf") else 0.8 * self._arrival_gap + 0.2 * gap
        self._last_arrival = now
        self._pending.append((now, text, future))
        self._has_items.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._has_items.wait()
            if len(self._pending) < self.max_batch and self._arrival_gap < self.max_wait:
                wait = self._pending[0][0] + self.max_wait - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self._full.wait(), wait)
                    except TimeoutError:
                        pass
            batch = []
            while self._pending and len(batch) < self.max_batch:
                item = self._pending.popleft()
                if not item[2].done():  # the caller went away: do not compute for it
                    batch.append(item)
            if not self._pending:
                self._has_items.clear()
            if len(self._pending) < self.max_batch:
                self._full.clear()
            if not batch:
                continue
            self._busy = True
            try:
                scores = await loop.run_in_executor(self._executor, self.run_batch, [text for _, text, _ in batch])
            except Exception as exc:  # noqa: BLE001 - a failed batch fails its callers, not the batcher
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                self._busy = False
            for (_, _, future), row in zip(batch, scores):
                if not future.done():
                    future.set_result(row)
