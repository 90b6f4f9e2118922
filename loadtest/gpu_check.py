"""The ~4B path measured in one short run on the GPU test machine (issue 28).

    loadtest/gpu/device_check.sh OUT              # the GPU machine: Qwen3-4B's architecture, random bf16 weights
    loadtest/gpu/device_check.sh --dry-run OUT    # CPU, a tiny Qwen3: the same steps in about a minute (CI)

That machine has no network and about 15 minutes in all (10 per command), so nothing here needs a
download or a checkpoint, and every step is sized to fit: build the architecture with random
weights (speed and memory do not depend on their values), a tokenizer trained on synthetic page
text and a bundle around them, then

1. latency: batch 1/8/32 x 64 tokens, p50/p99, through the PyTorch backend (bf16, CUDA graphs);
2. in-process max rate at p99 <= 10 ms: the open-loop Poisson ladder of loadtest/ceiling.py
   (greedy batching up to 32, no gRPC): the model's ceiling on this device;
3. served max rate at p99 <= 10 ms: `brandsafe serve --backend torch` driven over gRPC by the
   open-loop generator (loadtest/openloop.py), every request a distinct page (cache off): what a
   bidder gets, and its ratio to (2) is the share of the budget the server's own path takes;
4. training: a few LoRA steps of the `qwen3-4b-gpu` recipe (its dtype, LoRA, gradient
   checkpointing, batch 32 x 96 tokens) through training/train.py's own loop: peak memory, step
   time, tokens/s.

Writes gpu_check.json, gpu_check.md and serve.log to OUT. `--parts` runs a subset (e.g. `train`
alone in a second command).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from . import gpu_bench, openloop, roofline
from .compare import ServerProcess

PARTS = ("latency", "ladder", "serve", "train")
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "con", "dor", "fin", "gal", "hor", "jun",
             "mar", "nol", "pes", "quin", "ter", "ul", "wex", "yan", "zor")
PAD, EOS = "<|endoftext|>", "<|im_end|>"  # the 4B recipe's pad token, distinct from EOS (training/model.py)
MAX_LENGTH = 64  # the served bundle's: the issue's 64-token requests


def synthetic_pages(count: int, seed: int = 5) -> list[dict]:
    """Distinct pages with URL-like paths and titles of 3-14 words, so the served requests span the
    sequence buckets up to MAX_LENGTH; deterministic."""
    rng = np.random.default_rng(seed)
    words = sorted({"".join(rng.choice(SYLLABLES, rng.integers(2, 4))) for _ in range(600)})

    def phrase(low: int, high: int) -> list[str]:
        return [words[i] for i in rng.integers(0, len(words), rng.integers(low, high))]

    pages = []
    for i in range(count):
        host = f"{''.join(phrase(1, 3))}{i}.example"
        pages.append({"id": f"r{i}", "domain": host, "page": f"https://{host}/{'/'.join(phrase(1, 4))}",
                      "title": " ".join(phrase(3, 15)), "keywords": ",".join(phrase(0, 4))})
    return pages


def build_tokenizer(out_dir: Path, vocab_size: int):
    """A byte-level BPE trained on the synthetic pages, saved in Hugging Face's format, with the
    recipe's pad token distinct from EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [f"{p['page']} {p['title']} {p['keywords']}" for p in synthetic_pages(2000, seed=11)]
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token=PAD, eos_token=EOS)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_model_dir(workdir: Path, config: dict, device: str) -> tuple[Path, int]:
    """The merged-checkpoint folder a run would leave: random weights and the tokenizer."""
    checkpoint = workdir / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(checkpoint, min(800, config["vocab_size"]))
    gpu_bench.build_checkpoint(checkpoint, config, pad_token_id=tokenizer.pad_token_id, device=device)
    return checkpoint, tokenizer.pad_token_id


def labels(count: int = gpu_bench.NUM_LABELS):
    from brandsafe.labels import Label, LabelSet

    return LabelSet([Label(f"L{i}", f"label {i}", custom=i == count - 1, sensitive=i < 11) for i in range(count)])


def write_bundle(out_dir: Path, checkpoint: Path, pad_token_id: int) -> tuple[Path, Path]:
    """A bundle for `serve --backend torch` (the scores come from --torch-model, so it holds no
    ONNX graph), and brand profiles for its synthetic labels."""
    from brandsafe.bundle import BUNDLE_INFO, write_manifest
    from brandsafe.rendering import SCHEMA_VERSION

    out_dir.mkdir(parents=True, exist_ok=True)
    label_set = labels()
    label_set.save(out_dir / "labels.json")
    (out_dir / "tokenizer.json").write_bytes((checkpoint / "tokenizer.json").read_bytes())
    (out_dir / "calibration.json").write_text(json.dumps({"temperature": 1.0}) + "\n")
    (out_dir / "thresholds.json").write_text(json.dumps({"thresholds": {l.id: 0.5 for l in label_set}}) + "\n")
    info = {"bundle_id": "gpu-check-random-weights", "schema_version": SCHEMA_VERSION, "recipe": "qwen3-4b-gpu",
            "max_length": MAX_LENGTH, "pad_token_id": pad_token_id, "pad_token": PAD, "precision": "bf16",
            "model_file": "(none: --backend torch)"}
    (out_dir / BUNDLE_INFO).write_text(json.dumps(info, indent=2) + "\n")
    write_manifest(out_dir)
    policies = out_dir.parent / "policies.toml"
    policies.write_text('[profiles.default]\nblock = ["@sensitive", "@custom"]\nthreshold = "bundle"\n'
                        'fallback = "allow"\n')
    return out_dir, policies


def parity(backend, pad_token_id: int, vocab: int) -> dict:
    """The backend's logits (last-token head, 4D mask, CUDA graphs) against transformers' own
    forward on the same weights, for right-padded rows of different lengths: its pad-token rule
    and this transformers version's agree."""
    import torch

    lengths = [64, 40, 17, 5, 1, 33, 64, 8]
    ids = np.full((len(lengths), 64), pad_token_id, dtype=np.int64)
    rng = np.random.default_rng(1)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(pad_token_id + 2, vocab, length)  # never the pad (or EOS) token
    mask = (ids != pad_token_id).astype(np.int64)
    got = backend.execute({"input_ids": ids, "attention_mask": mask})
    with torch.inference_mode():
        model = backend.model  # its forward is patched per instance; the class's is transformers' own
        expected = type(model).forward(model, input_ids=torch.from_numpy(ids).to(backend.device),
                                       attention_mask=torch.from_numpy(mask).to(backend.device)).logits
    expected = expected.float().cpu().numpy()
    diff = float(np.abs(got - expected).max())
    # bf16 on the GPU rounds each layer's output to 8 bits of mantissa; fp32 on CPU should agree closely.
    bound = 1e-3 if backend.dtype == torch.float32 else 0.05 * max(1.0, float(np.abs(expected).max()))
    return {"rows": len(lengths), "max_abs_diff": diff, "bound": bound, "passed": diff <= bound}


def in_process(checkpoint: Path, config: dict, pad_token_id: int, args, record: dict, parts: set[str]) -> None:
    from brandsafe.service.torch_backend import TorchBackend

    sizes = [1, 8, 32]
    backend = TorchBackend(checkpoint, threads=args.threads, batch_buckets=sizes).initialize()
    record["torch_backend"] = backend.name
    record["parity"] = parity(backend, pad_token_id, min(800, config["vocab_size"]))
    print(f"parity with transformers' forward: max |diff| {record['parity']['max_abs_diff']:.2e} "
          f"(bound {record['parity']['bound']:.0e}): {'ok' if record['parity']['passed'] else 'FAILED'}", flush=True)
    lat = gpu_bench.latency(backend, sizes, 64, config["vocab_size"], args.iters)
    record["latency"] = lat
    print(f"{backend.name}: " + ", ".join(f"batch {s}: p50 {v['p50_ms']:.2f} / p99 {v['p99_ms']:.2f} ms"
                                          for s, v in lat.items()), flush=True)
    if "ladder" in parts:
        ladder = gpu_bench.max_rate(backend, 64, config["vocab_size"], 32, args.budget_ms, lat[32]["p50_ms"],
                                    args.step_seconds)
        record["in_process"] = {"max_rate_rps": ladder["max_rate_within_budget"], "ladder": ladder}
        print(f"in-process max rate at p99 <= {args.budget_ms:g} ms: {ladder['max_rate_within_budget']:.0f}/s",
              flush=True)
    if backend.on_device:
        import torch

        record["inference_peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        # A shape whose capture failed runs eagerly (torch_backend.py): say so, its latency is not a graph's.
        failed = sorted(str(shape) for shape, entry in backend._graphs.items() if entry[0] is None)
        record["cuda_graphs"] = {"captured": len(backend._graphs) - len(failed), "failed": failed}
        if failed:
            record["notes"].append(f"CUDA graph capture failed for {failed}: those shapes ran eagerly")
    backend.finalize()


def served(checkpoint: Path, pad_token_id: int, workdir: Path, out: Path, args, record: dict) -> None:
    from brandsafe.loadtest import replay

    bundle, policies = write_bundle(workdir / "bundle", checkpoint, pad_token_id)
    payloads = [replay.to_request(p).SerializeToString() for p in synthetic_pages(args.requests)]
    # Rungs around the in-process ceiling (the served rate cannot exceed it), or the full batch's rate.
    ceiling = record.get("in_process", {}).get("max_rate_rps") or 32 / (record["latency"][32]["p50_ms"] / 1e3)
    rates = sorted({max(1.0, round(ceiling * f, 1)) for f in (0.1, 0.25, 0.5, 0.75, 1.0)})
    argv = [sys.executable, "-m", "brandsafe", "serve", "--bundle", str(bundle), "--policies", str(policies),
            "--backend", "torch", "--torch-model", str(checkpoint), "--port", "0", "--cache-entries", "0",
            "--max-batch", "32", "--threads", str(args.threads)]
    started = time.perf_counter()
    # Up to 7 minutes: loading 8 GB and capturing every warmed shape's CUDA graph.
    server = ServerProcess("serve", argv, out, ready_timeout_s=420)
    record["serve"] = {"argv": argv[1:], "start_s": time.perf_counter() - started}
    try:
        ladder = openloop.run_async(openloop.measure(
            server.target, payloads, server_pid=server.pid, check=openloop.classify_check, rates=rates,
            step_seconds=args.step_seconds, budget_ms=args.budget_ms, warmup_seconds=min(2.0, args.step_seconds),
            refine=1))
    finally:
        server.stop()
    result = ladder.to_json()
    record["serve"].update({"max_rate_rps": result["max_rate_within_budget"], "ladder": result})
    if record.get("in_process", {}).get("max_rate_rps"):
        record["serve"]["share_of_in_process"] = result["max_rate_within_budget"] / record["in_process"]["max_rate_rps"]
    print(f"served max rate at p99 <= {args.budget_ms:g} ms: {result['max_rate_within_budget']:.0f}/s", flush=True)


class TimedBatches:
    """Synthetic training batches (random ids, the recipe's shape); each fetch is timed, and
    train.py's loop reads the loss back every step, so consecutive fetches bracket one step."""

    def __init__(self, steps: int, batch_size: int, length: int, vocab: int, num_labels: int, device):
        import torch

        generator = torch.Generator().manual_seed(3)
        self.batches = [{"input_ids": torch.randint(3, vocab, (batch_size, length), generator=generator),
                         "attention_mask": torch.ones(batch_size, length, dtype=torch.int64),
                         "targets": (torch.rand(batch_size, num_labels, generator=generator) < 0.05).long()}
                        for _ in range(steps)]
        self.device = device
        self.fetched: list[float] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.fetched.append(time.perf_counter())
            yield {k: v.to(self.device) for k, v in batch.items()}


def train_steps(checkpoint: Path, args, record: dict) -> None:
    import torch
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    from brandsafe.training import train as training
    from brandsafe.training.model import build_model, load_tokenizer
    from brandsafe.training.recipe import load_recipe

    os.environ["QWEN3_4B_PATH"] = str(checkpoint)
    recipe = dataclasses.replace(load_recipe("qwen3-4b-gpu", max_steps=args.train_steps), eval_every=0)
    accelerator = Accelerator(mixed_precision=recipe.mixed_precision)
    cuda = accelerator.device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    label_set = labels()
    tokenizer = load_tokenizer(recipe)
    model = build_model(recipe, label_set, tokenizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=recipe.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = get_linear_schedule_with_warmup(optimizer, 1, recipe.max_steps)
    batches = TimedBatches(recipe.max_steps, recipe.batch_size, recipe.max_length, len(tokenizer), len(label_set),
                           accelerator.device)
    training._fit(accelerator, model, optimizer, scheduler, batches, None, None, recipe.max_steps, recipe,
                  torch.ones(len(label_set), device=accelerator.device))
    ends = batches.fetched[1:] + [time.perf_counter()]
    steps_s = [end - start for start, end in zip(batches.fetched, ends)]
    steady = steps_s[1:] or steps_s  # the first step pays for allocation and kernel selection
    step_s = float(np.median(steady))
    result = {"recipe": recipe.name, "steps": len(steps_s), "batch": recipe.batch_size, "tokens": recipe.max_length,
              "dtype": recipe.dtype, "mixed_precision": recipe.mixed_precision, "lora_r": recipe.lora_r,
              "gradient_checkpointing": recipe.gradient_checkpointing, "step_s": steps_s,
              "median_step_s": step_s, "tokens_per_s": recipe.batch_size * recipe.max_length / step_s,
              "trainable_parameters": sum(p.numel() for p in trainable)}
    if cuda:
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    record["train"] = result
    memory = (f"peak GPU memory {result['peak_gpu_memory_gib']:.1f} GiB" if cuda
              else f"peak RSS {result['peak_rss_gib']:.2f} GiB")
    print(f"train {recipe.name}: {len(steps_s)} steps, median {step_s:.2f} s, "
          f"{result['tokens_per_s']:.0f} tokens/s, {memory}", flush=True)


def markdown(record: dict) -> str:
    device = record["device"].get("gpu") or f"no GPU (CPU: {record['device']['cpu']})"
    roof = record["roofline"]
    lines = [f"# GPU check: {record['model']}", "", f"- date: {record['date']}", f"- device: {device}",
             f"- software: Python {record['device']['python']}, torch {record['device']['torch']}, "
             f"transformers {record['transformers']}", f"- command: `{record['command']}`",
             f"- roofline: batch-1 floor {roof['batch1_floor_ms']:.2f} ms, compute ceiling "
             f"{roof['compute_ceiling_rps']:.0f} requests/s (H100 figures)"]
    lines += [f"- note: {note}" for note in record["notes"]]
    if "parity" in record:
        p = record["parity"]
        lines.append(f"- parity with transformers' own forward ({p['rows']} right-padded rows): max |diff| "
                     f"{p['max_abs_diff']:.2e}, bound {p['bound']:.0e}: {'passed' if p['passed'] else 'FAILED'}")
    if "latency" in record:
        lines += ["", f"## Latency, {record['torch_backend']}, 64 tokens", "", "| batch | p50 ms | p99 ms | rows/s |",
                  "|---|---|---|---|"]
        lines += [f"| {size} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['rows_per_s']:.0f} |"
                  for size, v in record["latency"].items()]
        if "cuda_graphs" in record:
            graphs = record["cuda_graphs"]
            lines += ["", f"- CUDA graphs: {graphs['captured']} shapes captured, failed: {graphs['failed'] or 'none'}; "
                          f"peak GPU memory {record['inference_peak_gpu_memory_gib']:.1f} GiB"]
    budget = record["budget_ms"]
    if "in_process" in record or "serve" in record:
        lines += ["", f"## Max rate at p99 <= {budget:g} ms", ""]
    if "in_process" in record:
        lines.append(f"- in-process (open-loop ladder, no gRPC): {record['in_process']['max_rate_rps']:.0f} requests/s")
    if "serve" in record:
        served_ = record["serve"]
        share = (f" ({served_['share_of_in_process']:.2f} of in-process)" if "share_of_in_process" in served_ else "")
        lines.append(f"- served (`brandsafe serve --backend torch`, gRPC, open-loop generator, cache off): "
                     f"{served_['max_rate_rps']:.0f} requests/s{share}; server up in {served_['start_s']:.0f} s")
        lines += ["", "| offered/s | achieved/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for step in served_["ladder"]["steps"]:
            errors = ", ".join(f"{k}: {v}" for k, v in step["errors"].items()) or "-"
            lines.append(f"| {step['offered_rps']:.0f} | {step['achieved_rps']:.0f} | {step['latency_ms']['p50']:.2f} "
                         f"| {step['latency_ms']['p99']:.2f} | {errors} |")
    if "train" in record:
        t = record["train"]
        memory = (f"peak GPU memory {t['peak_gpu_memory_gib']:.1f} GiB" if "peak_gpu_memory_gib" in t
                  else f"peak RSS {t['peak_rss_gib']:.2f} GiB (CPU)")
        lines += ["", f"## Training: recipe {t['recipe']}", "",
                  f"- {t['steps']} LoRA steps (r={t['lora_r']}), batch {t['batch']} x {t['tokens']} tokens, "
                  f"{t['dtype']} weights, {t['mixed_precision']} compute, gradient checkpointing "
                  f"{'on' if t['gradient_checkpointing'] else 'off'}, "
                  f"{t['trainable_parameters']:,} trainable parameters",
                  f"- median step {t['median_step_s']:.3f} s ({t['tokens_per_s']:.0f} tokens/s); {memory}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for gpu_check.json, gpu_check.md and serve.log")
    parser.add_argument("--dry-run", action="store_true", help="a tiny Qwen3 on CPU, short steps (CI)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {','.join(PARTS)} (default: all)")
    parser.add_argument("--budget-ms", type=float, default=10.0)
    parser.add_argument("--iters", type=int, default=200, help="timed batches per size (latency)")
    parser.add_argument("--step-seconds", type=float, default=4.0, help="one ladder rung")
    parser.add_argument("--requests", type=int, default=20_000, help="distinct pages the served ladder sends")
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (dry run: 1)")
    parser.add_argument("--workdir", type=Path, default=None, help="checkpoint and bundle (default: a temp dir)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts: unknown {sorted(parts - set(PARTS))}; choose from {PARTS}")
    if "serve" in parts:
        parts.add("latency")  # the served ladder's rungs are set from the measured batch latency

    import torch
    import transformers

    cuda = torch.cuda.is_available()
    if args.dry_run:
        args.iters, args.step_seconds = min(args.iters, 10), min(args.step_seconds, 0.4)
        args.requests, args.train_steps = min(args.requests, 2000), min(args.train_steps, 3)
        args.threads = args.threads or 1
    elif not cuda:
        parser.error("no CUDA device: use --dry-run for the CPU rehearsal")
    config = roofline.QWEN3_TINY if args.dry_run else roofline.QWEN3_4B
    record = {"model": f"Qwen3 {'tiny (dry run)' if args.dry_run else '4B'} architecture, "
                       f"{config['num_hidden_layers']} layers, random weights",
              "command": " ".join(["loadtest/gpu/device_check.sh", *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": gpu_bench.device_facts(),
              "transformers": transformers.__version__, "budget_ms": args.budget_ms, "parts": sorted(parts),
              "notes": [], "roofline": roofline.roofline(roofline.QWEN3_4B, gpu_bench.NUM_LABELS, 64).as_dict()}
    if args.dry_run:
        record["notes"].append("dry run: a tiny Qwen3 on CPU; these numbers only show the steps run")
    if cuda:
        record["device"]["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="brandsafe-gpu-check-"))
    started = time.perf_counter()
    checkpoint, pad_token_id = build_model_dir(workdir, config, "cuda" if cuda else "cpu")
    record["build_s"] = time.perf_counter() - started
    print(f"random-weights checkpoint in {workdir} ({record['build_s']:.0f} s)", flush=True)
    if cuda:
        torch.cuda.empty_cache()
    steps = [("latency", lambda: in_process(checkpoint, config, pad_token_id, args, record, parts)),
             ("serve", lambda: served(checkpoint, pad_token_id, workdir, args.out, args, record)),
             ("train", lambda: train_steps(checkpoint, args, record))]
    for name, run in steps:
        if name in parts or (name == "latency" and "ladder" in parts):
            begun = time.perf_counter()
            try:
                run()
            except Exception as exc:  # one failed part must not cost the GPU minutes' other numbers
                traceback.print_exc()
                record["notes"].append(f"{name} failed: {type(exc).__name__}: {exc}"[:2000])
            record[f"{name}_part_s"] = time.perf_counter() - begun
            _save(record, args.out)  # what is done survives a later part running out of time
    record["total_s"] = time.perf_counter() - started
    _save(record, args.out)
    print(markdown(record), flush=True)
    gaps = missing(record)
    if gaps:
        raise SystemExit(f"gpu_check: incomplete: {'; '.join(gaps)}")
    return record


def missing(record: dict) -> list[str]:
    """What a run asked for and did not produce: a part that did not run, or a served ladder whose
    every request failed (a server that answers nothing has no max rate to report)."""
    gaps = []
    parts = set(record["parts"])
    if parts & {"latency", "ladder"} and not record.get("latency"):
        gaps.append("latency")
    if "ladder" in parts and not record.get("in_process", {}).get("ladder", {}).get("steps"):
        gaps.append("in-process ladder")
    if "serve" in parts and not sum(step["ok"] for step in record.get("serve", {}).get("ladder", {}).get("steps", [])):
        gaps.append("served ladder (no request answered)")
    if "train" in parts and not record.get("train", {}).get("steps"):
        gaps.append("training steps")
    if not record.get("parity", {}).get("passed", True):
        gaps.append("parity: the torch backend disagrees with transformers' forward")
    return gaps


def _save(record: dict, out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    (out / "gpu_check.md").write_text(markdown(record))


if __name__ == "__main__":
    main()
