"""IAB Tech Lab Content Taxonomy 3.1, read from the TSV exactly as IAB publishes it.

The file has two header rows (a group row, then column names), CRLF line ends, and one node per
row: unique id, parent id, name, then the tier 1-4 path.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CATTAX_CONTENT_3_1 = 9  # AdCOM "cattax" value for Content Taxonomy 3.1
SENSITIVE_TOPICS_ID = "v9i3On"  # parent of the 11 GARM sensitive categories


class TaxonomyError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    id: str
    parent_id: str
    name: str
    path: tuple[str, ...]  # tier names from the root down to this node


class Taxonomy:
    def __init__(self, nodes: list[Node]):
        self.nodes = {n.id: n for n in nodes}
        self._by_name: dict[str, list[Node]] = {}
        for node in nodes:
            self._by_name.setdefault(_fold(node.name), []).append(node)

    @classmethod
    def load(cls, path: str | Path) -> "Taxonomy":
        path = Path(path)
        nodes = []
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = csv.reader(fh, delimiter="\t")
            for line_no, row in enumerate(rows, start=1):
                if line_no <= 2 or not any(cell.strip() for cell in row):
                    continue
                if len(row) < 3 or not row[0].strip() or not row[2].strip():
                    raise TaxonomyError(f"{path}:{line_no}: expected 'Unique ID<TAB>Parent<TAB>Name…', got {row!r}")
                tiers = tuple(c.strip() for c in row[3:7] if c.strip())
                nodes.append(Node(row[0].strip(), row[1].strip(), row[2].strip(), tiers or (row[2].strip(),)))
        if not nodes:
            raise TaxonomyError(f"{path}: no taxonomy rows found")
        return cls(nodes)

    def by_id(self, node_id: str) -> Node | None:
        return self.nodes.get(node_id.strip())

    def by_name(self, name: str) -> Node | None:
        """A node by its name (case- and space-insensitive). Ambiguous names pick the shallowest node."""
        matches = self._by_name.get(_fold(name))
        if not matches:
            return None
        return min(matches, key=lambda n: len(n.path))

    def resolve(self, label: str) -> Node | None:
        return self.by_id(label) or self.by_name(label)

    def children(self, node_id: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent_id == node_id]

    def sensitive_categories(self) -> list[Node]:
        return self.children(SENSITIVE_TOPICS_ID)


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())
