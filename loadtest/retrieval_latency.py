"""What the retrieval hook adds: the same context bundle served with and without an index.

    python -m brandsafe.loadtest.retrieval_latency --bundle bundles/minilm-cpu-context \
        --index indexes/minilm-cpu-context --requests 500

Starts two servers on loopback (the verdict cache off on both, so every call computes), then
alternates one call to each per page, so both see the same machine state. Also times the
retriever alone in-process. Prints p50/p99 and the difference.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import grpc

from brandsafe.retrieval import Retriever
from brandsafe.service.requests import parse
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

from .latency import percentiles, start_server
from .replay import load_pages, requests_for


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu-context"))
    parser.add_argument("--index", type=Path, default=Path("indexes/minilm-cpu-context"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/brand-safety-urls.train.jsonl"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads per server")
    args = parser.parse_args(argv)

    requests = requests_for(load_pages(args.data, args.requests))
    retriever = Retriever.load(args.index)
    pages = [parse(r, "default").page for r in requests]
    retriever.retrieve(pages[0])
    alone = []
    for page in pages:
        t0 = time.perf_counter()
        retriever.retrieve(page)
        alone.append(time.perf_counter() - t0)

    common = ["--cache-entries", "0", "--retrieval-budget-ms", "1000"]
    with_proc, with_target = start_server(args.bundle, args.threads, [*common, "--index", str(args.index)])
    without_proc, without_target = start_server(args.bundle, args.threads, common)
    try:
        with grpc.insecure_channel(with_target) as a, grpc.insecure_channel(without_target) as b:
            stub_with, stub_without = pb_grpc.BrandSafetyStub(a), pb_grpc.BrandSafetyStub(b)
            for request in requests[:30]:  # warm both
                stub_with.Classify(request, timeout=5)
                stub_without.Classify(request, timeout=5)
            with_s, without_s, used = [], [], 0
            for request in requests:
                t0 = time.perf_counter()
                response = stub_with.Classify(request, timeout=5)
                t1 = time.perf_counter()
                stub_without.Classify(request, timeout=5)
                t2 = time.perf_counter()
                with_s.append(t1 - t0)
                without_s.append(t2 - t1)
                used += response.retrieval.status == "used"
    finally:
        for proc in (with_proc, without_proc):
            proc.terminate()
            proc.wait(timeout=30)
    r, w, wo = percentiles(alone), percentiles(with_s), percentiles(without_s)
    print(f"index {retriever.version} ({len(retriever.passages)} passages), {len(requests)} real pages, "
          f"concurrency 1, cache off, {args.threads} ORT thread(s) per server; passages used on {used / len(requests):.0%}")
    print(f"{'path':<34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, p in (("retriever alone (embed + search)", r), ("gRPC, no index", wo), ("gRPC, with retrieval", w)):
        print(f"{name:<34}{p['p50']:>9.3f}{p['p99']:>9.3f}{p['mean']:>9.3f}")
    print(f"added by retrieval: p50 {w['p50'] - wo['p50']:+.3f} ms, p99 {w['p99'] - wo['p99']:+.3f} ms")


if __name__ == "__main__":
    main()
