"""Labelled rows → rendered texts and multi-hot targets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brandsafe.labels import LabelSet
from brandsafe.rendering import PageContext, render
from brandsafe.taxonomy import Taxonomy

from .data import LabelledRow
from .labelmap import label_ids


@dataclass
class Examples:
    texts: list[str]
    targets: np.ndarray  # (rows, labels) float32 multi-hot; all zeros = brand-safe
    origins: list[str]

    def subset(self, index: list[int]) -> "Examples":
        return Examples([self.texts[i] for i in index], self.targets[index], [self.origins[i] for i in index])


def page_of(row: LabelledRow) -> PageContext:
    return PageContext(url=row.url, title=row.title)


def to_examples(rows: list[LabelledRow], labels: LabelSet, taxonomy: Taxonomy) -> Examples:
    targets = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        for label_id in label_ids(row, taxonomy):
            targets[i, labels.index[label_id]] = 1.0
    return Examples([render(page_of(r)) for r in rows], targets, [r.origin for r in rows])
