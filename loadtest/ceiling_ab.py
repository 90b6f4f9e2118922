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
import re
from pathlib import Path

from . import ceiling, openloop, paired
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
    paired.add_ladder_arguments(parser, rates="50,100,150,200,250")
    parser.add_argument("--max-batch", type=int, default=32, help="largest batch a loop takes (default: %(default)s)")
    args = parser.parse_args(argv)
    if len(args.config) < 2 or len(set(args.config)) != len(args.config):
        parser.error("give at least two distinct --config")

    texts = openloop.classify_texts(args.replay)
    wake, wake_line = paired.machine_wakeup(args.cpu_wakeup)
    print(f"machine: {machine()}; {len(texts)} replayed pages; budget p99 <= {args.budget_ms:g} ms; {wake_line}",
          flush=True)
    runners, models = {}, []
    for workers, threads in args.config:
        model = ceiling.load_model(args.bundle, threads, args.max_batch)
        models.append(model)
        runners[f"{workers}x{threads}"] = paired.ceiling_runner(model.score, texts, args.max_batch, workers)
    ladders = openloop.run_async(paired.measure(runners, openloop.parse_rates(args.rates), args.step_seconds,
                                                args.budget_ms, args.repeats,
                                                on_step=paired.print_step(args.budget_ms)))
    for model in models:
        model.close()
    wake.release()
    paired.print_summary(ladders, args.budget_ms)


if __name__ == "__main__":
    main()
