"""Decoder classifiers score the last non-pad token only, and the exported graph should too.

transformers' `*ForSequenceClassification` for decoders (Qwen3, Llama, ...) applies the score layer
to every position and then picks the last non-pad row: [batch, seq, hidden] x [hidden, labels].
Here the hidden state of that token is gathered first and the score layer runs on [batch, hidden]:
the same numbers (the pick is the same rule), a graph whose head cost does not grow with length,
and never a vocabulary-wide LM head. Encoders (BERT) pool [CLS] and are left alone.
"""
from __future__ import annotations

import types

import torch
from transformers.modeling_outputs import SequenceClassifierOutputWithPast


def is_decoder_classifier(model) -> bool:
    """A last-token classifier: a `score` head over `model.<base_model_prefix>` (GenericForSequenceClassification)."""
    return isinstance(getattr(model, "score", None), torch.nn.Linear) and hasattr(model, model.base_model_prefix)


def last_non_pad_index(input_ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """The rightmost position that is not the pad token: transformers' rule, so parity is exact."""
    non_pad = (input_ids != pad_token_id).to(torch.int32)
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return (positions * non_pad).argmax(-1)


def _last_token_forward(self, input_ids=None, attention_mask=None, **_ignored):
    hidden = getattr(self, self.base_model_prefix)(input_ids, attention_mask=attention_mask,
                                                   use_cache=False).last_hidden_state
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    pooled = hidden[rows, last_non_pad_index(input_ids, self.config.pad_token_id)]
    # float32 logits whatever the weights are: the service and the parity gate read them as such.
    return SequenceClassifierOutputWithPast(logits=self.score(pooled).float())


def score_last_token_only(model):
    """Patch `model.forward` (this instance only) to gather the last non-pad hidden state before the
    score layer. Returns the model; a no-op for models that are not decoder classifiers."""
    if is_decoder_classifier(model):
        if model.config.pad_token_id is None:
            raise ValueError("a decoder classifier needs config.pad_token_id to find the last real token")
        model.forward = types.MethodType(_last_token_forward, model)
    return model
