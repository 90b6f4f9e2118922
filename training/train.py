"""Fine-tune, merge, calibrate and evaluate one recipe; writes a run folder for `export`.

Written against `accelerate` so the same file runs on one CPU, one GPU, or many GPUs under
`accelerate launch` (DDP or FSDP): only the main process writes files.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from brandsafe.labels import LabelSet
from brandsafe.rendering import SCHEMA_VERSION
from brandsafe.taxonomy import Taxonomy
from brandsafe.tokenization import BatchTokenizer

from . import calibrate
from .data import read_rows
from .dataset import Examples, to_examples
from .evaluate import choose_thresholds, evaluate, report_markdown
from .labelmap import build_label_set
from .model import build_model, load_tokenizer, merge
from .recipe import Recipe
from .split import split_by_domain

log = logging.getLogger(__name__)


def train(recipe: Recipe, data_paths: list[Path], taxonomy_path: Path, out_dir: Path) -> Path:
    accelerator = Accelerator(mixed_precision=recipe.mixed_precision, gradient_accumulation_steps=recipe.grad_accum)
    set_seed(recipe.seed)
    out_dir = Path(out_dir)
    started = time.time()

    taxonomy = Taxonomy.load(taxonomy_path)
    rows = [row for path in data_paths for row in read_rows(path)]
    labels = build_label_set(rows, taxonomy)
    examples = to_examples(rows, labels, taxonomy)
    strata = [next((labels.labels[j].id for j in np.flatnonzero(t)), "safe") for t in examples.targets]
    train_idx, val_idx = split_by_domain([r.url for r in rows], strata, recipe.val_fraction, recipe.seed)
    train_set, val_set = examples.subset(train_idx), examples.subset(val_idx)
    if accelerator.is_main_process:
        log.info("%d rows → %d train / %d validation (split by registrable domain), %d labels",
                 len(rows), len(train_set.texts), len(val_set.texts), len(labels))

    hf_tokenizer = load_tokenizer(recipe)
    merged_dir = out_dir / "merged"
    if accelerator.is_main_process:
        merged_dir.mkdir(parents=True, exist_ok=True)
        hf_tokenizer.save_pretrained(merged_dir)
    accelerator.wait_for_everyone()
    # The same tokenizer file and settings the service will use.
    tokenizer = BatchTokenizer(merged_dir / "tokenizer.json", recipe.max_length,
                               hf_tokenizer.pad_token_id, hf_tokenizer.pad_token)

    model = build_model(recipe, labels, hf_tokenizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=recipe.weight_decay)
    train_loader = DataLoader(_Indexed(train_set), batch_size=recipe.batch_size, shuffle=True,
                              collate_fn=_Collate(train_set, tokenizer))
    val_loader = DataLoader(_Indexed(val_set), batch_size=recipe.batch_size * 2, shuffle=False,
                            collate_fn=_Collate(val_set, tokenizer))
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    steps_per_epoch = math.ceil(len(train_loader) / recipe.grad_accum)
    total_steps = max(1, math.ceil(steps_per_epoch * recipe.epochs))
    if recipe.max_steps:
        total_steps = min(total_steps, recipe.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total_steps), total_steps)
    scheduler = accelerator.prepare(scheduler)

    _fit(accelerator, model, optimizer, scheduler, train_loader, total_steps, recipe)
    val_logits = _predict(accelerator, model, val_loader)

    if accelerator.is_main_process:
        merged = merge(accelerator.unwrap_model(model))
        merged.config.pad_token_id = hf_tokenizer.pad_token_id
        merged.save_pretrained(merged_dir, safe_serialization=True)
        _write_run(out_dir, recipe, labels, hf_tokenizer, val_set, val_logits, len(train_set.texts),
                   total_steps, time.time() - started)
    accelerator.wait_for_everyone()
    return out_dir


def _fit(accelerator, model, optimizer, scheduler, loader, total_steps: int, recipe: Recipe) -> None:
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    progress = tqdm(total=total_steps, desc=f"train {recipe.name}", unit="step",
                    disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    step, smoothed = 0, None
    while step < total_steps:
        for batch in loader:
            with accelerator.accumulate(model):
                logits = model(**model_inputs(batch)).logits
                targets = batch["targets"].to(logits.dtype)
                if recipe.label_smoothing:
                    targets = targets * (1 - recipe.label_smoothing) + recipe.label_smoothing / 2
                loss = loss_fn(logits.float(), targets.float())
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                value = loss.detach().float().item()
                smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
                progress.update(1)
                progress.set_postfix(loss=f"{smoothed:.4f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
                if step >= total_steps:
                    break
    progress.close()


@torch.no_grad()
def _predict(accelerator, model, loader) -> np.ndarray:
    model.eval()
    chunks = []
    for batch in tqdm(loader, desc="validate", unit="batch", disable=not accelerator.is_local_main_process,
                      dynamic_ncols=True):
        logits = model(**model_inputs(batch)).logits
        chunks.append(accelerator.gather_for_metrics(logits.float()).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def _write_run(out_dir: Path, recipe: Recipe, labels: LabelSet, hf_tokenizer, val_set: Examples,
               val_logits: np.ndarray, train_rows: int, steps: int, seconds: float) -> None:
    temperature = calibrate.fit_temperature(val_logits, val_set.targets)
    probs = calibrate.calibrated(val_logits, temperature)
    thresholds = choose_thresholds(probs, val_set.targets)
    metrics = evaluate(probs, val_set.targets, labels, thresholds)
    metrics.update({
        "recipe": recipe.name, "train_rows": train_rows, "optimizer_steps": steps,
        "train_seconds": round(seconds, 1), "temperature": temperature,
        "bce_before_calibration": calibrate.bce(val_logits, val_set.targets),
        "bce_after_calibration": calibrate.bce(val_logits / temperature, val_set.targets),
    })
    labels.save(out_dir / "labels.json")
    (out_dir / "calibration.json").write_text(json.dumps({"method": "temperature", "temperature": temperature}) + "\n")
    (out_dir / "thresholds.json").write_text(json.dumps(
        {"selected_on": "validation, max F1 per category",
         "thresholds": {l.id: float(t) for l, t in zip(labels, thresholds)}}, indent=2) + "\n")
    (out_dir / "report.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "report.md").write_text(report_markdown(
        f"Evaluation report: {recipe.name}", metrics,
        [f"Trained {steps} optimizer steps on {train_rows} rows in {seconds / 60:.1f} min; "
         f"temperature {temperature:.3f} (validation BCE {metrics['bce_before_calibration']:.4f} → "
         f"{metrics['bce_after_calibration']:.4f})."]))
    with (out_dir / "validation.jsonl").open("w") as fh:
        for text, target, origin in zip(val_set.texts, val_set.targets, val_set.origins):
            fh.write(json.dumps({"text": text, "labels": [labels.labels[j].id for j in np.flatnonzero(target)],
                                 "origin": origin}) + "\n")
    run = {"recipe": asdict(recipe), "schema_version": SCHEMA_VERSION, "max_length": recipe.max_length,
           "pad_token_id": hf_tokenizer.pad_token_id, "pad_token": hf_tokenizer.pad_token}
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def model_inputs(batch: dict) -> dict:
    """Token type ids only matter for encoders that have them (BERT); decoders take none."""
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, examples: Examples):
        self.n = len(examples.texts)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


class _Collate:
    """Tokenizes a whole batch at once with the fast tokenizer (padding to the batch's longest)."""

    def __init__(self, examples: Examples, tokenizer: BatchTokenizer):
        self.examples, self.tokenizer = examples, tokenizer

    def __call__(self, index: list[int]) -> dict:
        batch = {k: torch.from_numpy(v) for k, v in self.tokenizer([self.examples.texts[i] for i in index]).items()}
        batch["targets"] = torch.from_numpy(self.examples.targets[index])
        return batch
