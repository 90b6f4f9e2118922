"""Verdict cache benchmark: hit ratio on a Zipf-like replay, and the cache-hit path's max rate
against a bare grpc.aio echo server returning a response of the same size, in one run.

    python -m brandsafe.loadtest.cache_bench --bundle bundles/minilm-cpu --budget-ms 2 --repeats 3

1. Hit ratio: the replay's impressions in order through a cold server (cache on); the share that
   were answered from the cache, read from the server's own metrics.
2. Hit path: the same server, now warm (every request a hit), and the echo server, climbing one
   open-loop ladder together: at each offered rate each runs --repeats steps, in turns (S E, E S,
   ...), and its median-p99 step counts (openloop.paired_ladder), so both face the same minutes of
   a noisy shared machine. Prints each one's max rate with p99 within budget and the ratio, and
   each server's CPU time per request at the rates both ran, a cost that depends far less than a
   p99 on what else the machine is running, and the service's garbage-collector pauses meanwhile
   (from its metrics), so a tail can be told apart from a collection.

The load comes from the C++ open-loop generator in loadtest/native/ (built on first use with g++
and Debian's libgrpc++-dev; --generator python forces openloop.py, and it is the fallback, with a
message, when the C++ one cannot be built). Both replay the same schedules (same Poisson seeds,
same ladder, latency from the intended send time); the C++ one sends with ~0.1-0.3 ms of lag and
~0.1 ms of CPU per request, where the Python one lags 1-1.5 ms at p99 on two cores, too much to
see a 2 ms budget.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from . import openloop, paired
from .native_generator import pick_generator, write_requests
from .compare import ServerProcess, machine

METHOD = openloop.CLASSIFY_METHOD


def _lookups(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'brandsafe_cache_lookups_total\{result="(\w+)"\} ([\d.e+]+)', text)}


def _gc_pauses(metrics_url: str) -> dict[str, tuple[float, float, dict[float, float]]]:
    """The service's garbage-collector pauses so far, by generation: (count, seconds, cumulative
    count per bucket bound)."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    pauses: dict[str, tuple[float, float, dict[float, float]]] = {}
    for generation in ("0", "1", "2"):
        label = f'generation="{generation}"'
        count = sum_ = 0.0
        buckets: dict[float, float] = {}
        for m in re.finditer(r'brandsafe_gc_pause_seconds_(count|sum|bucket)\{([^}]*)\} ([\d.e+-]+)', text):
            if label not in m.group(2):
                continue
            if m.group(1) == "count":
                count = float(m.group(3))
            elif m.group(1) == "sum":
                sum_ = float(m.group(3))
            else:
                bound = re.search(r'le="([^"]+)"', m.group(2)).group(1)
                buckets[math.inf if bound == "+Inf" else float(bound)] = float(m.group(3))
        pauses[generation] = (count, sum_, buckets)
    return pauses


def gc_pause_line(before: dict, after: dict) -> str:
    """The collections between two `_gc_pauses` readings, per generation: how many, their total,
    and the bound of the bucket that holds the longest."""
    parts = []
    for generation, (count, total, buckets) in after.items():
        count0, total0, buckets0 = before.get(generation, (0.0, 0.0, {}))
        if count - count0 <= 0:
            parts.append(f"generation {generation}: none")
            continue
        grew = [bound for bound in sorted(buckets) if buckets[bound] - buckets0.get(bound, 0.0) >= count - count0]
        longest = f"<= {grew[0] * 1000:g} ms" if grew and not math.isinf(grew[0]) else "over the largest bucket"
        parts.append(f"generation {generation}: {int(count - count0)} ({(total - total0) * 1000:.1f} ms in all, "
                     f"longest {longest})")
    return "; ".join(parts)


def cpu_comparison(service: openloop.Ladder, echo: openloop.Ladder) -> tuple[list[tuple[float, float, float]], float]:
    """(rate, service us, echo us) at every rate both servers ran, and the median of echo/service
    over them. Only equal rates compare: a server's CPU per request falls as the rate rises (one
    wake-up of its threads serves several requests), and the echo server climbs to rates the
    service never runs, so a fit over each one's own ladder makes the echo look cheaper than it is."""
    cs, ce = paired.cpu_per_request(service, 1e-6), paired.cpu_per_request(echo, 1e-6)
    rows = [(rate, cs[rate], ce[rate]) for rate in cs if rate in ce]
    return rows, float(np.median([e / s for _, s, e in rows])) if rows else math.nan


RULE_WORDS = {"median": "median-p99 step of {repeats} interleaved runs per rate",
              "pooled": "p99 of all {repeats} interleaved runs' requests pooled per rate"}


def summary(first: openloop.Ladder, second: openloop.Ladder, budget_ms: float, repeats: int,
            names: tuple[str, str] = ("service", "echo"),
            first_rate_name: str = "service cache hits",
            rule: str = "median") -> tuple[str, float, list[tuple[float, float, float]]]:
    """(printed lines, max-rate ratio first/second by `rule`, the CPU rows of cpu_comparison).
    `names` label the two servers in the CPU line; the max-rate line calls the first one
    `first_rate_name`. Where the runs carry late counts, the other rule's reading of the same runs
    is printed too, so a change of rule never hides what the old one says."""
    s, e = first.max_rate_within_budget, second.max_rate_within_budget
    ratio = s / e if e else math.nan
    rows, cpu_ratio = cpu_comparison(first, second)
    lines = [f"max rate with p99 <= {budget_ms:g} ms ({RULE_WORDS[rule].format(repeats=repeats)}): "
             f"{first_rate_name} {s:g}/s, {names[1]} {e:g}/s, ratio {ratio:.2f}x"]
    runs = (first.repeats or first.steps) + (second.repeats or second.steps)
    if runs and all(openloop.counts_late_at(run, budget_ms) for run in runs):
        for other in sorted(set(RULE_WORDS) - {rule}):
            s2, e2 = (openloop.max_rate_by(ladder, openloop.RULES[other]) for ladder in (first, second))
            lines.append(f"  the same runs by the {other} rule ({RULE_WORDS[other].format(repeats=repeats)}), "
                         f"on the rates this ladder tried: {first_rate_name} {s2:g}/s, {names[1]} {e2:g}/s, "
                         f"ratio {s2 / e2 if e2 else math.nan:.2f}x")
    lines.append("server CPU per request at the rates both ran (median run): "
                 + ", ".join(f"{rate:g}/s {names[0]} {us_s:.0f} us, {names[1]} {us_e:.0f} us" for rate, us_s, us_e in rows)
                 + f"; {names[1]}/{names[0]} {cpu_ratio:.2f}x (median over those rates)")
    return "\n".join(lines), ratio, rows


def late_shares(ladder: openloop.Ladder) -> dict[float, float]:
    """Per offered rate, the share of all its runs' requests that were late (over the budget or
    failed): what the pooled rule compares with 1 %."""
    shares = {}
    for rate, runs in openloop.runs_by_rate(ladder.repeats or ladder.steps).items():
        counted = [run for run in runs if run.late is not None]
        sent = sum(run.sent for run in counted)
        if sent:
            shares[rate] = sum(run.late for run in counted) / sent
    return shares


async def measure_pair(targets: dict[str, tuple[str, int]], payloads: list[bytes], requests_file: Path | None,
                       rates: list[float], step_seconds: float, budget_ms: float,
                       repeats: int, rule: str = "median") -> dict[str, openloop.Ladder]:
    opened: list = []
    try:
        # Every step counts its late requests, whatever the rule, so both rules can read the runs.
        runners = {peer: await paired.server_runner(target, pid, payloads, requests_file, 1.0, opened,
                                                    # the echo returns a verdict's bytes; only the service falls back
                                                    check_fallback=peer == "service", late_ms=budget_ms)
                   for peer, (target, pid) in targets.items()}
        return await paired.measure(runners, rates, step_seconds, budget_ms, repeats,
                                    on_step=paired.print_step(budget_ms), rule=openloop.RULES[rule])
    finally:
        await paired.close_all(opened)


def print_late_shares(ladders: dict[str, openloop.Ladder]) -> None:
    shares = {peer: late_shares(ladder) for peer, ladder in ladders.items()}
    if any(shares.values()):
        print("\nshare of each rate's requests over the budget, all runs pooled: " + "; ".join(
            f"{peer} " + ", ".join(f"{rate:g}/s {share:.2%}" for rate, share in by_rate.items())
            for peer, by_rate in shares.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"),
                        help="bundle the service serves (default: %(default)s)")
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    paired.add_ladder_arguments(parser, rates="250,500,750,1000,1500,2000,2500,3000", budget_ms=2.0,
                                step_seconds=4.0)
    paired.add_rule_argument(parser)
    parser.add_argument("--threads", type=int, default=0,
                        help="the service's ORT threads per worker, 0 = its automatic default (default: %(default)s)")
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator: the C++ one (loadtest/native, built on first use; needs "
                             "libgrpc++-dev) or openloop.py; auto = native when it builds (default: %(default)s)")
    parser.add_argument("--json-out", type=Path, help="write every ladder and the hit ratio here")
    args = parser.parse_args(argv)

    generator = pick_generator(args.generator)
    payloads = openloop.classify_payloads(args.replay)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-cache-bench-"))
    requests_file = write_requests(payloads, work / "requests.bin") if generator == "native" else None

    wake, wake_line = paired.machine_wakeup(args.cpu_wakeup)
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{len(payloads)} replay impressions; budget p99 <= {args.budget_ms} ms; generator: {generator}; "
          f"{wake_line}", flush=True)

    service = ServerProcess("service", [sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(args.bundle),
                                        "--threads", str(args.threads), "--port", "0", "--metrics-port", "0",
                                        *paired.SERVED], work)
    echo = None
    try:
        metrics_port = re.search(r"metrics on :(\d+)", service.log.read_text()).group(1)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        with grpc.insecure_channel(service.target) as channel:
            call = channel.unary_unary(METHOD)
            for payload in payloads:  # cold, in replay order: the hit ratio a fresh replica sees
                response = call(payload, timeout=10)
            sample_response = response
        counts = _lookups(metrics_url)
        total = sum(counts.values())
        hits = counts.get("local", 0) + counts.get("redis", 0) + counts.get("coalesced", 0)
        print(f"hit ratio over the replay from cold: {hits / total:.1%} ({int(hits)} of {int(total)})", flush=True)

        # Both peers stay up (an idle one costs nothing) and take turns step by step.
        response_file = work / "response.bin"
        response_file.write_bytes(sample_response)
        echo = ServerProcess("echo", [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                                      str(response_file), "--port", "0"], work)
        gc_before = _gc_pauses(metrics_url)
        print(f"\ncache-hit path (warm service) and echo server ({len(sample_response)}-byte responses), "
              f"{args.repeats} interleaved runs per rate:", flush=True)
        ladders = openloop.run_async(measure_pair(
            {"service": (service.target, service.pid), "echo": (echo.target, echo.pid)}, payloads, requests_file,
            openloop.parse_rates(args.rates), args.step_seconds, args.budget_ms, args.repeats, args.rule))
        model_calls = _lookups(metrics_url).get("model", 0) - counts.get("model", 0)
        gc_line = gc_pause_line(gc_before, _gc_pauses(metrics_url))
    finally:
        service.stop()
        if echo is not None:
            echo.stop()
        wake.release()

    paired.print_medians(ladders, args.budget_ms)
    print_late_shares(ladders)
    text, ratio, cpu_rows = summary(ladders["service"], ladders["echo"], args.budget_ms, args.repeats, rule=args.rule)
    print(f"\n{text}\n(model calls during the hit-path runs: {int(model_calls)}; generator: {generator}; "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})\n"
          f"service's garbage-collector pauses during the hit-path runs: {gc_line}")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "machine": machine(), "generator": generator, "hit_ratio": hits / total, "ratio": ratio,
            "rule": args.rule, "model_calls_during_hit_runs": model_calls, "repeats": args.repeats,
            "cpu_us_per_request": [dict(zip(("rate", "service", "echo"), row)) for row in cpu_rows],
            **{peer: ladder.to_json() for peer, ladder in ladders.items()}}, indent=1))


if __name__ == "__main__":
    main()
