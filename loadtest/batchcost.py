"""Cost of one model call by batch size, on real replayed page texts (a benchmark: it prints).

    python -m brandsafe.loadtest.batchcost --bundle bundles/minilm-cpu --threads 2 --sizes 1,8,32

For each batch size it times, interleaved so both see the same machine state:
- `padded`:   one backend call on the whole batch padded to its longest row (the pre-tuning path);
- `bucketed`: `LoadedBundle.score`, one call per padded length (what the service runs);
and with `--spinning` the bucketed path once more on a session whose ORT pool threads spin, and
with `--against OTHER` the bucketed path of another bundle (e.g. the previous export), so two
exports of one run compare on the same texts, threads and minutes.
Wall ms per batch, rows/s, and this process's CPU ms per batch (spinning shows up there).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from brandsafe.rendering import render
from brandsafe.service.backend import OnnxRuntimeBackend
from brandsafe.service.model import LoadedBundle
from brandsafe.service.requests import parse

from . import replay as replay_file


def padded_score(model: LoadedBundle, texts: list[str]) -> np.ndarray:
    return model.backend.execute(model.tokenizer(texts))


def time_calls(fn, texts: list[str], size: int, seconds: float) -> tuple[float, float]:
    """(wall s, CPU s) per call, over consecutive slices of `texts`."""
    fn(texts[:size])
    calls, start, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds or calls < 3:
        i = (calls * size) % (len(texts) - size)
        fn(texts[i:i + size])
        calls += 1
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu0) / calls


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"))
    parser.add_argument("--replay", type=Path, default=replay_file.DEFAULT_REPLAY)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sizes", default="1,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=2.0, help="per variant and size")
    parser.add_argument("--spinning", action="store_true", help="also time a session with ORT spinning on")
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another bundle to time beside it, bucketed (repeatable)")
    args = parser.parse_args(argv)

    requests = [replay_file.to_request(r) for r in replay_file.load_or_build(args.replay)[:5000]]
    texts = [render(parse(r, "default").page) for r in requests]
    model = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    variants = {"padded": lambda t: padded_score(model, t), "bucketed": model.score}
    if args.spinning:
        spinning = LoadedBundle(args.bundle, intra_op_threads=args.threads)
        spinning.backend = OnnxRuntimeBackend(spinning.backend.model_path, args.threads, "cpu", {
            "session.intra_op.allow_spinning": "1", "session.inter_op.allow_spinning": "1"}).initialize()
        variants["bucketed+spin"] = spinning.score
    for number, path in enumerate(args.against, start=1):
        other = LoadedBundle(path, intra_op_threads=args.threads)
        variants[f"against{number}"] = other.score
        print(f"against{number}: bundle {other.bundle_id} ({other.info.precision})")
    print(f"bundle {model.bundle_id} ({model.info.precision}), {args.threads} ORT threads, "
          f"{len(texts)} replayed page texts")
    print(f"{'batch':>5}  {'variant':<14}{'ms/batch':>10}{'rows/s':>9}{'cpu ms':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        for name, fn in variants.items():
            wall, cpu = time_calls(fn, texts, size, args.seconds)
            print(f"{size:>5}  {name:<14}{wall * 1000:>10.2f}{size / wall:>9.0f}{cpu * 1000:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
