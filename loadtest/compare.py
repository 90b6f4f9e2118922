"""Side by side in one run: the in-process ceiling, a naive server, Triton, and this service.

    python -m brandsafe.loadtest.compare --bundle bundles/minilm-cpu --budget-ms 20

Same bundle, same machine, same inference workers and ORT threads (the service's defaults: one
worker per core, one thread each; the ceiling runs as many loops, Triton as many model instances,
and the naive server, one request at a time by design, gets all their threads), same batching
bounds (max batch, max wait), and
the same load: the replay file's impressions, the same offered-rate ladder and the same Poisson
schedules for every peer. All servers are up at once and take turns: at each offered rate each
peer runs --repeats steps, interleaved with the others', and its median-p99 run counts (paired.py),
so a slow minute on the shared machine falls on every peer alike. Servers are driven by the C++
generator (or openloop.py's); the ceiling replays the same schedule in-process (see ceiling.py).
It prints every step as it runs, then each peer's median runs, the highest offered rate whose p99
stayed within budget, and the ratios of this service to each peer.

Then each peer's CPU per answered request at the rates all of them ran (server and generator
together: on this machine the generator shares the cores, and only network peers need one). The
optional `echo` peer is the floor under that: a bare grpc.aio server answering every Classify with
the service's own response bytes for the first replayed page (peers/echo_server.py), so its cost is
what any grpc.aio service pays per request before doing anything.
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

from . import ceiling, openloop, paired
from . import replay as replay_file
from .native_generator import pick_generator, write_requests
from .peers.triton_server import INFER_METHOD, read_infer_requests

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TRITON_PYTHON = REPO / ".venv" / "peers" / "triton" / "bin" / "python"
PEERS = ("ceiling", "naive", "triton", "service", "service+cache", "echo")
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
    common = ["--bundle", str(args.bundle), "--threads", str(args.threads), "--workers", str(args.workers)]
    batching = ["--max-batch", str(args.max_batch), "--max-wait-us", str(args.max_wait_us)]
    if peer == "naive":
        return [sys.executable, "-m", "brandsafe.loadtest.peers.naive_server", "--bundle", str(args.bundle),
                "--threads", str(args.threads * args.workers), "--port", "0"]
    if peer == "triton":
        return [str(args.triton_python), str(REPO / "loadtest" / "peers" / "triton_server.py"), *common, *batching,
                "--texts", str(work / "texts.jsonl"), "--requests-out", str(work / "triton-requests.bin")]
    if peer == "service":
        # The verdict cache is off: every request reaches the model, as it does for every peer.
        return [sys.executable, "-m", "brandsafe", "-q", "serve", *common, *batching, "--port", "0",
                "--cache-entries", "0", *paired.SERVED]
    if peer == "service+cache":
        # As deployed: the replay's repetition makes most requests cache hits. Not a like-for-like
        # peer (the others score every request), so it is reported but not in the ratios.
        return [sys.executable, "-m", "brandsafe", "-q", "serve", *common, *batching, "--port", "0",
                *paired.SERVED]
    if peer == "echo":
        return [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                str(work / ECHO_RESPONSE), "--port", "0"]
    raise ValueError(peer)


ECHO_RESPONSE = "echo-response.bin"


def write_echo_response(servers: dict[str, "ServerProcess"], payload: bytes, work: Path) -> None:
    """The echo peer's answer: the service's own response to `payload`, so both send the same bytes."""
    import grpc

    with grpc.insecure_channel(servers["service"].target) as channel:
        (work / ECHO_RESPONSE).write_bytes(channel.unary_unary(openloop.CLASSIFY_METHOD)(payload, timeout=30))


def load_ceiling(args):
    return ceiling.load_model(args.bundle, args.threads, args.max_batch)


def start_servers(peers: list[str], args, work: Path, skipped: dict[str, str],
                  echo_payload: bytes) -> dict[str, ServerProcess]:
    """Every server peer up at once (they take turns under load; an idle one costs ~nothing, and
    idle_cpu_pct shows it). One that cannot start is reported in `skipped`, not fatal. The echo
    starts last: it answers with the service's response to `echo_payload`."""
    servers = {}
    for peer in sorted(peers, key=lambda p: p == "echo"):
        if peer == "ceiling":
            continue
        if peer == "echo":
            if "service" not in servers:
                skipped[peer] = "needs the service peer up, for the response bytes it returns"
                continue
            write_echo_response(servers, echo_payload, work)
        if peer == "triton" and not args.triton_python.exists():
            skipped[peer] = f"no interpreter at {args.triton_python} (install: see loadtest/peers/triton_server.py)"
            continue
        try:
            servers[peer] = ServerProcess(peer.replace("+", "-"), server_argv(peer, args, work), work)
        except RuntimeError as exc:
            skipped[peer] = str(exc).splitlines()[0]
            print(f"{peer}: skipped: {exc}", flush=True)
            continue
        print(f"({peer} on {servers[peer].target}, pid {servers[peer].pid}, log {servers[peer].log})", flush=True)
    return servers


def idle_cpu_pct(servers: dict[str, ServerProcess], seconds: float = 3.0) -> dict[str, float]:
    before = {peer: openloop.process_tree_cpu_s(s.pid) for peer, s in servers.items()}
    time.sleep(seconds)
    return {peer: 100 * (openloop.process_tree_cpu_s(s.pid) - before[peer]) / seconds for peer, s in servers.items()}


async def measure_all(peers: list[str], servers: dict[str, ServerProcess], model, args, work: Path,
                      payloads: list[bytes], texts: list[str]) -> dict[str, openloop.Ladder]:
    opened: list = []
    try:
        runners: dict[str, paired.Runner] = {}
        for peer in peers:
            if peer == "ceiling":
                runners[peer] = paired.ceiling_runner(model.score, texts, args.max_batch, args.workers)
                continue
            if peer not in servers:
                continue
            # The echo's fixed answer is a verdict, never a fallback, so there is nothing to check.
            peer_payloads, method, check = payloads, openloop.CLASSIFY_METHOD, peer != "echo"
            if peer == "triton":  # pre-rendered texts in, probabilities out: no verdict, no fallback
                peer_payloads, method, check = read_infer_requests(work / "triton-requests.bin"), INFER_METHOD, False
            requests_file = (write_requests(peer_payloads, work / f"{peer}-requests.bin")
                             if args.generator == "native" else None)
            runners[peer] = await paired.server_runner(servers[peer].target, servers[peer].pid, peer_payloads,
                                                       requests_file, args.timeout_ms / 1000, opened, method, check)
        return await paired.measure(runners, openloop.parse_rates(args.rates), args.step_seconds, args.budget_ms,
                                    args.repeats, args.refine, args.arrivals, args.seed, args.warmup_seconds,
                                    on_step=paired.print_step(args.budget_ms))
    finally:
        await paired.close_all(opened)


def summary(ladders: dict[str, openloop.Ladder], budget_ms: float, repeats: int) -> str:
    """Per peer: the max rate within budget (median-p99 run of `repeats` per rate) and the p99
    there; the service's ratios to the others."""
    head = f"max rate/s @ p99<={budget_ms:g}ms"
    lines = [f"{'peer':<14}{head:>24}{'p99 there ms':>14}   (median-p99 run of {repeats} per rate)"]
    for peer, ladder in ladders.items():
        there = [s.latency_ms["p99"] for s in ladder.steps if s.offered_rps == ladder.max_rate_within_budget]
        lines.append(f"{peer:<14}{ladder.max_rate_within_budget:>24.1f}"
                     f"{(f'{there[0]:.2f}' if there else '-'):>14}")
    service = ladders.get("service")
    lines.extend(cpu_summary(ladders))
    if service is not None:
        for peer in ("ceiling", "triton", "naive"):
            if peer in ladders and ladders[peer].max_rate_within_budget > 0:
                ratio = service.max_rate_within_budget / ladders[peer].max_rate_within_budget
                lines.append(f"service / {peer}: {ratio:.2f}x")
    return "\n".join(lines)


def cpu_summary(ladders: dict[str, openloop.Ladder]) -> list[str]:
    """CPU per request at the rates every peer ran (a peer's cost per request falls as its rate
    rises, so only equal rates compare), and, against the ceiling, what that leaves: at equal
    core utilisation a peer's max rate can be at most ceiling x (ceiling's CPU / its CPU)."""
    costs = {peer: paired.cpu_per_request(ladder, 1e-3, with_generator=True) for peer, ladder in ladders.items()}
    shared = sorted(set.intersection(*(set(c) for c in costs.values()))) if costs else []
    if not shared:
        return []
    lines = ["CPU per answered request, server + generator, ms (median run) at the rates all ran:",
             f"{'peer':<14}" + "".join(f"{rate:>10g}/s" for rate in shared)]
    for peer, cost in costs.items():
        lines.append(f"{peer:<14}" + "".join(f"{cost[rate]:>12.2f}" for rate in shared))
    if "ceiling" in costs:
        for peer, cost in costs.items():
            if peer == "ceiling":
                continue
            if peer == "echo":  # no model: what it costs is what a grpc.aio service adds at the least
                floor = np.median([cost[rate] / costs["ceiling"][rate] for rate in shared])
                lines.append(f"echo (bare grpc.aio + generator) per request: {floor:.2f}x the ceiling's CPU")
                continue
            share = np.median([costs["ceiling"][rate] / cost[rate] for rate in shared])
            lines.append(f"ceiling CPU / {peer} CPU per request: {share:.2f}x (median over those rates)")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO / "bundles" / "minilm-cpu",
                        help="bundle every peer serves (default: %(default)s)")
    parser.add_argument("--replay", type=Path, default=replay_file.DEFAULT_REPLAY,
                        help="replay file (built from the labelled data if missing; default: %(default)s)")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help=f"comma-separated, from {', '.join(PEERS)} (default: %(default)s)")
    paired.add_ladder_arguments(parser, rates="25,50,75,100,150,200,300,400")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="concurrent batches: the service's workers, the ceiling's loops, Triton's model "
                             "instances (default: %(default)s, the service's default on CPU)")
    parser.add_argument("--threads", type=int, default=0,
                        help="ORT intra-op threads per worker; 0 = cores / workers (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=32, help="service and Triton; the ceiling's bound too")
    parser.add_argument("--max-wait-us", type=int, default=2000, help="service and Triton queue delay")
    parser.add_argument("--warmup-seconds", type=float, default=2.0,
                        help="unmeasured load per peer before the ladder (default: %(default)s)")
    parser.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson",
                        help="arrival process (default: %(default)s)")
    parser.add_argument("--refine", type=int, default=2,
                        help="bisections between the best passing rate and the first miss (default: %(default)s)")
    parser.add_argument("--timeout-ms", type=float, default=1000.0,
                        help="per-request gRPC deadline; a timed-out request counts as a failure (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="base seed of the arrival schedules (default: %(default)s)")
    parser.add_argument("--triton-python", type=Path, default=DEFAULT_TRITON_PYTHON,
                        help="interpreter of the side venv that has nvidia-pytriton (see peers/triton_server.py)")
    parser.add_argument("--generator", choices=("auto", "native", "python"), default="auto",
                        help="open-loop generator for the servers: the C++ one (loadtest/native, ~0.1 ms CPU a "
                             "request) or openloop.py (~0.3-0.5 ms); auto = native when it builds (default: %(default)s)")
    parser.add_argument("--json-out", type=Path, help="write every run, the medians and the idle CPU here")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 0:
        parser.error("--workers must be >= 1 and --threads >= 0")
    from brandsafe.service.server import threads_per_worker

    args.threads = threads_per_worker(args.threads, args.workers)
    args.generator = pick_generator(args.generator)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := set(peers) - set(PEERS):
        parser.error(f"unknown peers: {sorted(unknown)}")

    records = replay_file.load_or_build(args.replay)
    requests = [replay_file.to_request(r) for r in records]
    payloads = [r.SerializeToString() for r in requests]
    texts = openloop.rendered_texts(requests)
    wake, wake_line = paired.machine_wakeup(args.cpu_wakeup)
    print(f"machine: {machine()}; {wake_line}", flush=True)
    info = BundleInfo.load(args.bundle)
    print(f"compare: bundle {info.bundle_id} ({info.precision}, {args.bundle}), {len(records)} replayed "
          f"impressions, {args.workers} workers x {args.threads} ORT threads, max batch {args.max_batch}, "
          f"max wait {args.max_wait_us} us, {args.arrivals} arrivals, "
          f"{args.step_seconds:g} s steps, p99 budget {args.budget_ms:g} ms, {args.generator} generator", flush=True)

    skipped: dict[str, str] = {}
    model = load_ceiling(args) if "ceiling" in peers else None
    with tempfile.TemporaryDirectory(prefix="brandsafe-compare-") as tmp:
        work = Path(tmp)
        (work / "texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in texts))
        servers = start_servers(peers, args, work, skipped, payloads[0])
        try:
            idle = idle_cpu_pct(servers)
            print("idle CPU while waiting for their turn: "
                  + ", ".join(f"{peer} {pct:.1f}%" for peer, pct in idle.items()), flush=True)
            ladders = openloop.run_async(measure_all(peers, servers, model, args, work, payloads, texts))
        finally:
            for server in servers.values():
                server.stop()
            if model is not None:
                model.close()
            wake.release()

    paired.print_medians(ladders, args.budget_ms)
    print("\n== summary")
    print(summary(ladders, args.budget_ms, args.repeats))
    for peer, why in skipped.items():
        print(f"{peer}: not measured ({why})")
    if args.json_out:
        args.json_out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                             "idle_cpu_pct": idle,
                                             "results": {k: v.to_json() for k, v in ladders.items()},
                                             "skipped": skipped}, indent=1))


if __name__ == "__main__":
    main()
