"""Fine-tune, merge, calibrate and evaluate one recipe; writes a run folder for `export`.

Written against `accelerate` so the same file runs on one CPU, one GPU, or many GPUs under
`accelerate launch` (DDP or FSDP): every process trains, only the main process evaluates the
extra checks and writes files.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from brandsafe.labels import LabelSet
from brandsafe.rendering import CONTEXT_SCHEMA_VERSION, SCHEMA_VERSION
from brandsafe.retrieval import Retriever, build_index, write_knowledge
from brandsafe.taxonomy import Taxonomy
from brandsafe.tokenization import BatchTokenizer

from . import calibrate, context, report
from .augment import ShortcutAugmenter
from .batching import LengthGroupedBatches
from .data import read_rows
from .dataset import Examples, page_of, to_examples
from .evaluate import choose_thresholds, macro_f1
from .labelmap import build_label_set, label_ids
from .model import build_model, init_head_bias, load_tokenizer, merge
from .recipe import Recipe, RecipeError
from .quality import published, tuning_set, validation_views
from .split import split_rows
from .taxonomy_examples import taxonomy_rows

log = logging.getLogger(__name__)


def train(recipe: Recipe, data_paths: list[Path], taxonomy_path: Path, out_dir: Path,
          probes_path: Path | None = None) -> Path:
    accelerator = Accelerator(mixed_precision=recipe.mixed_precision, gradient_accumulation_steps=recipe.grad_accum)
    set_seed(recipe.seed)
    out_dir = Path(out_dir)
    started = time.time()

    taxonomy = Taxonomy.load(taxonomy_path)
    split = load_split(recipe, data_paths, taxonomy)
    labels, train_set, val_set = split.labels, split.train, tuning_set(split.views)
    if accelerator.is_main_process:
        log.info("%d rows → %d train (incl. taxonomy examples) / %d validation (pages split by registrable "
                 "domain, bare domains given bidder paths; titles split by item), %d labels",
                 split.rows, len(train_set), len(val_set), len(labels))

    knowledge = None
    if recipe.context_fraction > 0:
        knowledge = _knowledge(accelerator, recipe, labels, train_set, out_dir)
        train_set = (context.attach_context(train_set, knowledge["retriever"], recipe.context_fraction,
                                            recipe.context_top_k, recipe.seed)
                     + context.with_retrieval(knowledge["note_examples"], knowledge["retriever"], recipe.context_top_k))
        if accelerator.is_main_process:
            log.info("context: %d training rows carry a <context> block (%d of them note-following rows); "
                     "index %s", sum(bool(p.passages) for p in train_set.pages), len(knowledge["note_examples"]),
                     knowledge["retriever"].version)

    hf_tokenizer = load_tokenizer(recipe)
    merged_dir = out_dir / "merged"
    if accelerator.is_main_process:
        merged_dir.mkdir(parents=True, exist_ok=True)
        hf_tokenizer.save_pretrained(merged_dir)
    accelerator.wait_for_everyone()
    # The same tokenizer file and settings the service will use.
    tokenizer = BatchTokenizer(merged_dir / "tokenizer.json", recipe.max_length,
                               hf_tokenizer.pad_token_id, hf_tokenizer.pad_token)

    # FSDP flattens each wrapped layer's parameters into one tensor of one dtype: the base in bf16
    # and the LoRA weights in fp32 (PEFT's default) cannot share it. So under FSDP every weight
    # starts fp32 (sharded: 16 GB / GPUs for 4B) and FSDP's mixed precision computes in bf16.
    fsdp = accelerator.distributed_type == DistributedType.FSDP
    if fsdp and recipe.eval_every:
        raise RecipeError(f"recipe {recipe.name}: eval_every keeps the best adapter in memory, which needs "
                          "whole parameters; under FSDP set eval_every = 0")
    model = build_model(recipe, labels, hf_tokenizer, dtype="float32" if fsdp else None)
    if fsdp and accelerator.is_main_process:
        log.info("FSDP over %d processes: fp32 master weights, compute in %s", accelerator.num_processes,
                 recipe.mixed_precision)
    init_head_bias(model, recipe, train_set.targets)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, weight_decay=recipe.weight_decay)
    augment = ShortcutAugmenter(recipe.strip_path_prob, recipe.add_path_prob, recipe.drop_title_prob, recipe.seed)
    lengths = tokenizer(train_set.texts())["attention_mask"].sum(axis=1).tolist()
    train_loader = DataLoader(_Indexed(train_set), collate_fn=_Collate(train_set, tokenizer, augment),
                              batch_sampler=LengthGroupedBatches(lengths, recipe.batch_size, recipe.seed))
    val_loader = DataLoader(_Indexed(val_set), batch_size=recipe.batch_size * 2, shuffle=False,
                            collate_fn=_Collate(val_set, tokenizer))
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    steps_per_epoch = math.ceil(len(train_loader) / recipe.grad_accum)
    total_steps = max(1, math.ceil(steps_per_epoch * recipe.epochs))
    if recipe.max_steps:
        total_steps = min(total_steps, recipe.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total_steps), total_steps)
    scheduler = accelerator.prepare(scheduler)
    pos_weight = _pos_weight(train_set.targets, recipe.pos_weight_power, recipe.pos_weight_max).to(accelerator.device)

    best = _fit(accelerator, model, optimizer, scheduler, train_loader, val_loader, val_set, total_steps, recipe,
                pos_weight)
    if best is not None:  # early stopping: keep the adapter that scored best on validation
        accelerator.unwrap_model(model).load_state_dict(best["state"], strict=False)
    val_logits = _predict(accelerator, model, val_loader)
    # Under FSDP each rank holds a shard, and a forward needs every rank: gather the full weights
    # (a collective, so on all ranks) and let the main process score and merge an unsharded copy.
    full_state = accelerator.get_state_dict(model) if fsdp else None

    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model) if not fsdp else _unsharded(recipe, labels, hf_tokenizer,
                                                                                 full_state, accelerator.device)
        score_texts = _text_scorer(unwrapped, tokenizer, accelerator.device)
        _write_run(out_dir, recipe, labels, hf_tokenizer, train_set, val_set, val_logits, score_texts,
                   {"optimizer_steps": total_steps, "best_step": best["step"] if best else total_steps,
                    "train_seconds": round(time.time() - started, 1)}, probes_path, knowledge, split.views, taxonomy)
        merged = merge(unwrapped)
        merged.config.pad_token_id = hf_tokenizer.pad_token_id
        merged.save_pretrained(merged_dir, safe_serialization=True)
    accelerator.wait_for_everyone()
    return out_dir


@dataclass
class Split:
    rows: int
    labels: LabelSet
    train: Examples
    views: dict  # validation views (quality.validation_views)


def load_split(recipe: Recipe, data_paths: list[Path], taxonomy: Taxonomy, labels: LabelSet | None = None) -> Split:
    """Rows read and filtered by the recipe, labels resolved, split (pages by registrable domain,
    title-only rows by item), title-only rows published on generic hosts, and the validation views.
    Deterministic for a recipe and data, so a finished run can be measured again on the same rows."""
    rows = [row for path in data_paths for row in read_rows(path)
            if not row.source.startswith(tuple(recipe.exclude_sources))]
    labels = labels or build_label_set(rows, taxonomy)
    examples = to_examples(rows, labels, taxonomy)
    strata = [next((labels.labels[j].id for j in np.flatnonzero(t)), "safe") for t in examples.targets]
    title_only = [not r.url for r in rows]
    train_idx, val_idx = split_rows([r.url for r in rows], strata, recipe.val_fraction, recipe.seed)
    rows = published(rows, recipe.seed)
    # Publishing changes pages, not labels: the targets resolved above still hold.
    examples = Examples([page_of(r) for r in rows], examples.targets, examples.origins)
    train_set = examples.subset(train_idx)
    if recipe.taxonomy_examples:  # custom labels the data does not have get no examples either
        written = [r for r in taxonomy_rows(taxonomy, recipe.seed)
                   if all(i in labels.index for i in label_ids(r, taxonomy))]
        train_set = train_set + to_examples(written, labels, taxonomy)
    return Split(len(rows), labels, train_set, validation_views(rows, title_only, examples, val_idx, recipe.seed))


def _knowledge(accelerator, recipe: Recipe, labels: LabelSet, train_set: Examples, out_dir: Path) -> dict:
    """The run's knowledge base and its index (built once, by the main process), the note-following
    training rows, and the citation-check rows (on hosts disjoint from training)."""
    notes, note_rows = context.note_cases(labels, recipe.note_rows, recipe.seed, citation=False)
    citation_notes, citation_rows = context.note_cases(labels, recipe.citation_rows, recipe.seed + 1, citation=True)
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        passages = (context.category_passages(labels) + context.domain_notes(train_set, labels, recipe.seed)
                    + notes + citation_notes)
        write_knowledge(passages, out_dir / "knowledge.jsonl")
        context.write_jsonl(citation_rows, out_dir / "citations.jsonl")
        build_index(out_dir / "knowledge.jsonl", out_dir / "index")
    accelerator.wait_for_everyone()
    return {"retriever": Retriever.load(out_dir / "index"), "note_examples": context.note_examples(note_rows, labels),
            "citation_examples": context.note_examples(citation_rows, labels)}


def _unsharded(recipe: Recipe, labels: LabelSet, hf_tokenizer, state: dict, device):
    model = build_model(recipe, labels, hf_tokenizer)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any("lora_" in k or "modules_to_save" in k for k in missing):
        raise RuntimeError(f"FSDP state dict does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device)


def _pos_weight(targets: np.ndarray, power: float, cap: float) -> torch.Tensor:
    """Up-weights positives of rare categories: (negatives / positives) ** power, at most `cap`."""
    positives = targets.sum(axis=0)
    ratio = (len(targets) - positives) / np.maximum(positives, 1)
    return torch.tensor(np.clip(ratio ** power, 1.0, cap), dtype=torch.float32)


def _fit(accelerator, model, optimizer, scheduler, loader, val_loader, val_set: Examples, total_steps: int,
         recipe: Recipe, pos_weight: torch.Tensor) -> dict | None:
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    progress = tqdm(total=total_steps, desc=f"train {recipe.name}", unit="step",
                    disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    step, smoothed, best = 0, None, None
    while step < total_steps:
        for batch in loader:
            with accelerator.accumulate(model):
                logits = model(**model_inputs(batch)).logits
                targets = batch["targets"].float()
                if recipe.label_smoothing:
                    targets = targets * (1 - recipe.label_smoothing) + recipe.label_smoothing / 2
                loss = loss_fn(logits.float(), targets)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            value = loss.detach().float().item()
            smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
            progress.update(1)
            progress.set_postfix(loss=f"{smoothed:.4f}", lr=f"{scheduler.get_last_lr()[0]:.1e}",
                                 best_f1=f"{best['macro_f1']:.3f}" if best else "-")
            if recipe.eval_every and (step % recipe.eval_every == 0 or step == total_steps):
                best = _keep_if_best(accelerator, model, val_loader, val_set, step, best)
                model.train()
            if step >= total_steps:
                break
    progress.close()
    return best


def _keep_if_best(accelerator, model, val_loader, val_set: Examples, step: int, best: dict | None) -> dict | None:
    probs = calibrate.sigmoid(_predict(accelerator, model, val_loader))
    score = macro_f1(probs, val_set.targets, choose_thresholds(probs, val_set.targets))
    if accelerator.is_main_process:
        log.info("step %d: validation macro-F1 %.4f%s", step, score,
                 "" if best is None or score > best["macro_f1"] else f" (best {best['macro_f1']:.4f} at {best['step']})")
    if best is not None and score <= best["macro_f1"]:
        return best
    state = {name: p.detach().clone() for name, p in accelerator.unwrap_model(model).named_parameters()
             if p.requires_grad}  # adapter and head only: small
    return {"step": step, "macro_f1": score, "state": state}


@torch.no_grad()
def _predict(accelerator, model, loader) -> np.ndarray:
    model.eval()
    chunks = []
    for batch in loader:
        logits = model(**model_inputs(batch)).logits
        chunks.append(accelerator.gather_for_metrics(logits.float()).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def _text_scorer(model, tokenizer: BatchTokenizer, device, batch_size: int = 64):
    """Logits for arbitrary texts on the main process (shortcut check, probes)."""
    @torch.no_grad()
    def score(texts: list[str]) -> np.ndarray:
        model.eval()
        out = []
        for start in range(0, len(texts), batch_size):
            batch = {k: torch.from_numpy(v).to(device) for k, v in tokenizer(texts[start:start + batch_size]).items()}
            out.append(model(**model_inputs(batch)).logits.float().cpu().numpy())
        return np.concatenate(out)
    return score


def _write_run(out_dir: Path, recipe: Recipe, labels: LabelSet, hf_tokenizer, train_set: Examples,
               val_set: Examples, val_logits: np.ndarray, score_texts, facts: dict, probes_path: Path | None,
               knowledge: dict | None = None, views: dict | None = None, taxonomy: Taxonomy | None = None) -> None:
    temperature = calibrate.fit_temperature(val_logits, val_set.targets)
    probs = calibrate.calibrated(val_logits, temperature)
    thresholds = choose_thresholds(probs, val_set.targets, min_precision=recipe.threshold_min_precision)
    full = report.build(recipe, labels, train_set, val_set, probs, thresholds, temperature, val_logits,
                        score_texts, facts, probes_path, views, taxonomy)
    if knowledge is not None:
        full["context"] = report.context_check(knowledge["retriever"], recipe.context_top_k, val_set,
                                               knowledge["citation_examples"], labels, score_texts, temperature,
                                               thresholds)
    labels.save(out_dir / "labels.json")
    (out_dir / "calibration.json").write_text(json.dumps({"method": "temperature", "temperature": temperature}) + "\n")
    (out_dir / "thresholds.json").write_text(json.dumps(
        {"selected_on": f"validation: per category, max F1 with precision >= {recipe.threshold_min_precision}",
         "thresholds": {l.id: float(t) for l, t in zip(labels, thresholds)}}, indent=2) + "\n")
    (out_dir / "report.json").write_text(json.dumps(full, indent=2) + "\n")
    (out_dir / "report.md").write_text(report.markdown(full))
    with (out_dir / "validation.jsonl").open("w") as fh:
        for page, text, target, origin in zip(val_set.pages, val_set.texts(), val_set.targets, val_set.origins):
            fh.write(json.dumps({"url": page.url, "title": page.title, "text": text,
                                 "labels": [labels.labels[j].id for j in np.flatnonzero(target)],
                                 "origin": origin}) + "\n")
    run = {"recipe": asdict(recipe), "schema_version": SCHEMA_VERSION,
           "context_schema": CONTEXT_SCHEMA_VERSION if knowledge is not None else "",
           "max_length": recipe.max_length,
           "pad_token_id": hf_tokenizer.pad_token_id, "pad_token": hf_tokenizer.pad_token}
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")


def model_inputs(batch: dict) -> dict:
    """Token type ids only matter for encoders that have them (BERT); decoders take none."""
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, examples: Examples):
        self.n = len(examples)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


class _Collate:
    """Renders (with augmentation when training) and tokenizes a whole batch at once."""

    def __init__(self, examples: Examples, tokenizer: BatchTokenizer, augment: ShortcutAugmenter | None = None):
        self.examples, self.tokenizer, self.augment = examples, tokenizer, augment

    def __call__(self, index: list[int]) -> dict:
        texts = self.examples.subset(index).texts(self.augment)
        batch = {k: torch.from_numpy(v) for k, v in self.tokenizer(texts).items()}
        batch["targets"] = torch.from_numpy(self.examples.targets[index])
        return batch
