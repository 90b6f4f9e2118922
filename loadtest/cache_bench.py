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
import asyncio
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from . import openloop
from .compare import ServerProcess, machine

METHOD = openloop.CLASSIFY_METHOD
NATIVE_DIR = Path(__file__).resolve().parent / "native"
NATIVE_SOURCE = NATIVE_DIR / "openloop.cc"
NATIVE_BINARY = NATIVE_DIR / "build" / "openloop"


class NativeUnavailable(RuntimeError):
    """The C++ generator cannot be built here (no g++, or no libgrpc++-dev); the message says why."""


def build_native(force: bool = False) -> Path:
    """Build loadtest/native/openloop.cc on first use (or when the source is newer) and return the
    binary. Needs g++, pkg-config and gRPC C++ (Debian: apt-get install g++ pkg-config libgrpc++-dev)."""
    if not force and NATIVE_BINARY.exists() and NATIVE_BINARY.stat().st_mtime >= NATIVE_SOURCE.stat().st_mtime:
        return NATIVE_BINARY
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise NativeUnavailable("no C++ compiler (g++) on PATH")
    if not shutil.which("pkg-config"):
        raise NativeUnavailable("no pkg-config on PATH (Debian: apt-get install pkg-config libgrpc++-dev)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True)
    if flags.returncode != 0:
        raise NativeUnavailable("gRPC C++ not found by pkg-config (Debian: apt-get install libgrpc++-dev)")
    NATIVE_BINARY.parent.mkdir(exist_ok=True)
    partial = NATIVE_BINARY.with_suffix(f".{os.getpid()}.tmp")
    command = [compiler, "-O2", "-std=c++17", str(NATIVE_SOURCE), *flags.stdout.split(), "-o", str(partial)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise NativeUnavailable(f"building {NATIVE_SOURCE.name} failed:\n{built.stderr[-2000:]}")
    partial.replace(NATIVE_BINARY)  # atomic: a concurrent run never executes a half-written binary
    return NATIVE_BINARY


def write_requests(payloads: list[bytes], path: Path) -> Path:
    """The native generator's input: [uint32 little-endian length][serialized request] records."""
    with open(path, "wb") as out:
        for payload in payloads:
            out.write(struct.pack("<I", len(payload)))
            out.write(payload)
    return path


def fallback_field_number() -> int:
    from brandsafe.v1 import brandsafe_pb2 as pb

    return pb.ClassifyResponse.DESCRIPTOR.fields_by_name["fallback"].number


class NativeGenerator:
    """The C++ open-loop generator as a child process: one JSON command per step on its stdin (the
    intended send offsets, so it replays exactly the schedule the Python generator would), one JSON
    result per step on its stdout. Python only waits on the pipe meanwhile, and reads the server's
    CPU around each step as openloop.run_step does."""

    def __init__(self, target: str, requests_file: Path, method: str = METHOD, check_fallback: bool = True,
                 binary: Path | None = None):
        argv = [str(binary or build_native()), "--target", target, "--requests", str(requests_file),
                "--method", method, "--serve"]
        if check_fallback:  # a fallback answer is not a verdict: counted as FALLBACK, like classify_check
            argv += ["--fallback-field", str(fallback_field_number())]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.proc.stdout.readline()
        if not hello:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"native generator exited ({self.proc.returncode}) before connecting to {target}")
        self.info = json.loads(hello)

    def raw_step(self, offsets, rate: float, first: int = 0, timeout_s: float = 1.0) -> dict:
        command = {"rate": rate, "first": first, "timeout_s": timeout_s,
                   "offsets": [round(float(x), 7) for x in offsets]}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"native generator exited ({self.proc.wait(timeout=10)}) mid-step")
        return json.loads(line)

    def step(self, offsets, rate: float, first: int = 0, timeout_s: float = 1.0,
             server_pid: int | None = None) -> openloop.StepResult:
        srv0 = openloop.process_tree_cpu_s(server_pid) if server_pid else None
        raw = self.raw_step(offsets, rate, first, timeout_s)
        srv1 = openloop.process_tree_cpu_s(server_pid) if server_pid else None
        return step_result(raw, server_cpu_s=(srv1 - srv0) if server_pid else None)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def step_result(raw: dict, server_cpu_s: float | None = None) -> openloop.StepResult:
    """The native generator's step JSON as an openloop.StepResult (null percentiles are +inf)."""
    wall = raw["wall_s"]
    return openloop.StepResult(
        offered_rps=raw["offered_rps"], sent=raw["sent"], ok=raw["ok"], achieved_rps=raw["achieved_rps"],
        latency_ms={k: math.inf if v is None else v for k, v in raw["latency_ms"].items()},
        errors=dict(raw["errors"]), send_lag_p99_ms=raw["send_lag_p99_ms"],
        generator_cpu_pct=raw["generator_cpu_pct"],
        server_cpu_pct=100.0 * server_cpu_s / wall if server_cpu_s is not None and wall > 0 else None, wall_s=wall)


def measure_native(target: str, requests_file: Path, rates: list[float], step_seconds: float, budget_ms: float,
                   arrivals: str = "poisson", timeout_s: float = 1.0, refine: int = 2, stop_after_misses: int = 2,
                   warmup_seconds: float = 2.0, seed: int = 0, server_pid: int | None = None,
                   check_fallback: bool = True, print_steps: bool = True) -> openloop.Ladder:
    """openloop.run_ladder's procedure (warm-up, same seeds, same ladder and bisection) with the C++
    generator sending."""
    with NativeGenerator(target, requests_file, check_fallback=check_fallback) as gen:
        if print_steps:
            print(openloop.STEP_HEADER, flush=True)
        if warmup_seconds > 0 and rates:
            warmup = openloop.arrival_offsets(rates[0], warmup_seconds, arrivals, seed + 10_000)
            gen.step(warmup, rates[0], 0, timeout_s)
        cursor, index = 0, 0

        async def step(rate: float) -> openloop.StepResult:
            nonlocal cursor, index
            result = gen.step(openloop.arrival_offsets(rate, step_seconds, arrivals, seed + index), rate, cursor,
                              timeout_s, server_pid)
            cursor += result.sent  # each step replays the next stretch of the file
            index += 1
            if print_steps:
                print(openloop.format_step(result, budget_ms), flush=True)
            time.sleep(0.5)  # let the server go idle between steps
            return result

        return asyncio.run(openloop.step_ladder(step, rates, budget_ms, refine, stop_after_misses))


def _lookups(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'brandsafe_cache_lookups_total\{result="(\w+)"\} ([\d.e+]+)', text)}


def pick_generator(choice: str) -> str:
    """"native" when the C++ generator builds here, else "python" (with the reason, on stderr)."""
    if choice == "python":
        return "python"
    try:
        build_native()
        return "native"
    except NativeUnavailable as exc:
        if choice == "native":
            sys.exit(f"cache_bench: --generator native: {exc}")
        print(f"cache_bench: native generator unavailable ({exc}); falling back to the Python generator, whose "
              "own send lag (~1-1.5 ms p99 on 2 cores) hides sub-2 ms latencies", file=sys.stderr, flush=True)
        return "python"


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
