"""Verdict cache benchmark: hit ratio on a Zipf-like replay, and the cache-hit path's max rate
against a bare grpc.aio echo server returning a response of the same size, in one run.

    python -m brandsafe.loadtest.cache_bench --bundle bundles/minilm-cpu --budget-ms 2 --rounds 3

1. Hit ratio: the replay's impressions in order through a cold server (cache on); the share that
   were answered from the cache, read from the server's own metrics.
2. Hit path: the same server, now warm, under the open-loop ladder (every request a hit), and the
   echo server under the identical ladder, taking turns for --rounds rounds. Prints each one's max
   rate with p99 within budget (median over rounds) and the ratio, and each server's CPU time per
   request, a cost that depends far less than a p99 on what else the machine is running.

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

from . import openloop
from .native_generator import measure_native, pick_generator, write_requests
from .compare import ServerProcess, machine

METHOD = openloop.CLASSIFY_METHOD
def _lookups(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'brandsafe_cache_lookups_total\{result="(\w+)"\} ([\d.e+]+)', text)}


def cpu_us_per_request(ladder: openloop.Ladder) -> float:
    """The server's marginal CPU time per answered request (us): the slope of a least-squares line
    through (achieved rate, server CPU) over the ladder's steps, so a fixed idle cost (timers, the
    metrics thread) is not spread over requests. Unlike a p99, it hardly depends on how the
    scheduler treated the run."""
    points = [(s.achieved_rps, s.server_cpu_pct / 100) for s in ladder.steps
              if s.server_cpu_pct is not None and s.achieved_rps > 0]
    if len({round(r) for r, _ in points}) < 2:
        return float(np.mean([c / r for r, c in points]) * 1e6) if points else math.nan
    rates, cpu = np.array(points).T
    return float(np.polyfit(rates, cpu, 1)[0] * 1e6)


def summary(service: list[openloop.Ladder], echo: list[openloop.Ladder], budget_ms: float) -> tuple[str, float]:
    s = float(np.median([l.max_rate_within_budget for l in service]))
    e = float(np.median([l.max_rate_within_budget for l in echo]))
    ratio = s / e if e else math.nan
    rounds = lambda ladders: ", ".join(f"{l.max_rate_within_budget:g}" for l in ladders)  # noqa: E731
    cs = float(np.median([cpu_us_per_request(l) for l in service]))
    ce = float(np.median([cpu_us_per_request(l) for l in echo]))
    lines = [f"max rate with p99 <= {budget_ms:g} ms (median of {len(service)} round(s)): "
             f"service cache hits {s:g}/s [{rounds(service)}], echo {e:g}/s [{rounds(echo)}], ratio {ratio:.2f}x",
             f"server CPU per request (marginal, median of rounds): service {cs:.0f} us, echo {ce:.0f} us, "
             f"echo/service {ce / cs:.2f}x"]
    return "\n".join(lines), ratio


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"))
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    parser.add_argument("--budget-ms", type=float, default=2.0)
    parser.add_argument("--rates", default="250:4000:250")
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=1,
                        help="ladders per peer, alternating service and echo; the medians are compared")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator: the C++ one (loadtest/native, built on first use; needs "
                             "libgrpc++-dev) or openloop.py; auto = native when it builds (default: %(default)s)")
    parser.add_argument("--json-out", type=Path, help="write every ladder and the hit ratio here")
    args = parser.parse_args(argv)

    generator = pick_generator(args.generator)
    payloads = openloop.classify_payloads(args.replay)
    ladder = dict(rates=openloop.parse_rates(args.rates), step_seconds=args.step_seconds, budget_ms=args.budget_ms,
                  arrivals="poisson", refine=2, warmup_seconds=2.0, seed=0, timeout_s=1.0)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-cache-bench-"))
    requests_file = write_requests(payloads, work / "requests.bin") if generator == "native" else None

    def measure(target: str, pid: int, check: bool) -> openloop.Ladder:
        if generator == "native":
            return measure_native(target, requests_file, server_pid=pid, check_fallback=True, **ladder)
        return openloop.run_async(openloop.measure(target, payloads, server_pid=pid,
                                                   check=openloop.classify_check if check else None, **ladder))

    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{len(payloads)} replay impressions; budget p99 <= {args.budget_ms} ms; generator: {generator}", flush=True)

    service = ServerProcess("service", [sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(args.bundle),
                                        "--threads", str(args.threads), "--port", "0", "--metrics-port", "0"], work)
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

        # Both peers stay up (an idle one costs nothing) and take turns, so drift in what else runs
        # on the machine falls on both alike.
        response_file = work / "response.bin"
        response_file.write_bytes(sample_response)
        echo = ServerProcess("echo", [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                                      str(response_file), "--port", "0"], work)
        service_ladders, echo_ladders = [], []
        for round_no in range(1, args.rounds + 1):
            tag = f" round {round_no}/{args.rounds}" if args.rounds > 1 else ""
            print(f"\ncache-hit path (warm service){tag}:", flush=True)
            service_ladders.append(measure(service.target, service.pid, check=True))
            print(f"\necho server ({len(sample_response)}-byte responses){tag}:", flush=True)
            echo_ladders.append(measure(echo.target, echo.pid, check=False))
        model_calls = _lookups(metrics_url).get("model", 0) - counts.get("model", 0)
    finally:
        service.stop()
        if echo is not None:
            echo.stop()

    text, ratio = summary(service_ladders, echo_ladders, args.budget_ms)
    print(f"\n{text}\n(model calls during the hit-path runs: {int(model_calls)}; generator: {generator}; "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "machine": machine(), "generator": generator, "hit_ratio": hits / total, "ratio": ratio,
            "model_calls_during_hit_runs": model_calls, "service": [l.to_json() for l in service_ladders],
            "echo": [l.to_json() for l in echo_ladders]}, indent=1))


if __name__ == "__main__":
    main()
