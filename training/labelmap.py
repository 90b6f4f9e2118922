"""Resolve the labels written in data files against the IAB taxonomy into one LabelSet."""
from __future__ import annotations

import logging

from brandsafe.labels import Label, LabelSet
from brandsafe.taxonomy import SENSITIVE_TOPICS_ID, Taxonomy

from .data import LabelledRow

log = logging.getLogger(__name__)


def build_label_set(rows: list[LabelledRow], taxonomy: Taxonomy, include_all_sensitive: bool = True) -> LabelSet:
    """Labels seen in the rows, plus (by default) all 11 sensitive categories so every profile
    can threshold them even where the data is thin. Unknown labels are kept with their own id."""
    labels: dict[str, Label] = {}
    if include_all_sensitive:
        for node in taxonomy.sensitive_categories():
            labels[node.id] = Label(node.id, node.name, custom=False, sensitive=True)
    warned: set[str] = set()
    for row in rows:
        for raw in row.labels:
            label = resolve_label(raw, taxonomy)
            if label.custom and raw not in warned:
                warned.add(raw)
                log.warning("%s: label %r is not in the IAB Content Taxonomy 3.1; kept as custom label id %r",
                            row.origin, raw, label.id)
            labels.setdefault(label.id, label)
    return LabelSet(sorted(labels.values(), key=lambda l: (l.custom, not l.sensitive, l.name)))


def resolve_label(raw: str, taxonomy: Taxonomy) -> Label:
    node = taxonomy.resolve(raw)
    if node is None:
        return Label(raw, raw, custom=True, sensitive=False)
    return Label(node.id, node.name, custom=False, sensitive=node.parent_id == SENSITIVE_TOPICS_ID)


def label_ids(row: LabelledRow, taxonomy: Taxonomy) -> list[str]:
    return [resolve_label(raw, taxonomy).id for raw in row.labels]
