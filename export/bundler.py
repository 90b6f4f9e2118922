"""Run folder (from training) → bundle folder (what the service loads).

The bundle is assembled in a temporary sibling folder and renamed into place only after the
parity gate passes, so a failed export never leaves a half-written bundle where a server looks.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from transformers import AutoModelForSequenceClassification

from brandsafe.bundle import BUNDLE_INFO, sha256_file, write_manifest
from brandsafe.labels import LabelSet
from brandsafe.tokenization import BatchTokenizer

from . import mixed_precision, onnx_export, parity, smoothing

log = logging.getLogger(__name__)

RUN_FILES = ("labels.json", "calibration.json", "thresholds.json", "report.json", "report.md")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
MODEL_FILE = "model.onnx"


class _RunInputs:
    """What export needs from a training run: tokenizer, validation texts, labels, calibration."""

    def __init__(self, run_dir: Path, rows: int):
        self.run = json.loads((run_dir / "run.json").read_text())
        self.merged_dir = run_dir / "merged"
        # Distinct texts only: URLs that normalise to one text are one computation. The MiniLM run's
        # sample held one Google Docs text 16 times, near-tied, and it cost half a point of agreement.
        texts = list(dict.fromkeys(json.loads(line)["text"] for line in
                                   (run_dir / "validation.jsonl").read_text().splitlines() if line))
        self.texts = texts[:: max(1, len(texts) // rows)][:rows] if texts else ["example com"]
        self.labels = LabelSet.load(run_dir / "labels.json")
        thresholds_by_id = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
        self.thresholds = np.array([thresholds_by_id[l.id] for l in self.labels])
        self.temperature = json.loads((run_dir / "calibration.json").read_text())["temperature"]
        self.tokenizer = BatchTokenizer(self.merged_dir / "tokenizer.json", self.run["max_length"],
                                        self.run["pad_token_id"], self.run["pad_token"])


def build_bundle(run_dir: Path, out_dir: Path, precision: str | None = None, parity_rows: int = 2000,
                 external_data_threshold: int = onnx_export.EXTERNAL_DATA_THRESHOLD) -> Path:
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    inputs = _RunInputs(run_dir, parity_rows)
    run = inputs.run
    precision = precision or run["recipe"]["export_precision"]
    if precision not in onnx_export.PRECISIONS:
        raise ValueError(f"precision must be one of {onnx_export.PRECISIONS}, got {precision!r}")
    merged_dir = inputs.merged_dir
    started = time.time()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        kept_fp32: list[str] = []
        int8_fallback = ""
        with tempfile.TemporaryDirectory(prefix="brandsafe-export-") as work:
            exported = onnx_export.export_fp32(merged_dir, Path(work) / "fp32")
            if precision == "fp16":
                exported = onnx_export.convert_fp16(exported, Path(work) / "fp16", external_data_threshold)
            elif precision == "int8":
                fp32 = exported
                # 512 rows: on 256 the search's p99 is the 3rd-worst row, and the MiniLM bundle it
                # chose drifted 0.056 on the gate's 2,000 rows (bound 0.06); on 512, 0.041.
                search_texts = inputs.texts[:512]
                smoothed = smoothing.smooth(fp32, Path(work) / "smoothed", inputs.tokenizer, search_texts)
                exported, kept_fp32 = mixed_precision.search(
                    smoothed, Path(work) / "int8", inputs.tokenizer, search_texts, inputs.temperature,
                    parity.MAX_P99_SCORE_DRIFT["int8"])
                weight_count = len(onnx_export.weight_matmuls(fp32))
                if len(kept_fp32) > weight_count // 2:
                    # Too little would be int8 to be worth a quantized graph: ship fp32, say why.
                    log.warning("int8 holds the parity bound on only %d of %d weight MatMuls; shipping fp32",
                                weight_count - len(kept_fp32), weight_count)
                    exported, precision, int8_fallback = fp32, "fp32", (
                        f"int8 broke the parity bound on {len(kept_fp32)} of {weight_count} weight MatMuls")
                    kept_fp32 = []
            _copy_model(exported, staging)
        for name in RUN_FILES:
            shutil.copy2(run_dir / name, staging / name)
        for name in TOKENIZER_FILES:
            if (merged_dir / name).exists():
                shutil.copy2(merged_dir / name, staging / name)

        torch_model = AutoModelForSequenceClassification.from_pretrained(merged_dir, dtype="float32")
        result = parity.check(torch_model, staging / MODEL_FILE, inputs.tokenizer, inputs.texts, inputs.temperature,
                              inputs.thresholds, precision)
        (staging / "parity.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        if not result.passed:
            raise parity.ParityError(
                f"parity check failed for {precision}: top-label agreement {result.top_label_agreement:.4f} "
                f"(min {result.min_top_label_agreement}), p99 score drift {result.p99_score_drift:.4f} "
                f"(max {result.bound_p99_score_drift})")

        bundle_id = f"{run['recipe']['name']}-{time.strftime('%Y%m%d-%H%M%S')}-{sha256_file(staging / MODEL_FILE)[:8]}"
        info = {"bundle_id": bundle_id, "schema_version": run["schema_version"],
                "context_schema": run.get("context_schema", ""), "recipe": run["recipe"]["name"],
                "max_length": run["max_length"], "pad_token_id": run["pad_token_id"], "pad_token": run["pad_token"],
                # "int8-mixed": int8 broke the parity bound on some MatMuls, which stayed fp32 (listed).
                "precision": "int8-mixed" if kept_fp32 else precision, "model_file": MODEL_FILE,
                "int8_kept_fp32": kept_fp32, "int8_fallback": int8_fallback,
                "int8_smoothing_alpha": smoothing.ALPHA if precision == "int8" else None,
                "export_seconds": round(time.time() - started, 1)}
        (staging / BUNDLE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        write_manifest(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
        log.info("bundle %s written to %s (parity: agreement %.4f, p99 drift %.4f)", bundle_id, out_dir,
                 result.top_label_agreement, result.p99_score_drift)
        return out_dir
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _copy_model(exported: Path, staging: Path) -> None:
    """The model under a fixed name; external-data files (models over 2 GB) keep their names,
    which the graph references."""
    shutil.copy2(exported, staging / MODEL_FILE)
    for sibling in exported.parent.iterdir():
        if sibling != exported and not sibling.suffix == ".onnx" and sibling.name.startswith(exported.name):
            shutil.copy2(sibling, staging / sibling.name)
