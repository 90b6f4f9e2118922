"""The ceiling: the bundle's model in-process, batched, with no gRPC, no event loop, no queue code.

How it is made comparable with a server's "max rate at p99 <= budget": the same open-loop
arrival schedule (same rates, same Poisson seeds, same pre-rendered real pages) is played
against a greedy batching loop that runs on this thread: whenever the model is free it takes
every request that has arrived (up to max_batch) and scores them in one `LoadedBundle.score`
call (tokenize + ONNX Runtime + calibration). A request's latency is its batch's completion time
minus its intended arrival time, exactly as the load generator measures a server. Nothing else
runs in the process, so this is the best any server around this model could do on this machine
with this batching bound: arrival → model with zero overhead and perfect knowledge of the queue.

With `workers` > 1 (as many as the service runs), that many such loops share one arrival
sequence: whichever is free takes every request that has arrived, so two batches can compute at
once, exactly as the service's workers do, still with no transport and no queue code between.
"""
from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Callable

import numpy as np

from .openloop import Ladder, StepResult, arrival_offsets, latency_summary, step_ladder


def load_model(bundle, intra_op_threads: int, max_batch: int):
    """The bundle as the ceiling scores it: one session (shared by all loops), warmed at the batch
    sizes a ladder reaches."""
    from brandsafe.service.model import LoadedBundle

    model = LoadedBundle(bundle, intra_op_threads=intra_op_threads)
    model.warm_up(sorted({1, 2, 4, 8, 16, max_batch}))
    return model


def play(score: Callable[[list[str]], np.ndarray], texts: list[str], offsets: np.ndarray, max_batch: int,
         first_text: int = 0, clock: Callable[[], float] = time.perf_counter,
         workers: int = 1) -> tuple[np.ndarray, float]:
    """Latency (s) of each arrival under greedy batching by `workers` loops, and the wall time of the run."""
    n = len(offsets)
    latency = np.empty(n)
    claim = threading.Lock()  # taking a batch is the only shared step
    next_arrival = 0
    failures: list[BaseException] = []
    start = clock()

    def loop() -> None:
        try:
            batches()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread below
            failures.append(exc)
            with claim:  # the other loops stop too
                nonlocal next_arrival
                next_arrival = n

    def batches() -> None:
        nonlocal next_arrival
        while True:
            with claim:
                i = next_arrival
                if i >= n:
                    return
                now = clock() - start
                if offsets[i] <= now:
                    j = max(i + 1, min(n, i + max_batch, int(np.searchsorted(offsets, now, side="right"))))
                    next_arrival = j
            if offsets[i] > now:
                time.sleep(offsets[i] - now)  # idle until the next arrival (another loop may take it)
                continue
            score([texts[(first_text + k) % len(texts)] for k in range(i, j)])
            latency[i:j] = (clock() - start) - offsets[i:j]

    others = [threading.Thread(target=loop, name=f"ceiling-{w}") for w in range(1, workers)]
    for thread in others:
        thread.start()
    loop()
    for thread in others:
        thread.join()
    if failures:
        raise failures[0]
    return latency, clock() - start


def step(score: Callable[[list[str]], np.ndarray], texts: list[str], offsets: np.ndarray, rate: float,
         max_batch: int, first_text: int = 0, workers: int = 1) -> StepResult:
    """One open-loop step against the greedy batching loop, reported like a server's step (the
    "server" CPU is this process's own)."""
    cpu0 = time.process_time()
    latency, wall = play(score, texts, offsets, max_batch, first_text, workers=workers)
    cpu = time.process_time() - cpu0
    return StepResult(offered_rps=rate, sent=len(offsets), ok=len(offsets),
                      achieved_rps=len(offsets) / wall if wall > 0 else 0.0,
                      latency_ms=latency_summary(latency), server_cpu_pct=100.0 * cpu / wall, wall_s=wall)


def run_ladder(score, texts: list[str], rates: list[float], step_seconds: float, budget_ms: float,
               max_batch: int, arrivals: str = "poisson", refine: int = 2, stop_after_misses: int = 2,
               warmup_seconds: float = 2.0, seed: int = 0,
               on_step: Callable[[StepResult], None] | None = None) -> Ladder:
    """`openloop.step_ladder` with the same rates and seeds as the servers get."""
    cursor, index = 0, 0

    async def one_step(rate: float) -> StepResult:
        nonlocal cursor, index
        result = step(score, texts, arrival_offsets(rate, step_seconds, arrivals, seed + index), rate, max_batch,
                      cursor)
        cursor += result.sent
        index += 1
        if on_step:
            on_step(result)
        time.sleep(0.5)
        return result

    gc.collect()
    gc.freeze()  # as in openloop.measure: no collection pauses over the long-lived inputs
    if warmup_seconds > 0 and rates:
        play(score, texts, arrival_offsets(rates[0], warmup_seconds, arrivals, seed + 10_000), max_batch)
    return asyncio.run(step_ladder(one_step, rates, budget_ms, refine, stop_after_misses))
