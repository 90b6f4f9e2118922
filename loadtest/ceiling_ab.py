"""A/B of execution settings for the model alone: the in-process ceiling (ceiling.py) with
different worker and ORT-thread counts, taking turns on the same open-loop ladder (paired.py).
No gRPC, no server: what the settings do to the model's own latency and CPU under load.

    python -m brandsafe.loadtest.ceiling_ab --config 1x2 --config 2x1 \\
        --rates 50,100,150,200,250 --step-seconds 8 --repeats 3

A config is WORKERSxTHREADS: that many greedy batching loops sharing one ONNX Runtime session
with that many intra-op threads.
"""
from __future__ import annotations

import argparse
import gc
import re
from pathlib import Path

from brandsafe.service.model import LoadedBundle

from . import openloop, paired
from .compare import machine


def parse_config(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WORKERSxTHREADS, both >= 1, e.g. 2x1")
    return int(match[1]), int(match[2])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=parse_config, action="append", required=True,
                        help="WORKERSxTHREADS (repeat, at least two)")
    parser.add_argument("--bundle", type=Path, default=Path("bundles/minilm-cpu"),
                        help="bundle to score with (default: %(default)s)")
    parser.add_argument("--replay", type=Path, default=None, help="replay file (built from the data if missing)")
    parser.add_argument("--budget-ms", type=float, default=20.0,
                        help="p99 budget a step must meet, in ms (default: %(default)s)")
    parser.add_argument("--rates", default="50,100,150,200,250",
                        help="offered rates per second, 'a,b,c' or 'start:stop:step' (default: %(default)s)")
    parser.add_argument("--step-seconds", type=float, default=8.0, help="length of one step (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per config at each rate, in turns; the median-p99 run counts (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=32, help="largest batch a loop takes (default: %(default)s)")
    args = parser.parse_args(argv)
    if len(args.config) < 2 or len(set(args.config)) != len(args.config):
        parser.error("give at least two distinct --config")

    texts = openloop.classify_texts(args.replay)
    print(f"machine: {machine()}; {len(texts)} replayed pages; budget p99 <= {args.budget_ms:g} ms", flush=True)
    runners, models = {}, []
    for workers, threads in args.config:
        model = LoadedBundle(args.bundle, intra_op_threads=threads)
        model.warm_up(sorted({1, 2, 4, 8, 16, args.max_batch}))
        models.append(model)
        runners[f"{workers}x{threads}"] = paired.ceiling_runner(model.score, texts, args.max_batch, workers)
    gc.collect()
    gc.freeze()
    ladders = openloop.run_async(paired.measure(runners, openloop.parse_rates(args.rates), args.step_seconds,
                                                args.budget_ms, args.repeats,
                                                on_step=paired.print_step(args.budget_ms)))
    for model in models:
        model.close()
    paired.print_medians(ladders, args.budget_ms)
    for name, ladder in ladders.items():
        print(f"{name}: max rate with p99 <= {args.budget_ms:g} ms: {ladder.max_rate_within_budget:g}/s")


if __name__ == "__main__":
    main()
