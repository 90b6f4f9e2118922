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


def build_model(recipe: Recipe, labels: LabelSet, tokenizer: PreTrainedTokenizerBase,
                dtype: str | None = None) -> PeftModel:
    """`dtype` overrides the recipe's weight dtype (FSDP keeps fp32 master weights, see train.py)."""
    model = AutoModelForSequenceClassification.from_pretrained(
        recipe.resolve_base(),
        num_labels=len(labels),
        problem_type="multi_label_classification",
        id2label={i: l.id for i, l in enumerate(labels)},
        label2id={l.id: i for i, l in enumerate(labels)},
        dtype=_DTYPES[dtype or recipe.dtype],
        ignore_mismatched_sizes=True,  # a base that already has a head for other labels gets a new one
    )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if recipe.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5: the 4.x name is deprecated
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if recipe.identity_pooler:
        _identity_pooler(model, recipe)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.lora_targets) or None,
        layers_to_transform=list(recipe.lora_layers) or None,
        modules_to_save=list(recipe.trainable_modules),
    )
    peft_model = get_peft_model(model, lora)
    for module in recipe.trainable_modules:
        if not any(p.requires_grad for n, p in peft_model.named_parameters() if f".{module}." in f".{n}"):
            raise RecipeError(f"recipe {recipe.name}: trainable module {module!r} not found in the model")
    return peft_model


def _identity_pooler(model, recipe: Recipe) -> None:
    """BERT-style heads read tanh(W·h[CLS]). Sentence-embedding checkpoints never trained W (in
    all-MiniLM-L6-v2 its weights have std ≈ 0.009), which shrinks both the features and the
    gradient reaching the encoder a hundredfold. Identity W passes h[CLS] through."""
    dense = getattr(getattr(getattr(model, model.base_model_prefix, None), "pooler", None), "dense", None)
    if dense is None or dense.weight.shape[0] != dense.weight.shape[1]:
        raise RecipeError(f"recipe {recipe.name}: identity_pooler needs a BERT-style pooler.dense")
    with torch.no_grad():
        dense.weight.copy_(torch.eye(dense.weight.shape[0], dtype=dense.weight.dtype))
        dense.bias.zero_()


def init_head_bias(peft_model, recipe: Recipe, targets) -> None:
    """Start each label's logit at its log prior odds. From 0.5 everywhere, the first updates are
    one shared "push every logit down", and at adapter learning rates that collapses the encoder
    to a constant output; from the priors, training starts on what separates the rows.
    Heads without a bias (Qwen3's score layer) are left as they are."""
    import numpy as np

    head = None
    for name, module in peft_model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(f"{recipe.trainable_modules[0]}.modules_to_save.default"):
            head = module
    if head is None or head.bias is None:
        return
    prior = np.clip(targets.mean(axis=0), 1e-4, 1 - 1e-4)
    with torch.no_grad():
        head.bias.copy_(torch.as_tensor(np.log(prior / (1 - prior)), dtype=head.bias.dtype))


def merge(peft_model: PeftModel):
    """Fold the adapter into the base weights; the result is a plain transformers model."""
    return peft_model.merge_and_unload()
