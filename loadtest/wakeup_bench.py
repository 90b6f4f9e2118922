"""How long a thread woken on an idle core takes to run, with idle cores held ready and without.

Two processes ping-pong over pipes with an idle gap before each ping, so the replying core is
idle (halted, or polling) when the ping arrives. The latency is the replier's wake time minus the
sender's send time, both on CLOCK_MONOTONIC. The arms take turns in short blocks, so a slow minute
falls on both alike:

    python -m brandsafe.loadtest.wakeup_bench --pings 2000 --gap-us 2000 --rounds 6

"fast" holds a PM QoS CPU-latency request of 0 us while its blocks run (service/wakeup.py, what a
benchmark run holds with --cpu-wakeup fast); "normal" holds none. Needs root for "fast"; without it
the run says so and stops.
"""
from __future__ import annotations

import argparse
import os
import struct
import time
from pathlib import Path

import numpy as np

from brandsafe.service import wakeup

_STAMP = struct.Struct("=q")


def replier(ping_fd: int, pong_fd: int) -> None:
    """Child: for every ping, answer at once with the time it woke."""
    while True:
        data = os.read(ping_fd, 1)
        if not data:
            return
        os.write(pong_fd, _STAMP.pack(time.monotonic_ns()))


def block(ping_fd: int, pong_fd: int, pings: int, gap_s: float) -> np.ndarray:
    """Wake-up latencies (us) of `pings` pings, each after `gap_s` idle."""
    woke = np.empty(pings)
    for i in range(pings):
        time.sleep(gap_s)
        sent = time.monotonic_ns()
        os.write(ping_fd, b"p")
        woke[i] = (_STAMP.unpack(os.read(pong_fd, _STAMP.size))[0] - sent) / 1e3
    return woke


def measure(pings: int, gap_s: float, rounds: int, device=wakeup.DEVICE) -> dict[str, np.ndarray]:
    ping_read, ping_write = os.pipe()
    pong_read, pong_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ping_write)
        os.close(pong_read)
        try:
            replier(ping_read, pong_write)
        finally:
            os._exit(0)
    os.close(ping_read)
    os.close(pong_write)
    per_arm: dict[str, list[np.ndarray]] = {"normal": [], "fast": []}
    request = wakeup.CpuWakeup(device)
    try:
        block(ping_write, pong_read, 50, gap_s)  # both processes warm before anything counts
        for r in range(rounds):
            order = ("normal", "fast") if r % 2 == 0 else ("fast", "normal")
            for arm in order:
                if arm == "fast":
                    outcome = request.hold(0)
                    if not outcome.held:
                        raise SystemExit(f"wakeup_bench: {outcome.describe()}")
                per_arm[arm].append(block(ping_write, pong_read, pings // rounds, gap_s))
                request.release()
    finally:
        request.release()
        os.close(ping_write)
        os.waitpid(child, 0)
        os.close(pong_read)
    return {arm: np.concatenate(blocks) for arm, blocks in per_arm.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pings", type=int, default=2000, help="pings per arm (default: %(default)s)")
    parser.add_argument("--gap-us", type=float, default=2000,
                        help="idle time before each ping, long enough for a core to go idle (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per arm, taking turns (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.pings < args.rounds or args.rounds < 1 or args.gap_us < 0:
        parser.error("need --pings >= --rounds >= 1 and --gap-us >= 0")
    print(f"wakeup_bench: {args.pings} pings per arm, {args.gap_us:g} us idle before each, {args.rounds} blocks "
          f"per arm in turns; cpuidle driver {_cpuidle_driver()}", flush=True)
    results = measure(args.pings, args.gap_us / 1e6, args.rounds)
    print(f"{'arm':>7} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'max us':>8}")
    for arm, lat in results.items():
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        print(f"{arm:>7} {p50:8.1f} {p90:8.1f} {p99:8.1f} {lat.max():8.1f}")
    normal, fast = (np.percentile(results[a], [50, 99]) for a in ("normal", "fast"))
    print(f"fast/normal: p50 {fast[0] / normal[0]:.2f}x, p99 {fast[1] / normal[1]:.2f}x")


def _cpuidle_driver() -> str:
    try:
        return Path("/sys/devices/system/cpu/cpuidle/current_driver").read_text().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
