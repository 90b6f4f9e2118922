"""Concurrency-1 latency: the running gRPC server vs raw ONNX Runtime on the same bundle, same run.

    python -m brandsafe.loadtest.latency --bundle bundles/minilm-cpu --requests 1000

Starts `brandsafe serve` on a free loopback port, then alternates one raw in-process call and
one gRPC call per page, so both see the same machine state. Prints p50/p99 and the ratios.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np

from brandsafe.rendering import render
from brandsafe.urltext import load_segmenter, segment
from brandsafe.service.model import LoadedBundle
from brandsafe.service.requests import parse
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

from .replay import load_pages, requests_for


def start_server(bundle: Path, threads: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "brandsafe", "-q", "serve", "--bundle", str(bundle), "--port", "0",
                             "--threads", str(threads), *extra], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        match = re.search(r"on ([\d.]+:\d+)", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError("server did not start")


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/brand-safety-urls.train.jsonl"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT intra-op threads, both sides")
    args = parser.parse_args(argv)

    requests = requests_for(load_pages(args.data, args.requests))
    pages = [parse(r, "default").page for r in requests]
    segment.cache_clear()
    load_segmenter()
    render_s = []
    for page in pages:  # cold, as the server sees a page the first time (segmentation cache empty)
        t0 = time.perf_counter()
        render(page)
        render_s.append(time.perf_counter() - t0)
    texts = [render(page) for page in pages]
    raw = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    proc, target = start_server(args.bundle, args.threads, [])
    try:
        channel = grpc.insecure_channel(target)
        stub = pb_grpc.BrandSafetyStub(channel)
        for request, text in zip(requests[:50], texts[:50]):  # warm both paths
            stub.Classify(request, timeout=5)
            raw.score([text])
        raw_s, grpc_s, tokenize_s = [], [], []
        for request, text in zip(requests, texts):
            t0 = time.perf_counter()
            raw.score([text])
            t1 = time.perf_counter()
            stub.Classify(request, timeout=5)
            t2 = time.perf_counter()
            raw.tokenizer([text])
            t3 = time.perf_counter()
            raw_s.append(t1 - t0)
            grpc_s.append(t2 - t1)
            tokenize_s.append(t3 - t2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    r, g, tk, rd = percentiles(raw_s), percentiles(grpc_s), percentiles(tokenize_s), percentiles(render_s)
    print(f"bundle {raw.bundle_id} ({raw.info.precision}), {len(requests)} real pages, concurrency 1, "
          f"{args.threads} ORT threads")
    print(f"{'path':<38}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, p in (("render (cold: first sight of a host)", rd), ("tokenize only", tk),
                    ("raw ONNX Runtime (tokenize+run)", r), ("gRPC server, end to end", g)):
        print(f"{name:<38}{p['p50']:>9.3f}{p['p99']:>9.3f}{p['mean']:>9.3f}")
    print(f"gRPC / raw: p50 {g['p50'] / r['p50']:.2f}x, p99 {g['p99'] / r['p99']:.2f}x; "
          f"server overhead p50 {g['p50'] - r['p50']:.3f} ms")


if __name__ == "__main__":
    main()
