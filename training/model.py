"""Build the classifier: a pretrained base as AutoModelForSequenceClassification with a LoRA adapter."""
from __future__ import annotations

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from brandsafe.labels import LabelSet

from .recipe import Recipe, RecipeError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_tokenizer(recipe: Recipe) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(recipe.resolve_base(), use_fast=True)
    if recipe.pad_token:
        if recipe.pad_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"pad_token": recipe.pad_token})
        tokenizer.pad_token = recipe.pad_token
    if tokenizer.pad_token is None:
        raise RecipeError(f"recipe {recipe.name}: the base tokenizer has no pad token; set [base] pad_token")
    # Decoder classifiers pool the last token that is not the pad token: if pad were EOS, a
    # sequence ending in EOS would be pooled at the wrong position.
    if tokenizer.eos_token is not None and tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise RecipeError(f"recipe {recipe.name}: pad token {tokenizer.pad_token!r} is the EOS token; pick another")
    tokenizer.padding_side = "right"
    return tokenizer


def build_model(recipe: Recipe, labels: LabelSet, tokenizer: PreTrainedTokenizerBase) -> PeftModel:
    model = AutoModelForSequenceClassification.from_pretrained(
        recipe.resolve_base(),
        num_labels=len(labels),
        problem_type="multi_label_classification",
        id2label={i: l.id for i, l in enumerate(labels)},
        label2id={l.id: i for i, l in enumerate(labels)},
        dtype=_DTYPES[recipe.dtype],
    )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if recipe.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.lora_targets) or None,
        modules_to_save=[recipe.head],
    )
    peft_model = get_peft_model(model, lora)
    if not any(p.requires_grad for n, p in peft_model.named_parameters() if recipe.head in n):
        raise RecipeError(f"recipe {recipe.name}: head module {recipe.head!r} not found in the model")
    return peft_model


def merge(peft_model: PeftModel):
    """Fold the adapter into the base weights; the result is a plain transformers model."""
    return peft_model.merge_and_unload()
