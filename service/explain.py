"""Occlusion: which words of the model's input text drove each category's score.

The text is what `rendering.render()` made of the request. Each word is removed in turn and every
variant goes through the bundle's own tokenizer and model (`LoadedBundle.score`), in batches, so
an explanation reads exactly the path a verdict does. The layout's own markers (`|`, `path:`,
`title:`, `keywords:`, the `<context>` tags) are kept: removing one says nothing about the page.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from brandsafe.v1 import brandsafe_pb2 as pb

LAYOUT_WORDS = frozenset({"|", "path:", "title:", "keywords:", "<context>", "</context>"})
MAX_OCCLUDED_WORDS = 128  # a page renders to a few dozen words; longer texts explain their head
TOP_CATEGORIES = 3
WORDS_PER_CATEGORY = 12


def variants(text: str) -> tuple[list[int], list[str]]:
    """(positions of the words removed, the text without each), positions in `text.split()`."""
    words = text.split()
    positions = [i for i, w in enumerate(words) if w not in LAYOUT_WORDS][:MAX_OCCLUDED_WORDS]
    return positions, [" ".join(words[:i] + words[i + 1:]) for i in positions]


def explain(score: Callable[[list[str]], np.ndarray], text: str, labels, report_floor: float,
            chunk: int) -> tuple[np.ndarray, list[pb.CategoryExplanation]]:
    """The text's scores, and for its top categories (at least `report_floor`, at most
    TOP_CATEGORIES) the words whose removal changes the score most. `score` maps texts to
    calibrated scores (LoadedBundle.score); it runs on chunks of at most `chunk` texts."""
    positions, texts = variants(text)
    texts = [text] + texts
    scored = np.concatenate([score(texts[i:i + chunk]) for i in range(0, len(texts), max(1, chunk))])
    scores, without = scored[0], scored[1:]
    words = text.split()
    explanations = []
    for j in np.argsort(-scores)[:TOP_CATEGORIES]:
        if scores[j] < report_floor:
            break
        drops = scores[j] - without[:, j]
        order = np.argsort(-np.abs(drops))[:WORDS_PER_CATEGORY]
        explanations.append(pb.CategoryExplanation(
            category_id=labels[j].id, category_name=labels[j].name, score=float(scores[j]),
            words=[pb.WordInfluence(word=words[positions[k]], position=positions[k], drop=float(drops[k]))
                   for k in order]))
    return scores, explanations
