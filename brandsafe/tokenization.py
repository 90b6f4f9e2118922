"""Batch tokenization with the bundle's fast (Rust) tokenizer, shared by training and serving."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


class BatchTokenizer:
    def __init__(self, tokenizer_json: str | Path, max_length: int, pad_token_id: int, pad_token: str):
        self.max_length = max_length
        self.pad_token_id = pad_token_id
        self._tok = Tokenizer.from_file(str(tokenizer_json))
        self._tok.enable_truncation(max_length=max_length)
        # Pad to the longest in the batch, to a multiple of 8 so ORT sees few distinct shapes.
        self._tok.enable_padding(direction="right", pad_id=pad_token_id, pad_token=pad_token, pad_to_multiple_of=8)

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        """int64 arrays by model input name; a backend feeds the ones its graph declares."""
        encodings = self._tok.encode_batch(texts)
        return {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
