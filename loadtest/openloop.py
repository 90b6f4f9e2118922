"""Open-loop load generator: offered rate steps, latency from the *intended* send time.

    python -m brandsafe.loadtest.openloop --target 127.0.0.1:50051 --rates 50,100,150,200 \
        --step-seconds 10 --arrivals poisson --budget-ms 20

A closed-loop client (locust, wrk-style "N users") sends the next request only after the last
answer, so a stalled server slows the client down and the queue it built never shows in the
numbers (coordinated omission). Here arrivals follow a fixed schedule (constant rate or Poisson)
that does not care how the server is doing; each request is timed from the moment the schedule
said it should go out. If the generator itself falls behind, that lateness is in the latency too
(and reported separately as send lag), so neither side can hide a queue.

Failed requests (any non-OK status, including our own deadline) count as infinitely late: a
step's p99 is within budget only if fewer than 1% of its requests failed.

The generator shares the machine with the server, so it is kept cheap: one process, grpc.aio on
uvloop, request bytes serialized before the step starts and sent through a channel method with no
(de)serializers. Its own CPU use per step is reported.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np

CLASSIFY_METHOD = "/brandsafe.v1.BrandSafety/Classify"
PERCENTILES = (50, 95, 99, 99.9)

Send = Callable[[bytes, float], Awaitable[str]]  # (payload, timeout_s) -> status code name


def arrival_offsets(rate: float, duration: float, arrivals: str = "constant", seed: int = 0) -> np.ndarray:
    """Intended send times (seconds from step start) for `rate` requests/s over `duration` s."""
    if rate <= 0 or duration <= 0:
        return np.zeros(0)
    if arrivals == "constant":
        return np.arange(int(round(rate * duration))) / rate
    if arrivals == "poisson":
        rng = np.random.default_rng(seed)
        # Draw a few more gaps than the mean needs, then cut at `duration`.
        n = int(rate * duration + 6 * math.sqrt(rate * duration) + 10)
        times = np.cumsum(rng.exponential(1.0 / rate, n))
        while times[-1] < duration:  # vanishingly rare; keep the process exact anyway
            times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / rate, n))])
        return times[times < duration]
    raise ValueError(f"arrivals must be 'constant' or 'poisson', not {arrivals!r}")


@dataclass
class StepResult:
    offered_rps: float
    sent: int
    ok: int
    achieved_rps: float
    latency_ms: dict[str, float]  # "p50", "p95", ... over all requests, failures as +inf
    errors: dict[str, int] = field(default_factory=dict)  # status code name -> count
    send_lag_p99_ms: float = 0.0  # how late the generator itself sent
    generator_cpu_pct: float = 0.0  # % of one core
    server_cpu_pct: float | None = None
    wall_s: float = 0.0
    late_ms: float | None = None  # the threshold `late` counts against, when the runner was given one
    late: int | None = None       # requests slower than late_ms, failures included

    def within(self, budget_ms: float) -> bool:
        return self.sent > 0 and self.latency_ms["p99"] <= budget_ms


def latency_summary(latencies_s: np.ndarray) -> dict[str, float]:
    """Percentiles in ms; NaN entries (failed requests) count as +inf, i.e. as late as can be."""
    if latencies_s.size == 0:
        return {f"p{p:g}": math.nan for p in PERCENTILES}
    ms = np.where(np.isnan(latencies_s), np.inf, latencies_s * 1000.0)
    return {f"p{p:g}": float(np.percentile(ms, p, method="higher")) for p in PERCENTILES}


async def run_schedule(send: Send, payloads: list[bytes], offsets: np.ndarray, timeout_s: float,
                       first_payload: int = 0, clock: Callable[[], float] = time.perf_counter):
    """Fire payloads at `offsets` (s) from now; return (latency_s, lag_s, codes, wall_s).

    latency_s[i] = completion time - intended send time i (NaN when the call failed); lag_s[i] =
    actual - intended send time.
    """
    loop = asyncio.get_running_loop()
    n = len(offsets)
    latency = np.full(n, np.nan)
    lag = np.zeros(n)
    codes: collections.Counter = collections.Counter()
    in_flight: set[asyncio.Task] = set()

    async def one(i: int, since: float, payload: bytes) -> None:
        code = await send(payload, timeout_s)
        codes[code] += 1
        if code == "OK":
            latency[i] = clock() - since

    start = clock() + 0.002  # a moment to get the first sleep under way
    for i in range(n):
        intended = start + offsets[i]
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)  # uvloop rounds to whole ms: may wake up to 0.5 ms early
        now = clock()
        lag[i] = now - intended
        # Late: timed from the intended instant (the wait is the system's fault). Early (timer
        # rounding): timed from the actual send, so an early start never flatters the latency.
        task = loop.create_task(one(i, min(intended, now), payloads[(first_payload + i) % len(payloads)]))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)
    return latency, lag, codes, clock() - start


def process_tree_cpu_s(pid: int) -> float:
    """utime+stime of `pid` and its live descendants (Triton runs as several processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = collections.defaultdict(list)
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "(comm)", which may contain spaces
        children[int(fields[1])].append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += cpu.get(p, 0.0)
        stack.extend(children.get(p, ()))
    return total


async def run_step(send: Send, payloads: list[bytes], rate: float, duration: float, arrivals: str = "poisson",
                   seed: int = 0, timeout_s: float = 1.0, first_payload: int = 0,
                   server_pid: int | None = None) -> StepResult:
    return await run_offsets(send, payloads, arrival_offsets(rate, duration, arrivals, seed), rate, timeout_s,
                             first_payload, server_pid)


async def run_offsets(send: Send, payloads: list[bytes], offsets: np.ndarray, rate: float, timeout_s: float = 1.0,
                      first_payload: int = 0, server_pid: int | None = None,
                      late_ms: float | None = None) -> StepResult:
    """One step on a given arrival schedule (`rate` is what it was drawn at, for the report);
    with `late_ms`, it also counts the requests slower than that or failed (StepResult.late)."""
    cpu0, srv0 = time.process_time(), (process_tree_cpu_s(server_pid) if server_pid else None)
    latency, lag, codes, wall = await run_schedule(send, payloads, offsets, timeout_s, first_payload)
    cpu1, srv1 = time.process_time(), (process_tree_cpu_s(server_pid) if server_pid else None)
    ok = codes.get("OK", 0)
    return StepResult(
        offered_rps=rate, sent=len(offsets), ok=ok, achieved_rps=ok / wall if wall > 0 else 0.0,
        latency_ms=latency_summary(latency), errors={k: v for k, v in codes.items() if k != "OK"},
        send_lag_p99_ms=float(np.percentile(lag, 99) * 1000) if len(lag) else 0.0,
        generator_cpu_pct=100.0 * (cpu1 - cpu0) / wall if wall > 0 else 0.0,
        server_cpu_pct=100.0 * (srv1 - srv0) / wall if server_pid and wall > 0 else None,
        wall_s=wall, late_ms=late_ms, late=late_count(latency, late_ms) if late_ms is not None else None,
    )


def late_count(latencies_s: np.ndarray, late_ms: float) -> int:
    """Requests slower than `late_ms`, failed ones (NaN) included."""
    return int(np.count_nonzero(~(latencies_s * 1000.0 <= late_ms)))


def parse_rates(spec: str) -> list[float]:
    """'50,100,150' or 'start:stop:step' (stop inclusive)."""
    if ":" in spec:
        start, stop, step = (float(x) for x in spec.split(":"))
        return [round(start + k * step, 6) for k in range(int((stop - start) / step + 1e-9) + 1)]
    return [float(x) for x in spec.split(",") if x.strip()]


@dataclass
class Ladder:
    steps: list[StepResult]
    budget_ms: float
    max_rate_within_budget: float  # 0 when even the lowest step missed the budget
    repeats: list[StepResult] = field(default_factory=list)  # paired_ladder: every run behind `steps`

    def to_json(self) -> dict:
        return {"budget_ms": self.budget_ms, "max_rate_within_budget": self.max_rate_within_budget,
                "steps": [asdict(s) for s in self.steps], "repeats": [asdict(s) for s in self.repeats]}


def best_rate(steps: list[StepResult], budget_ms: float) -> float:
    """The highest offered rate such that it and every lower rate tried met the budget: a lucky
    pass above a failure does not count."""
    return best_passing({step.offered_rps: step.within(budget_ms) for step in steps})


def best_passing(verdicts: dict[float, bool]) -> float:
    """The highest rate whose rung passed with every lower rung passing too (0 when the lowest failed)."""
    best = 0.0
    for rate in sorted(verdicts):
        if not verdicts[rate]:
            break
        best = rate
    return best


# How a rung's repeated runs become one pass or fail.
RungRule = Callable[[list[StepResult], float], bool]


def median_rule(runs: list[StepResult], budget_ms: float) -> bool:
    """The run with the median p99 met the budget: one bad run in three is ignored, two are not."""
    return median_step(runs).within(budget_ms)


POOLED_LATE_SHARE = 0.01  # a p99: at most 1 % of the requests may be late


def counts_late_at(run: StepResult, budget_ms: float) -> bool:
    """Whether `run` counted its late requests against this very budget (what the pooled rule reads)."""
    return run.late is not None and run.late_ms == budget_ms


def pooled_rule(runs: list[StepResult], budget_ms: float) -> bool:
    """The p99 over every request of the rung's runs together met the budget: at most 1 % of them
    were slower than it or failed. It weighs each request once, where the median rule turns each
    run into one pass-or-fail vote first, so a run whose p99 sits just over the budget fails the
    rung as surely as a stalled one. Needs each run's late count at this budget."""
    for run in runs:
        if not counts_late_at(run, budget_ms):
            counted = "no late requests" if run.late is None else f"late requests against {run.late_ms:g} ms"
            raise ValueError(f"pooled rule: a run at {run.offered_rps:g}/s counted {counted}, not against the "
                             f"{budget_ms:g} ms budget (give the runner late_ms=budget)")
    sent = sum(run.sent for run in runs)
    return sent > 0 and sum(run.late for run in runs) <= POOLED_LATE_SHARE * sent


RULES: dict[str, RungRule] = {"median": median_rule, "pooled": pooled_rule}


def runs_by_rate(runs: list[StepResult]) -> dict[float, list[StepResult]]:
    """Every run grouped by its offered rate, the rates in increasing order."""
    by_rate: dict[float, list[StepResult]] = {}
    for run in runs:
        by_rate.setdefault(run.offered_rps, []).append(run)
    return dict(sorted(by_rate.items()))


def rung_verdicts(runs: list[StepResult], budget_ms: float, rule: RungRule) -> dict[float, bool]:
    """Pass or fail per offered rate, from every run at that rate."""
    return {rate: rule(rate_runs, budget_ms) for rate, rate_runs in runs_by_rate(runs).items()}


def max_rate_by(ladder: Ladder, rule: RungRule) -> float:
    """The ladder's max rate within its budget read by `rule` from the same runs: how a different
    rule would have judged them (on the rungs this ladder tried)."""
    return best_passing(rung_verdicts(ladder.repeats or ladder.steps, ladder.budget_ms, rule))


async def step_ladder(step: Callable[[float], Awaitable[StepResult]], rates: list[float], budget_ms: float,
                      refine: int = 2, stop_after_misses: int = 2) -> Ladder:
    """Step the offered rate up; stop after `stop_after_misses` steps over budget in a row, then
    bisect `refine` times between the best passing rate and the first miss above it: paired_ladder
    with one peer and one run per rate. Shared by every peer (and the in-process ceiling), so their
    numbers come from one procedure."""
    ladder = (await paired_ladder(lambda _peer, rate, _repeat: step(rate), ["only"], rates, budget_ms,
                                  repeats=1, refine=refine, stop_after_misses=stop_after_misses))["only"]
    return Ladder(ladder.steps, budget_ms, ladder.max_rate_within_budget)  # one run per rate: nothing to repeat


def median_step(runs: list[StepResult]) -> StepResult:
    """The run whose p99 is the median of `runs` (the upper one of an even count): a real step, not
    a blend of several."""
    return sorted(runs, key=lambda s: s.latency_ms["p99"])[len(runs) // 2]


async def paired_ladder(step: Callable[[str, float, int], Awaitable[StepResult]], peers: list[str],
                        rates: list[float], budget_ms: float, repeats: int = 3, refine: int = 2,
                        stop_after_misses: int = 2, rule: RungRule = median_rule) -> dict[str, Ladder]:
    """step_ladder for several peers at once, in turns: at each offered rate every peer still
    climbing runs `repeats` times, interleaved (P Q, Q P, P Q, ...), so a slow spell on a shared
    machine falls on all of them alike; `rule` judges a peer's runs at a rate (by default its
    median-p99 run), and the median-p99 run is the one kept in `steps`. Whole ladders one after
    another (step_ladder per peer) leave minutes between the peers' runs at a rate, and on a noisy
    2-core VM a p99 near a 2 ms budget then says more about the minute than the peer.
    `step(peer, rate, repeat)` runs one step; the same (rate, repeat) should replay the same
    schedule for every peer."""
    steps: dict[str, list[StepResult]] = {p: [] for p in peers}
    runs_of: dict[str, list[StepResult]] = {p: [] for p in peers}
    passed: dict[str, dict[float, bool]] = {p: {} for p in peers}
    turn = 0

    async def measure(rate: float, who: list[str]) -> None:
        nonlocal turn
        runs: dict[str, list[StepResult]] = {p: [] for p in who}
        for repeat in range(repeats):
            first = turn % len(who)
            turn += 1
            for peer in who[first:] + who[:first]:
                runs[peer].append(await step(peer, rate, repeat))
        for peer in who:
            runs_of[peer].extend(runs[peer])
            steps[peer].append(median_step(runs[peer]))
            passed[peer][rate] = rule(runs[peer], budget_ms)

    misses = {p: 0 for p in peers}
    for rate in rates:
        climbing = [p for p in peers if misses[p] < stop_after_misses]
        if not climbing:
            break
        await measure(rate, climbing)
        for peer in climbing:
            misses[peer] = 0 if passed[peer][rate] else misses[peer] + 1
    for _ in range(refine):
        midpoints: dict[float, list[str]] = {}
        for peer in peers:
            low = best_passing(passed[peer])
            above = [rate for rate in passed[peer] if rate > low]
            if not above:
                continue
            mid = round((low + min(above)) / 2, 1)
            if mid not in passed[peer] and min(above) - mid >= 1:
                midpoints.setdefault(mid, []).append(peer)
        if not midpoints:
            break
        for mid, who in sorted(midpoints.items()):
            await measure(mid, who)
    return {p: Ladder(steps[p], budget_ms, best_passing(passed[p]), runs_of[p]) for p in peers}


async def run_ladder(send: Send, payloads: list[bytes], rates: list[float], step_seconds: float, budget_ms: float,
                     arrivals: str = "poisson", timeout_s: float = 1.0, refine: int = 2, stop_after_misses: int = 2,
                     warmup_seconds: float = 2.0, seed: int = 0, server_pid: int | None = None,
                     on_step: Callable[[StepResult], None] | None = None) -> Ladder:
    cursor, index = 0, 0

    async def step(rate: float) -> StepResult:
        nonlocal cursor, index
        result = await run_step(send, payloads, rate, step_seconds, arrivals, seed + index, timeout_s,
                                cursor, server_pid)
        cursor += result.sent  # each step replays the next stretch of the file
        index += 1
        if on_step:
            on_step(result)
        await asyncio.sleep(0.5)  # let the server go idle between steps
        return result

    if warmup_seconds > 0 and rates:
        await run_step(send, payloads, rates[0], warmup_seconds, arrivals, seed + 10_000, timeout_s, 0, None)
    return await step_ladder(step, rates, budget_ms, refine, stop_after_misses)


STEP_HEADER = (f"{'offered/s':>10}{'achieved/s':>11}{'sent':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
               f"{'p99.9 ms':>9}{'lag99':>7}{'gen cpu':>8}{'srv cpu':>8}  errors")


def format_step(s: StepResult, budget_ms: float | None = None) -> str:
    lat = s.latency_ms
    errors = ",".join(f"{k}:{v}" for k, v in sorted(s.errors.items())) or "-"
    mark = "" if budget_ms is None else ("  ok" if s.within(budget_ms) else "  OVER")
    srv = f"{s.server_cpu_pct:7.0f}%" if s.server_cpu_pct is not None else f"{'-':>8}"
    return (f"{s.offered_rps:>10.1f}{s.achieved_rps:>11.1f}{s.sent:>7d}{lat['p50']:>8.2f}{lat['p95']:>8.2f}"
            f"{lat['p99']:>8.2f}{lat['p99.9']:>9.2f}{s.send_lag_p99_ms:>7.2f}{s.generator_cpu_pct:>7.0f}%{srv}"
            f"  {errors}{mark}")


class GrpcSender:
    """Sends pre-serialized requests on one grpc.aio channel; returns the status code name, or
    what `check` makes of the response bytes (e.g. "FALLBACK" for an answer that is not a verdict)."""

    def __init__(self, target: str, method: str = CLASSIFY_METHOD, check: Callable[[bytes], str] | None = None):
        import grpc

        self._grpc = grpc
        self.check = check
        self.channel = grpc.aio.insecure_channel(target)
        self._call = self.channel.unary_unary(method)  # no serializers: bytes in, bytes out

    async def ready(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self.channel.channel_ready(), timeout_s)

    async def __call__(self, payload: bytes, timeout_s: float) -> str:
        try:
            response = await self._call(payload, timeout=timeout_s)
        except self._grpc.aio.AioRpcError as exc:
            return exc.code().name
        return self.check(response) if self.check else "OK"

    async def close(self) -> None:
        await self.channel.close()


def classify_check(response: bytes) -> str:
    """A fallback answer (the service gave up on scoring in time) is not a verdict: count it as a
    failure, or a server that sheds load this way would look fast exactly when it is overloaded."""
    from brandsafe.v1 import brandsafe_pb2 as pb

    return "FALLBACK" if pb.ClassifyResponse.FromString(response).fallback else "OK"


def classify_payloads(replay: Path | None) -> list[bytes]:
    from . import replay as replay_file

    return [replay_file.to_request(r).SerializeToString() for r in replay_file.load_or_build(replay)]


def rendered_texts(requests) -> list[str]:
    """The model input text of each ClassifyRequest, as the service renders it (default profile)."""
    from brandsafe.rendering import render
    from brandsafe.service.requests import parse

    return [render(parse(r, "default").page) for r in requests]


def classify_texts(replay: Path | None) -> list[str]:
    from . import replay as replay_file

    return rendered_texts(replay_file.to_request(r) for r in replay_file.load_or_build(replay))


async def measure(target: str, payloads: list[bytes], method: str = CLASSIFY_METHOD, server_pid: int | None = None,
                  print_steps: bool = True, check: Callable[[bytes], str] | None = None, **ladder_kwargs) -> Ladder:
    sender = GrpcSender(target, method, check)
    # Everything built so far (payloads, replay) lives for the whole run: keep the cyclic GC from
    # walking it mid-step, where a collection pause would show up as generator lag.
    gc.collect()
    gc.freeze()
    try:
        await sender.ready()
        budget = ladder_kwargs.get("budget_ms", 20.0)
        if print_steps:
            print(STEP_HEADER, flush=True)
        return await run_ladder(sender, payloads, server_pid=server_pid,
                                on_step=(lambda s: print(format_step(s, budget), flush=True)) if print_steps else None,
                                **ladder_kwargs)
    finally:
        await sender.close()


def run_async(coro):
    """uvloop when available: cheaper per request than the default loop, so the generator steals
    less of the CPU it shares with the server."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="127.0.0.1:50051", help="loopback address of the server")
    parser.add_argument("--replay", type=Path, default=Path(__file__).resolve().parent / "replay.jsonl",
                        help="replay file (built in memory from the labelled data if missing)")
    parser.add_argument("--rates", default="25:400:25", help="offered rates: 'a,b,c' or 'start:stop:step'")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    parser.add_argument("--budget-ms", type=float, default=20.0, help="p99 budget (default: %(default)s)")
    parser.add_argument("--timeout-ms", type=float, default=1000.0, help="per-request deadline")
    parser.add_argument("--refine", type=int, default=2, help="bisection steps after the ladder")
    parser.add_argument("--server-pid", type=int, help="report this process tree's CPU per step")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    host = args.target.rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        sys.exit("openloop: load stays on loopback; --target must be 127.x, localhost or [::1]")

    payloads = classify_payloads(args.replay)
    ladder = run_async(measure(args.target, payloads, server_pid=args.server_pid, check=classify_check,
                               rates=parse_rates(args.rates),
                               step_seconds=args.step_seconds, budget_ms=args.budget_ms, arrivals=args.arrivals,
                               timeout_s=args.timeout_ms / 1000, refine=args.refine))
    print(f"max rate with p99 <= {args.budget_ms:g} ms: {ladder.max_rate_within_budget:g} requests/s")
    if args.json_out:
        args.json_out.write_text(json.dumps(ladder.to_json(), indent=1))


if __name__ == "__main__":
    main()
