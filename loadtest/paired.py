"""Several peers, all up at once, measured in turns on one offered-rate ladder.

At each offered rate every peer still climbing runs `repeats` steps, interleaved (openloop.
paired_ladder), each on the same arrival schedule for a given (rate, repeat), and its median-p99
run counts. On a shared 2-core VM a p99 near its budget says as much about the minute as about
the peer; in turns, a slow minute falls on every peer alike instead of on whichever peer's whole
ladder happened to run then.

A peer is a `Runner`: given the intended send offsets of a step, the rate they were drawn at and
where in the replay to start, it runs the step and reports it. The three kinds below are the C++
generator against a server, openloop.py's generator against a server, and the in-process ceiling.
"""
from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Awaitable, Callable

from pathlib import Path

import numpy as np

from brandsafe.service import wakeup

from . import ceiling, openloop
from .native_generator import NativeGenerator

Runner = Callable[[np.ndarray, float, int], "openloop.StepResult | Awaitable[openloop.StepResult]"]


def native_runner(generator, server_pid: int, timeout_s: float) -> Runner:
    """generator: a native_generator.NativeGenerator connected to the server."""
    return lambda offsets, rate, first: generator.step(offsets, rate, first, timeout_s, server_pid)


def python_runner(sender: openloop.GrpcSender, payloads: list[bytes], server_pid: int, timeout_s: float,
                  late_ms: float | None = None) -> Runner:
    return lambda offsets, rate, first: openloop.run_offsets(sender, payloads, offsets, rate, timeout_s, first,
                                                             server_pid, late_ms)


async def server_runner(target: str, server_pid: int, payloads: list[bytes], requests_file: Path | None,
                        timeout_s: float, opened: list, method: str = openloop.CLASSIFY_METHOD,
                        check_fallback: bool = True, late_ms: float | None = None) -> Runner:
    """The C++ generator when `requests_file` (payloads written by native_generator.write_requests)
    is given, else openloop.py's. What it opens is appended to `opened`, for close_all. With
    `late_ms`, each step counts its requests slower than that (what openloop.pooled_rule reads)."""
    if requests_file is not None:
        generator = NativeGenerator(target, requests_file, method, check_fallback=check_fallback, late_ms=late_ms)
        opened.append(generator)
        return native_runner(generator, server_pid, timeout_s)
    sender = openloop.GrpcSender(target, method, openloop.classify_check if check_fallback else None)
    opened.append(sender)
    await sender.ready()
    return python_runner(sender, payloads, server_pid, timeout_s, late_ms)


async def close_all(opened: list) -> None:
    for sender in opened:
        closed = sender.close()
        if inspect.isawaitable(closed):
            await closed


def ceiling_runner(score, texts: list[str], max_batch: int, workers: int = 1) -> Runner:
    return lambda offsets, rate, first: ceiling.step(score, texts, offsets, rate, max_batch, first, workers)


async def call(runner: Runner, offsets: np.ndarray, rate: float, first: int = 0) -> openloop.StepResult:
    """One step of any kind of runner (the native and ceiling runners block; openloop.py's is async)."""
    result = runner(offsets, rate, first)
    return await result if inspect.isawaitable(result) else result


def add_ladder_arguments(parser, rates: str, budget_ms: float = 20.0, step_seconds: float = 8.0) -> None:
    """--budget-ms, --rates, --step-seconds and --repeats, as every paired benchmark reads them."""
    parser.add_argument("--budget-ms", type=float, default=budget_ms,
                        help="p99 budget a step must meet, in ms (default: %(default)s)")
    parser.add_argument("--rates", default=rates,
                        help="offered rates per second, 'a,b,c' or 'start:stop:step'; each rate costs peers x "
                             "--repeats steps (default: %(default)s)")
    parser.add_argument("--step-seconds", type=float, default=step_seconds,
                        help="length of one step (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per peer at each offered rate, the peers taking turns; the median-p99 run "
                             "counts (or, where --rule is offered, all of them pooled) (default: %(default)s)")
    parser.add_argument("--cpu-wakeup", choices=("fast", "normal"), default="fast",
                        help="the machine's idle cores for the whole run, every peer alike: fast = held ready "
                             "(service/wakeup.py; needs root), normal = as the OS sets them. The services the run "
                             "starts hold none of their own (default: %(default)s)")


def add_rule_argument(parser, default: str = "median") -> None:
    """--rule, for the benchmarks whose generators count late requests (openloop.RULES)."""
    parser.add_argument("--rule", choices=sorted(openloop.RULES), default=default,
                        help="how a rate's --repeats runs become a pass: median = the median-p99 run met the "
                             "budget; pooled = at most 1%% of all their requests together were over it "
                             "(default: %(default)s)")


# What a benchmark tells the `brandsafe serve` processes it starts: real-time serving threads, the
# setting the recorded numbers were measured under (RESULTS.md; opt-in since it is not the default).
# The machine's wake-up is the run's to set (machine_wakeup), not one peer's.
SERVED = ("--scheduling", "realtime")


def machine_wakeup(choice: str) -> tuple[wakeup.CpuWakeup, str]:
    """The run's CPU wake-up, held (for 'fast') until the returned request is released or the
    process ends, and a line saying what it is. Machine-wide, so every peer, the ceiling included,
    runs under it alike."""
    request = wakeup.CpuWakeup()
    if choice == "normal":
        return request, "cpu wake-up: as the OS sets it (--cpu-wakeup normal)"
    return request, f"cpu wake-up: {request.hold().describe()}"


def cpu_per_request(ladder: openloop.Ladder, unit_s: float, with_generator: bool = False) -> dict[float, float]:
    """CPU time per answered request at each offered rate, in units of `unit_s` seconds: the
    median over that rate's runs. The server's alone, or with the generator's added (it shares the
    cores with the server). Unlike a p99, it hardly depends on how the scheduler treated the run."""
    per_rate: dict[float, list[float]] = {}
    for step in ladder.repeats or ladder.steps:
        if step.server_cpu_pct is not None and step.achieved_rps > 0:
            pct = step.server_cpu_pct + (step.generator_cpu_pct if with_generator else 0.0)
            per_rate.setdefault(step.offered_rps, []).append(pct / 100 / step.achieved_rps / unit_s)
    return {rate: float(np.median(costs)) for rate, costs in sorted(per_rate.items())}


def step_seed(seed: int, rate: float, repeat: int) -> int:
    """The same schedule for every peer at a given (rate, repeat); a different one per repeat."""
    return seed + int(rate * 1000) + 7919 * repeat


async def measure(runners: dict[str, Runner], rates: list[float], step_seconds: float, budget_ms: float,
                  repeats: int = 3, refine: int = 2, arrivals: str = "poisson", seed: int = 0,
                  warmup_seconds: float = 2.0, pause_seconds: float = 0.5,
                  on_step: Callable[[str, openloop.StepResult], None] | None = None,
                  rule: openloop.RungRule = openloop.median_rule) -> dict[str, openloop.Ladder]:
    """Each peer's ladder (median-p99 step per rate; every run in `Ladder.repeats`; `rule` judges
    each rate's runs)."""
    cursors = {peer: 0 for peer in runners}  # each peer replays the file onwards, as on one ladder

    async def run(peer: str, rate: float, offsets: np.ndarray) -> openloop.StepResult:
        result = await call(runners[peer], offsets, rate, cursors[peer])
        cursors[peer] += result.sent
        await asyncio.sleep(pause_seconds)  # every peer goes idle between steps
        return result

    async def step(peer: str, rate: float, repeat: int) -> openloop.StepResult:
        result = await run(peer, rate, openloop.arrival_offsets(rate, step_seconds, arrivals,
                                                                step_seed(seed, rate, repeat)))
        if on_step:
            on_step(peer, result)
        return result

    if warmup_seconds > 0 and rates:
        for peer in runners:
            await run(peer, rates[0], openloop.arrival_offsets(rates[0], warmup_seconds, arrivals, seed + 10_000))
    # The inputs live all run: keep the cyclic GC from walking them mid-step.
    gc.collect()
    gc.freeze()
    try:
        return await openloop.paired_ladder(step, list(runners), rates, budget_ms, repeats, refine, rule=rule)
    finally:
        gc.unfreeze()


def print_step(budget_ms: float) -> Callable[[str, openloop.StepResult], None]:
    width = 15
    print(" " * width + openloop.STEP_HEADER, flush=True)
    return lambda peer, result: print(f"{peer:<{width}}{openloop.format_step(result, budget_ms)}", flush=True)


def print_medians(ladders: dict[str, openloop.Ladder], budget_ms: float) -> None:
    for peer, ladder in ladders.items():
        print(f"\n{peer}: median-p99 run per rate\n{openloop.STEP_HEADER}")
        for result in sorted(ladder.steps, key=lambda s: s.offered_rps):
            print(openloop.format_step(result, budget_ms))


def print_summary(ladders: dict[str, openloop.Ladder], budget_ms: float) -> None:
    """Each peer's median runs, then its max rate within the budget."""
    print_medians(ladders, budget_ms)
    for peer, ladder in ladders.items():
        print(f"{peer}: max rate with p99 <= {budget_ms:g} ms: {ladder.max_rate_within_budget:g}/s")
