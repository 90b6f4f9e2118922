"""The untrained encoder's judgement, as the bar a fine-tuned model must clear on titles.

The packaged all-MiniLM-L6-v2 embeds a page and short descriptions of each category (its name, a
one-line definition and the example page titles of `taxonomy_examples`); a category's score is how
much closer the page is to that category's nearest description than to the nearest safe page
(ordinary taxonomy nodes and the hard negatives). No training: if fine-tuning does not rank risk
better than this on titles it has never seen, it has learnt the data set, not the words.
"""
from __future__ import annotations

import numpy as np

from brandsafe.labels import LabelSet
from brandsafe.retrieval.embedder import Embedder, exported_embedder
from brandsafe.taxonomy import Taxonomy

from .taxonomy_examples import CATEGORY_DEFINITIONS, HARD_NEGATIVES, RISK_PAGES, safe_node_names

# Cosine differences are small (a few hundredths); this spreads them over (0, 1) for thresholds.
_SHARPNESS = 20.0


class PrototypeScorer:
    def __init__(self, labels: LabelSet, taxonomy: Taxonomy, embedder: Embedder | None = None):
        self.embed = embedder or Embedder(exported_embedder())
        self.label_prototypes = []
        for label in labels:
            texts = [label.name, *CATEGORY_DEFINITIONS.get(label.name, ()), *RISK_PAGES.get(label.name, ())]
            self.label_prototypes.append(self.embed(texts))
        self.safe_prototypes = self.embed(list(HARD_NEGATIVES) + safe_node_names(taxonomy))

    def __call__(self, texts: list[str]) -> np.ndarray:
        """(rows, labels) scores in (0, 1); only their order is meaningful, and thresholds are
        chosen on validation like any other scorer's."""
        vectors = self.embed(texts)
        safe = (vectors @ self.safe_prototypes.T).max(axis=1)
        margins = np.stack([(vectors @ p.T).max(axis=1) - safe for p in self.label_prototypes], axis=1)
        return (1.0 / (1.0 + np.exp(-_SHARPNESS * margins))).astype(np.float32)
