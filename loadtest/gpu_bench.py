"""The ~4B path against the physical limit, in one command on a GPU machine.

    python -m brandsafe.loadtest.gpu_bench --out loadtest/gpu_bench_out          # GPU: the full run
    python -m brandsafe.loadtest.gpu_bench --tiny --out /tmp/bench                # CPU smoke, seconds
    python -m brandsafe.loadtest.gpu_bench --export-layers 2,4 --export-only      # CPU: export cost by depth

1. Build Qwen3-4B's architecture (hidden 2560, 36 layers, FFN 9728, 32 query / 8 KV heads x 128,
   vocab 151,936) as a sequence classifier with random bf16 weights: no hub, no checkpoint needed.
   Speed and memory do not depend on the weights' values.
2. Export it as the bundle pipeline does (Optimum fp32 → fp16 with external data), in a child
   process, timing it and reading its peak RSS. With several `--export-layers` depths (full width)
   the cost is fitted linearly in depth and extrapolated to 36 layers.
3. Latency at batch 1/8/32 x 64 tokens on each backend: ONNX Runtime (CUDA EP, IO binding) when
   the CUDA build is installed, and PyTorch (bf16, CUDA graphs) — the fallback, said so in the output.
4. Max rate at p99 <= 10 ms: the open-loop Poisson ladder of loadtest/ceiling.py (greedy batching
   up to 32, in-process: no gRPC), so this is the model's ceiling on this GPU, not the server's.
5. Ratios to the roofline (roofline.py) and a JSON + markdown record with the GPU and the command.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import ceiling, roofline

NUM_LABELS = 40  # about the bundle's label count (IAB tier-1 + GARM + custom)
PAD_TOKEN_ID = 151_643  # Qwen3's <|endoftext|>, the recipe's pad token


def build_checkpoint(out_dir: Path, config: dict, layers: int | None = None, pad_token_id: int | None = None,
                     device: str = "cpu") -> Path:
    """A random-weights Qwen3ForSequenceClassification, saved in bf16 like a merged run. `device`:
    where the weights are drawn (on a GPU, 4B of them take a second instead of a minute)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    pad = min(PAD_TOKEN_ID, config["vocab_size"] - 1) if pad_token_id is None else pad_token_id
    cfg = Qwen3Config(**{**config, **({"num_hidden_layers": layers} if layers else {})}, num_labels=NUM_LABELS,
                      pad_token_id=pad, problem_type="multi_label_classification")
    with torch.device("meta"):  # allocate once, in bf16, instead of initialising 4B fp32 weights
        model = Qwen3ForSequenceClassification(cfg).to(torch.bfloat16)
    model.to_empty(device=device)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(1.0) if "norm" in name else param.normal_(0.0, 0.02)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _export_child(checkpoint: Path, out_dir: Path) -> None:
    """Runs in its own process so its peak RSS is the export's alone."""
    from brandsafe.export import onnx_export

    started = time.perf_counter()
    fp32 = onnx_export.export_fp32(checkpoint, out_dir / "fp32")
    exported = time.perf_counter()
    fp16 = onnx_export.convert_fp16(fp32, out_dir / "fp16")
    done = time.perf_counter()
    files = {p.name: p.stat().st_size for p in fp16.parent.iterdir()}
    print(json.dumps({"export_fp32_s": exported - started, "convert_fp16_s": done - exported,
                      "fp16_files": files, "fp16_model": str(fp16)}))


def measure_export(checkpoint: Path, out_dir: Path) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "brandsafe.loadtest.gpu_bench", "--export-child",
                                 str(checkpoint), str(out_dir)], stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS alone
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"export failed:\n{err[-4000:]}")
    facts = json.loads(out.strip().splitlines()[-1])
    return {**facts, "wall_s": time.perf_counter() - started, "peak_rss_gib": usage.ru_maxrss / 2**20}


def extrapolate(depths: list[int], runs: list[dict], target: int) -> dict:
    """Least-squares line in depth through wall time and peak RSS, evaluated at `target` layers."""
    out = {}
    for key in ("wall_s", "peak_rss_gib"):
        values = [r[key] for r in runs]
        if len(depths) >= 2:
            slope, intercept = np.polyfit(depths, values, 1)
            out[key] = {"per_layer": float(slope), "fixed": float(intercept), f"at_{target}": float(intercept + slope * target)}
    return out


def make_backend(kind: str, checkpoint: Path, onnx_model: Path | None, buckets: list[int], threads: int):
    from brandsafe.service.backend import OnnxRuntimeBackend
    from brandsafe.service.torch_backend import TorchBackend

    if kind in ("onnxruntime", "tensorrt"):
        device = "tensorrt" if kind == "tensorrt" else "auto"
        return OnnxRuntimeBackend(onnx_model, threads, device, io_binding=True, batch_buckets=buckets).initialize()
    return TorchBackend(checkpoint, threads=threads, batch_buckets=buckets).initialize()


def synthetic_batch(rows: int, tokens: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(10, min(vocab, 100_000), (rows, tokens), dtype=np.int64),
            "attention_mask": np.ones((rows, tokens), dtype=np.int64)}


def latency(backend, batch_sizes: list[int], tokens: int, vocab: int, iters: int) -> dict:
    out = {}
    for size in batch_sizes:
        batch = synthetic_batch(size, tokens, vocab, seed=size)
        for _ in range(3):
            backend.execute(batch)
        times = []
        for _ in range(iters):
            started = time.perf_counter()
            backend.execute(batch)  # returns host logits: the device work is finished
            times.append((time.perf_counter() - started) * 1e3)
        out[size] = {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                     "rows_per_s": size / (np.mean(times) / 1e3)}
    return out


def max_rate(backend, tokens: int, vocab: int, max_batch: int, budget_ms: float, batch_ms: float,
             step_seconds: float) -> dict:
    """Open-loop Poisson ladder, greedy batching (loadtest/ceiling.py), around the rate the full
    batch's latency allows."""
    pool = synthetic_batch(max_batch, tokens, vocab, seed=7)
    texts = [str(i) for i in range(max_batch)]  # the ladder hands out "texts"; here rows of `pool`

    def score(batch_texts: list[str]) -> np.ndarray:
        return backend.execute({k: v[:len(batch_texts)] for k, v in pool.items()})

    capacity = max_batch / (batch_ms / 1e3)
    rates = sorted({round(capacity * f, 1) for f in (0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1)})
    ladder = ceiling.run_ladder(score, texts, rates, step_seconds, budget_ms, max_batch,
                                warmup_seconds=min(2.0, step_seconds))
    return ladder.to_json()


def device_facts() -> dict:
    import onnxruntime as ort
    import torch

    facts = {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
             "ort_providers": ort.get_available_providers(), "cuda": torch.cuda.is_available(),
             "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    return facts


def markdown(record: dict) -> str:
    lines = [f"# GPU benchmark: {record['model']}", "", f"- command: `{record['command']}`",
             f"- device: {record['device'].get('gpu', 'no GPU (CPU: ' + record['device']['cpu'] + ')')}",
             f"- roofline: batch-1 floor {record['roofline']['batch1_floor_ms']:.2f} ms "
             f"({record['roofline']['weight_bytes'] / 1e9:.2f} GB of 16-bit weights), compute ceiling "
             f"{record['roofline']['compute_ceiling_rps']:.0f} requests/s", ""]
    for note in record["notes"]:
        lines.append(f"- note: {note}")
    for export in record.get("export", []):
        lines.append(f"- export at {export['layers']} layers: {export['wall_s']:.1f} s, peak RSS "
                     f"{export['peak_rss_gib']:.2f} GiB, files {export['fp16_files']}")
    if record.get("export_extrapolated"):
        lines.append(f"- export extrapolated to {record['layers']} layers: {json.dumps(record['export_extrapolated'])}")
    for name, result in record.get("backends", {}).items():
        lines += ["", f"## {name}", "", "| batch | p50 ms | p99 ms | rows/s |", "|---|---|---|---|"]
        for size, lat in result["latency"].items():
            lines.append(f"| {size} | {lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} | {lat['rows_per_s']:.0f} |")
        lines += ["", f"- max rate at p99 <= {record['budget_ms']:g} ms: {result['max_rate_rps']:.0f} requests/s "
                      f"({result['ratio_to_compute_ceiling']:.2f} of the compute ceiling)",
                  f"- batch-1 p50 / floor: {result['batch1_over_floor']:.2f}x"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("loadtest/gpu_bench_out"), help="writes gpu_bench.json/.md")
    parser.add_argument("--tiny", action="store_true", help="a test-sized Qwen3 on CPU: a smoke run in seconds")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: the architecture's)")
    parser.add_argument("--export-layers", default="", help="depths to export and time, e.g. 2,4 (default: --layers)")
    parser.add_argument("--export-only", action="store_true", help="time the export; no latency or load runs")
    parser.add_argument("--backends", default="auto",
                        help="onnxruntime,torch,tensorrt (auto: onnxruntime when its CUDA EP is here, torch on CUDA)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--budget-ms", type=float, default=10.0)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for ORT/PyTorch, 0 = all (--tiny: 1, so a shared CPU does not stall it)")
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--hbm-tbps", type=float, default=roofline.H100_HBM_TBPS)
    parser.add_argument("--tflops", type=float, default=roofline.H100_DENSE_TFLOPS)
    parser.add_argument("--workdir", type=Path, default=None, help="checkpoint and ONNX files (default: a temp dir)")
    parser.add_argument("--export-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        return _export_child(*args.export_child)

    import onnxruntime as ort
    import torch

    config = roofline.QWEN3_TINY if args.tiny else roofline.QWEN3_4B
    layers = args.layers or config["num_hidden_layers"]
    if args.tiny:
        args.iters, args.step_seconds = min(args.iters, 20), min(args.step_seconds, 0.5)
        args.threads = args.threads or 1
    model_config = {**config, "num_hidden_layers": layers}
    record = {"model": f"Qwen3 {'tiny' if args.tiny else '4B'} architecture, {layers} layers, random weights",
              "command": " ".join(["python -m brandsafe.loadtest.gpu_bench", *map(shlex.quote, argv or sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": device_facts(), "layers": layers,
              "tokens": args.tokens, "budget_ms": args.budget_ms, "notes": [],
              "roofline": roofline.roofline(model_config, NUM_LABELS, args.tokens, 2, args.hbm_tbps,
                                            args.tflops).as_dict()}
    cuda = torch.cuda.is_available()
    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if args.backends == "auto":
        kinds = (["onnxruntime"] if ort_cuda or not cuda else []) + (["torch"] if cuda or args.tiny else [])
        if cuda and not ort_cuda:
            record["notes"].append("this machine's onnxruntime has no CUDA EP (onnxruntime-gpu not installed): "
                                   "GPU numbers are from the PyTorch backend")
    else:
        kinds = args.backends.split(",")
    if not cuda:
        record["notes"].append("no CUDA device: CPU numbers, not comparable with the GPU roofline")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="brandsafe-gpu-bench-"))
    export_depths = [int(d) for d in args.export_layers.split(",") if d] or [layers]
    record["export"] = []
    onnx_model = None
    checkpoint = None
    if args.export_only or any(k in ("onnxruntime", "tensorrt") for k in kinds):
        for depth in export_depths:
            ckpt = build_checkpoint(workdir / f"ckpt-{depth}", config, depth)
            facts = measure_export(ckpt, workdir / f"onnx-{depth}")
            record["export"].append({"layers": depth, **facts})
            print(f"export at {depth} layers: {facts['wall_s']:.1f} s, peak RSS {facts['peak_rss_gib']:.2f} GiB",
                  flush=True)
            if depth == layers:
                onnx_model, checkpoint = Path(facts["fp16_model"]), ckpt
        if len(export_depths) >= 2:
            record["export_extrapolated"] = extrapolate(export_depths, record["export"], config["num_hidden_layers"])
            record["notes"].append(f"export cost measured at {export_depths} layers (full width) and extrapolated "
                                   f"linearly to {config['num_hidden_layers']}")
    if not args.export_only:
        checkpoint = checkpoint or build_checkpoint(workdir / f"ckpt-{layers}", config, layers)
        record["backends"] = {}
        sizes = [int(s) for s in args.batch_sizes.split(",")]
        buckets = sorted({1, 2, 4, 8, 16, 32, *sizes})
        for kind in kinds:
            if kind in ("onnxruntime", "tensorrt") and onnx_model is None:
                record["notes"].append(f"{kind}: skipped, no export at {layers} layers in this run")
                continue
            backend = make_backend(kind, checkpoint, onnx_model, buckets, args.threads)
            lat = latency(backend, sizes, args.tokens, config["vocab_size"], args.iters)
            print(f"{backend.name}: " + ", ".join(f"batch {s}: p50 {v['p50_ms']:.2f} ms" for s, v in lat.items()),
                  flush=True)
            ladder = max_rate(backend, args.tokens, config["vocab_size"], max(buckets), args.budget_ms,
                              lat[max(sizes)]["p50_ms"], args.step_seconds)
            rate = ladder["max_rate_within_budget"]
            result = {"name": backend.name, "latency": lat, "max_rate_rps": rate, "ladder": ladder,
                      "batch1_over_floor": lat[min(sizes)]["p50_ms"] / record["roofline"]["batch1_floor_ms"],
                      "ratio_to_compute_ceiling": rate / record["roofline"]["compute_ceiling_rps"]}
            if cuda and kind == "torch":
                result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            record["backends"][kind] = result
            print(f"{backend.name}: max rate at p99 <= {args.budget_ms:g} ms: {rate:.0f}/s", flush=True)
            backend.finalize()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_bench.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    (args.out / "gpu_bench.md").write_text(markdown(record))
    print(markdown(record))
    return record


if __name__ == "__main__":
    main()
