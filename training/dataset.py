"""Labelled rows → pages (rendered on demand) and multi-hot targets."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from brandsafe.labels import LabelSet
from brandsafe.rendering import PageContext, render
from brandsafe.taxonomy import Taxonomy

from .data import LabelledRow
from .labelmap import label_ids


@dataclass
class Examples:
    pages: list[PageContext]
    targets: np.ndarray  # (rows, labels) float32 multi-hot; all zeros = brand-safe
    origins: list[str]

    def subset(self, index: list[int]) -> "Examples":
        return Examples([self.pages[i] for i in index], self.targets[index], [self.origins[i] for i in index])

    def __add__(self, other: "Examples") -> "Examples":
        return Examples(self.pages + other.pages, np.concatenate([self.targets, other.targets]),
                        self.origins + other.origins)

    def texts(self, transform: Callable[[PageContext], PageContext] | None = None) -> list[str]:
        return [render(transform(p) if transform else p) for p in self.pages]

    def __len__(self) -> int:
        return len(self.pages)


def page_of(row: LabelledRow) -> PageContext:
    return PageContext(url=row.url, title=row.title)


def to_examples(rows: list[LabelledRow], labels: LabelSet, taxonomy: Taxonomy) -> Examples:
    targets = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        for label_id in label_ids(row, taxonomy):
            targets[i, labels.index[label_id]] = 1.0
    return Examples([page_of(r) for r in rows], targets, [r.origin for r in rows])
