"""A/B of `brandsafe serve` settings: each arm is the service with its own flags, all up at once,
taking turns on the same open-loop ladder (paired.py), so a slow minute falls on every arm alike.

    python -m brandsafe.loadtest.ab --arm "before=--workers 1 --threads 2" --arm "after=" \\
        --rates 50,75,100,125,150,200,250 --step-seconds 8 --repeats 3

The verdict cache is off in every arm unless an arm's flags turn it on, so every request reaches
the model. Prints every run as it happens, each arm's median runs, and its max rate within the
p99 budget.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from . import openloop, paired
from .compare import ServerProcess, machine
from .native_generator import pick_generator, write_requests


def parse_arm(text: str) -> tuple[str, list[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FLAGS (FLAGS may be empty)")
    return name.strip(), shlex.split(flags)


async def measure(servers: dict[str, ServerProcess], payloads: list[bytes], requests_file: Path | None, args):
    opened: list = []
    try:
        runners = {name: await paired.server_runner(s.target, s.pid, payloads, requests_file, args.timeout_ms / 1000,
                                                    opened)
                   for name, s in servers.items()}
        return await paired.measure(runners, openloop.parse_rates(args.rates), args.step_seconds, args.budget_ms,
                                    args.repeats, args.refine, seed=args.seed,
                                    on_step=paired.print_step(args.budget_ms))
    finally:
        await paired.close_all(opened)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", type=parse_arm, action="append", required=True,
                        help="NAME=FLAGS for `brandsafe serve` (repeat, at least two)")
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"),
                        help="bundle every arm serves (default: %(default)s)")
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    paired.add_ladder_arguments(parser, rates="50,75,100,125,150,200,250")
    parser.add_argument("--refine", type=int, default=1,
                        help="bisections between the best passing rate and the first miss (default: %(default)s)")
    parser.add_argument("--timeout-ms", type=float, default=1000.0,
                        help="per-request gRPC deadline (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="base seed of the arrival schedules (default: %(default)s)")
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator: the C++ one or openloop.py; auto = native when it builds")
    args = parser.parse_args(argv)
    names = [name for name, _ in args.arm]
    if len(args.arm) < 2 or len(set(names)) != len(names):
        parser.error("give at least two --arm, with distinct names")

    generator = pick_generator(args.generator)
    payloads = openloop.classify_payloads(args.replay)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-ab-"))
    requests_file = write_requests(payloads, work / "requests.bin") if generator == "native" else None
    wake, wake_line = paired.machine_wakeup(args.cpu_wakeup)
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{len(payloads)} replay impressions; budget p99 <= {args.budget_ms:g} ms; generator: {generator}; "
          f"{wake_line}", flush=True)
    servers: dict[str, ServerProcess] = {}
    try:
        for name, flags in args.arm:
            argv_ = [sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(args.bundle), "--port", "0",
                     "--cache-entries", "0", *paired.SERVED, *flags]  # an arm's own flags come later and win
            servers[name] = ServerProcess(name, argv_, work)
            print(f"({name}: {shlex.join(flags) or 'defaults'}; log {servers[name].log})", flush=True)
        ladders = openloop.run_async(measure(servers, payloads, requests_file, args))
    finally:
        for server in servers.values():
            server.stop()
        wake.release()
    paired.print_summary(ladders, args.budget_ms)


if __name__ == "__main__":
    main()
