"""Where the service's CPU goes at one offered rate: per-thread CPU and wake-ups per request, and the
garbage collector's pauses, over one open-loop step.

    python -m brandsafe.loadtest.where_time_goes --rate 100 --seconds 20

Starts `brandsafe serve` (cache off unless --serve-flags turns it on, so every request reaches the
model), warms it with a short step, then runs one Poisson step at --rate and prints: the step
(latency percentiles, achieved rate, CPU), each server thread's CPU time and voluntary context
switches per answered request (from /proc/PID/task/*, Linux only; the inference workers carry
OS-level names), and the GC pauses by generation taken during the step (from the server's
`brandsafe_gc_pause_seconds` metric).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
import urllib.request
from collections import defaultdict
from pathlib import Path

from . import openloop, paired
from .compare import ServerProcess, machine
from .native_generator import pick_generator, write_requests

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int) -> dict[str, tuple[str, float, int]]:
    """tid → (thread name, CPU seconds, voluntary context switches) for every thread of `pid`."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime
        switches = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        threads[tid] = ("event loop (main)" if tid == str(pid) else name, cpu, switches)
    return threads


def per_thread(before: dict, after: dict, answered: int) -> list[tuple[str, float, float]]:
    """(thread group, CPU ms per request, context switches per request), busiest first; threads of
    one name (gRPC's event_engine pool, ORT's pool) are summed."""
    groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for tid, (name, cpu, switches) in after.items():
        if tid in before:
            groups[name][0] += cpu - before[tid][1]
            groups[name][1] += switches - before[tid][2]
    rows = [(name, 1000 * cpu / answered, switches / answered) for name, (cpu, switches) in groups.items()]
    return sorted(rows, key=lambda row: -row[1])


def gc_pauses(metrics_url: str) -> dict[str, tuple[float, float]]:
    """generation → (collections, seconds paused) so far, from the server's metrics."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    counts = dict(re.findall(r'brandsafe_gc_pause_seconds_count\{generation="(\d)"\} ([\d.e+]+)', text))
    sums = dict(re.findall(r'brandsafe_gc_pause_seconds_sum\{generation="(\d)"\} ([\d.e+]+)', text))
    return {g: (float(counts.get(g, 0)), float(sums.get(g, 0))) for g in "012"}


async def run_steps(target: str, pid: int, payloads: list[bytes], requests_file: Path | None, args, metrics_url: str):
    opened: list = []
    try:
        runner = await paired.server_runner(target, pid, payloads, requests_file, args.timeout_ms / 1000, opened)
        warm_rate = min(args.rate, 50.0)
        await paired.call(runner, openloop.arrival_offsets(warm_rate, 3.0, "poisson", args.seed + 1), warm_rate)
        threads_before, pauses_before = thread_times(pid), gc_pauses(metrics_url)
        step = await paired.call(runner, openloop.arrival_offsets(args.rate, args.seconds, "poisson", args.seed),
                                 args.rate)
        return step, threads_before, thread_times(pid), pauses_before, gc_pauses(metrics_url)
    finally:
        await paired.close_all(opened)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"),
                        help="bundle to serve (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered requests per second (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="length of the measured step (default: %(default)s)")
    parser.add_argument("--serve-flags", default="", help="extra `brandsafe serve` flags, e.g. '--workers 1'")
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    parser.add_argument("--timeout-ms", type=float, default=1000.0, help="per-request deadline (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival schedule (default: %(default)s)")
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator: the C++ one or openloop.py; auto = native when it builds")
    args = parser.parse_args(argv)
    if not Path("/proc/self/task").is_dir():
        parser.error("per-thread CPU needs Linux's /proc")

    generator = pick_generator(args.generator)
    payloads = openloop.classify_payloads(args.replay)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-where-"))
    requests_file = write_requests(payloads, work / "requests.bin") if generator == "native" else None
    argv_ = [sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(args.bundle), "--port", "0",
             "--cache-entries", "0", "--metrics-port", "0", *shlex.split(args.serve_flags)]
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"generator: {generator}; serve flags: {args.serve_flags or 'defaults'}", flush=True)
    server = ServerProcess("service", argv_, work)
    metrics_port = re.search(r"metrics on :(\d+)/metrics", server.log.read_text()).group(1)
    try:
        step, threads_before, threads_after, pauses_before, pauses_after = openloop.run_async(
            run_steps(server.target, server.pid, payloads, requests_file, args, f"http://127.0.0.1:{metrics_port}/"))
    finally:
        server.stop()
    print(openloop.STEP_HEADER)
    print(openloop.format_step(step, None), flush=True)
    answered = max(step.ok, 1)
    print(f"\nper answered request ({step.ok} answered):")
    print(f"{'thread':24s} {'CPU ms':>8s} {'wake-ups':>9s}")
    for name, cpu_ms, switches in per_thread(threads_before, threads_after, answered):
        if cpu_ms >= 0.0005 or switches >= 0.05:
            print(f"{name:24s} {cpu_ms:8.3f} {switches:9.1f}")
    print("\nGC pauses during the step (all Python threads stop):")
    for generation in "012":
        count = pauses_after[generation][0] - pauses_before[generation][0]
        seconds = pauses_after[generation][1] - pauses_before[generation][1]
        mean = f"{1000 * seconds / count:.3f} ms each" if count else "-"
        print(f"  generation {generation}: {count:.0f} collections, {1000 * seconds:.1f} ms in all, {mean}")


if __name__ == "__main__":
    main()
