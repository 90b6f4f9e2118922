"""A control for cache_bench: the bare echo against the same echo inside a process that has loaded
and warmed the bundle as the service does (echo_server --bundle), on cache_bench's ladder and rule.

    python -m brandsafe.loadtest.echo_control --bundle bundles/minilm-cpu

Both run the same handler, so whatever separates them is the process they run in, or the
estimator's own noise: how far apart two runs of this can land says how much of a cache_bench
ratio to believe (loadtest/TUNING.md §20).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from brandsafe.bundle import BundleInfo
from brandsafe.v1 import brandsafe_pb2 as pb

from . import openloop, paired
from .cache_bench import measure_pair, print_late_shares, summary
from .compare import ServerProcess, machine
from .native_generator import pick_generator, write_requests


def sample_response(bundle_id: str) -> bytes:
    """An answer from `bundle_id` of the size cache_bench's echo returns (~195 bytes)."""
    return pb.ClassifyResponse(
        id="a3f9c2d1-77aa-4bd2", imp_id="1", decision=pb.ALLOW, cattax=9, policy_id="default",
        bundle_id=bundle_id, score_source="local",
        categories=[pb.CategoryScore(id=str(100 + i), name=f"Category name {i}", score=0.5) for i in range(4)],
    ).SerializeToString()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"),
                        help="bundle the loaded echo loads and warms (default: %(default)s)")
    paired.add_ladder_arguments(parser, rates="250,500,750,1000,1500,2000,2500,3000", budget_ms=2.0,
                                step_seconds=4.0)
    paired.add_rule_argument(parser)
    args = parser.parse_args(argv)
    if not (args.bundle / "bundle.json").is_file():
        parser.error(f"--bundle: {args.bundle} holds no bundle.json (build one: brandsafe export, or ./dev up)")

    generator = pick_generator("auto")
    payloads = openloop.classify_payloads(None)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-echo-control-"))
    requests_file = write_requests(payloads, work / "requests.bin") if generator == "native" else None
    response_file = work / "response.bin"
    response_file.write_bytes(sample_response(BundleInfo.load(args.bundle).bundle_id))
    wake, wake_line = paired.machine_wakeup(args.cpu_wakeup)
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"budget p99 <= {args.budget_ms} ms; generator: {generator}; {wake_line}", flush=True)
    echo = [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file", str(response_file),
            "--port", "0"]
    servers = []
    try:
        servers.append(ServerProcess("loaded", [*echo, "--bundle", str(args.bundle)], work))
        servers.append(ServerProcess("echo", echo, work))
        loaded, bare = servers
        ladders = openloop.run_async(measure_pair(
            {"loaded echo": (loaded.target, loaded.pid), "echo": (bare.target, bare.pid)}, payloads, requests_file,
            openloop.parse_rates(args.rates), args.step_seconds, args.budget_ms, args.repeats, args.rule))
    finally:
        for server in servers:
            server.stop()
        wake.release()
    paired.print_medians(ladders, args.budget_ms)
    print_late_shares(ladders)
    text, _, _ = summary(ladders["loaded echo"], ladders["echo"], args.budget_ms, args.repeats,
                         names=("loaded", "echo"), first_rate_name="loaded echo", rule=args.rule)
    print(f"\n{text}")


if __name__ == "__main__":
    main()
