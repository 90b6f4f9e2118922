"""Side by side in one run: the in-process ceiling, a naive server, Triton, and this service.

    python -m brandsafe.loadtest.compare --bundle bundles/minilm-cpu --budget-ms 20

Same bundle, same machine, same ORT thread count, same batching bounds (max batch, max wait), and
the same load: the replay file's impressions, the same offered-rate ladder and the same Poisson
seeds for every peer. Each server runs alone (the previous one is stopped first) and is measured
by `openloop`; the ceiling replays the same schedule in-process (see ceiling.py). For every peer
it prints the per-step table and then the highest offered rate whose p99 stayed within budget,
with the ratios of this service to each peer.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from brandsafe.bundle import BundleInfo
from brandsafe.rendering import render
from brandsafe.service.requests import parse

from . import ceiling, openloop
from . import replay as replay_file
from .native_generator import measure_native, pick_generator, write_requests
from .peers.triton_server import INFER_METHOD, read_infer_requests

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TRITON_PYTHON = REPO / ".venv" / "peers" / "triton" / "bin" / "python"
PEERS = ("ceiling", "naive", "triton", "service", "service+cache")
DEFAULT_PEERS = ("ceiling", "naive", "triton", "service")


class ServerProcess:
    """A peer server in its own process group (so its children stop with it: Triton runs several
    processes), logging to a file. Same session as the generator, so the kernel's per-session
    autogroup scheduling treats generator and server as one party, as it does the ceiling."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, ready_timeout_s: float = 240.0):
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, process_group=0)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            match = re.search(r"serving \S+ on (127\.0\.0\.1:\d+)", self.log.read_text(errors="replace"))
            if match:
                self.target = match.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{name} did not come up; see {self.log}:\n{self.log.read_text(errors='replace')[-3000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), {time.strftime('%Y-%m-%d %H:%M %Z')}"


def server_argv(peer: str, args, work: Path) -> list[str]:
    common = ["--bundle", str(args.bundle), "--threads", str(args.threads)]
    batching = ["--max-batch", str(args.max_batch), "--max-wait-us", str(args.max_wait_us)]
    if peer == "naive":
        return [sys.executable, "-m", "brandsafe.loadtest.peers.naive_server", *common, "--port", "0"]
    if peer == "triton":
        return [str(args.triton_python), str(REPO / "loadtest" / "peers" / "triton_server.py"), *common, *batching,
                "--texts", str(work / "texts.jsonl"), "--requests-out", str(work / "triton-requests.bin")]
    if peer == "service":
        # The verdict cache is off: every request reaches the model, as it does for every peer.
        return [sys.executable, "-m", "brandsafe", "-q", "serve", *common, *batching, "--port", "0",
                "--cache-entries", "0"]
    if peer == "service+cache":
        # As deployed: the replay's repetition makes most requests cache hits. Not a like-for-like
        # peer (the others score every request), so it is reported but not in the ratios.
        return [sys.executable, "-m", "brandsafe", "-q", "serve", *common, *batching, "--port", "0"]
    raise ValueError(peer)


def ladder_kwargs(args) -> dict:
    return dict(rates=openloop.parse_rates(args.rates), step_seconds=args.step_seconds, budget_ms=args.budget_ms,
                arrivals=args.arrivals, refine=args.refine, warmup_seconds=args.warmup_seconds, seed=args.seed)


def run_ceiling(args, texts: list[str]) -> openloop.Ladder:
    from brandsafe.service.model import LoadedBundle

    model = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    model.warm_up(sorted({1, 2, 4, 8, 16, args.max_batch}))
    print(openloop.STEP_HEADER.replace("srv cpu", "cpu"), flush=True)
    try:
        return ceiling.run_ladder(model.score, texts, max_batch=args.max_batch,
                                  on_step=lambda s: print(openloop.format_step(s, args.budget_ms), flush=True),
                                  **ladder_kwargs(args))
    finally:
        model.close()


def run_server(peer: str, args, work: Path, payloads: list[bytes]) -> openloop.Ladder:
    server = ServerProcess(peer.replace("+", "-"), server_argv(peer, args, work), work)
    try:
        method, check = openloop.CLASSIFY_METHOD, openloop.classify_check
        if peer == "triton":
            payloads, method, check = read_infer_requests(work / "triton-requests.bin"), INFER_METHOD, None
        print(f"({peer} on {server.target}, pid {server.pid}, log {server.log}; {args.generator} generator)",
              flush=True)
        if args.generator == "native":
            requests_file = write_requests(payloads, work / f"{peer}-requests.bin")
            return measure_native(server.target, requests_file, server_pid=server.pid, method=method,
                                  check_fallback=check is not None, timeout_s=args.timeout_ms / 1000,
                                  **ladder_kwargs(args))
        return openloop.run_async(openloop.measure(server.target, payloads, method=method, server_pid=server.pid,
                                                   check=check, timeout_s=args.timeout_ms / 1000,
                                                   **ladder_kwargs(args)))
    finally:
        server.stop()


def summary(results: dict[str, list[openloop.Ladder]], budget_ms: float) -> str:
    """Per peer: the max rate within budget of each round and their median; ratios of medians."""
    median = {peer: float(np.median([l.max_rate_within_budget for l in ladders])) for peer, ladders in results.items()}
    head = f"max rate/s @ p99<={budget_ms:g}ms"
    lines = [f"{'peer':<14}{head:>24}{'p99 there ms':>14}   rounds"]
    for peer, ladders in results.items():
        p99s = [s.latency_ms["p99"] for l in ladders for s in l.steps if s.offered_rps == l.max_rate_within_budget]
        rounds = ", ".join(f"{l.max_rate_within_budget:g}" for l in ladders)
        lines.append(f"{peer:<14}{median[peer]:>24.1f}{(f'{max(p99s):.2f}' if p99s else '-'):>14}   {rounds}")
    if "service" in median:
        for peer in ("ceiling", "triton", "naive"):
            if median.get(peer, 0) > 0:
                lines.append(f"service / {peer}: {median['service'] / median[peer]:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO / "bundles" / "minilm-cpu")
    parser.add_argument("--replay", type=Path, default=replay_file.DEFAULT_REPLAY)
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help=f"comma-separated, from {', '.join(PEERS)} (default: %(default)s)")
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT intra-op threads, every peer")
    parser.add_argument("--max-batch", type=int, default=32, help="service and Triton; the ceiling's bound too")
    parser.add_argument("--max-wait-us", type=int, default=2000, help="service and Triton queue delay")
    parser.add_argument("--rates", default="20:600:20", help="offered-rate ladder, 'start:stop:step' or 'a,b,c'")
    parser.add_argument("--step-seconds", type=float, default=8.0)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    parser.add_argument("--refine", type=int, default=2)
    parser.add_argument("--timeout-ms", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--triton-python", type=Path, default=DEFAULT_TRITON_PYTHON,
                        help="interpreter of the side venv that has nvidia-pytriton (see peers/triton_server.py)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the peer sequence this many times; the summary takes each peer's median")
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator for the servers: the C++ one (loadtest/native, ~0.1 ms CPU a "
                             "request) or openloop.py (~0.3-0.5 ms); auto = native when it builds (default: %(default)s)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    args.generator = pick_generator(args.generator)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := set(peers) - set(PEERS):
        parser.error(f"unknown peers: {sorted(unknown)}")

    records = replay_file.load_or_build(args.replay)
    requests = [replay_file.to_request(r) for r in records]
    payloads = [r.SerializeToString() for r in requests]
    texts = [render(parse(r, "default").page) for r in requests]
    print(f"machine: {machine()}", flush=True)
    info = BundleInfo.load(args.bundle)
    print(f"compare: bundle {info.bundle_id} ({info.precision}, {args.bundle}), {len(records)} replayed "
          f"impressions, {args.threads} ORT threads, max batch {args.max_batch}, max wait {args.max_wait_us} us, "
          f"{args.arrivals} arrivals, "
          f"{args.step_seconds:g} s steps, p99 budget {args.budget_ms:g} ms, {args.generator} generator", flush=True)

    results: dict[str, list[openloop.Ladder]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="brandsafe-compare-") as tmp:
        work = Path(tmp)
        (work / "texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in texts))
        # Rounds interleave the peers, so a slow spell on the machine hits each of them alike.
        for round_ in range(1, args.rounds + 1):
            for peer in peers:
                if peer in skipped:
                    continue
                print(f"\n== {peer} (round {round_}/{args.rounds})", flush=True)
                if peer == "ceiling":
                    ladder = run_ceiling(args, texts)
                elif peer == "triton" and not args.triton_python.exists():
                    skipped[peer] = (f"no interpreter at {args.triton_python} "
                                     "(install: see loadtest/peers/triton_server.py)")
                    print(f"skipped: {skipped[peer]}", flush=True)
                    continue
                else:
                    try:
                        ladder = run_server(peer, args, work, payloads)
                    except RuntimeError as exc:  # a peer that cannot start is reported, not fatal
                        skipped[peer] = str(exc).splitlines()[0]
                        print(f"skipped: {exc}", flush=True)
                        continue
                results.setdefault(peer, []).append(ladder)
                print(f"max rate with p99 <= {args.budget_ms:g} ms: {ladder.max_rate_within_budget:g}/s", flush=True)

    print("\n== summary")
    print(summary(results, args.budget_ms))
    for peer, why in skipped.items():
        print(f"{peer}: not measured ({why})")
    if args.json_out:
        args.json_out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                             "results": {k: [l.to_json() for l in v] for k, v in results.items()},
                                             "skipped": skipped}, indent=1))


if __name__ == "__main__":
    main()
