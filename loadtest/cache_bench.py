"""Verdict cache benchmark: hit ratio on a Zipf-like replay, and the cache-hit path's max rate
against a bare grpc.aio echo server returning a response of the same size, in one run.

    python -m brandsafe.loadtest.cache_bench --bundle bundles/minilm-cpu --budget-ms 2

1. Hit ratio: the replay's impressions in order through a cold server (cache on); the share that
   were answered from the cache, read from the server's own metrics.
2. Hit path: the same server, now warm, under the open-loop ladder (every request a hit), and the
   echo server under the identical ladder. Prints each one's max rate with p99 within budget and
   the ratio.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

import grpc


from . import openloop
from .compare import ServerProcess, machine

METHOD = openloop.CLASSIFY_METHOD


def _lookups(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'brandsafe_cache_lookups_total\{result="(\w+)"\} ([\d.e+]+)', text)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"))
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    parser.add_argument("--budget-ms", type=float, default=2.0)
    parser.add_argument("--rates", default="250:4000:250")
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    payloads = openloop.classify_payloads(args.replay)
    ladder = dict(rates=openloop.parse_rates(args.rates), step_seconds=args.step_seconds, budget_ms=args.budget_ms,
                  arrivals="poisson", refine=2, warmup_seconds=2.0, seed=0, timeout_s=1.0)
    work = Path(tempfile.mkdtemp(prefix="brandsafe-cache-bench-"))
    print(f"machine: {machine()}; {len(payloads)} replay impressions; budget p99 <= {args.budget_ms} ms", flush=True)

    service = ServerProcess("service", [sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(args.bundle),
                                        "--threads", str(args.threads), "--port", "0", "--metrics-port", "0"], work)
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
        print("\ncache-hit path (warm service):", flush=True)
        service_ladder = openloop.run_async(openloop.measure(service.target, payloads, server_pid=service.pid,
                                                             check=openloop.classify_check, **ladder))
        after = _lookups(metrics_url)
        model_calls = after.get("model", 0) - counts.get("model", 0)
    finally:
        service.stop()

    response_file = work / "response.bin"
    response_file.write_bytes(sample_response)
    echo = ServerProcess("echo", [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                                  str(response_file), "--port", "0"], work)
    try:
        print(f"\necho server ({len(sample_response)}-byte responses):", flush=True)
        echo_ladder = openloop.run_async(openloop.measure(echo.target, payloads, server_pid=echo.pid, **ladder))
    finally:
        echo.stop()

    s, e = service_ladder.max_rate_within_budget, echo_ladder.max_rate_within_budget
    print(f"\nmax rate with p99 <= {args.budget_ms} ms: service cache hits {s:.0f}/s, echo {e:.0f}/s, "
          f"ratio {s / e if e else float('nan'):.2f}x (model calls during the hit-path run: {int(model_calls)})")


if __name__ == "__main__":
    main()
