"""The model's output labels: taxonomy ids and names, in logit order."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Label:
    id: str            # Content Taxonomy 3.1 unique id, or the custom label's own id
    name: str
    custom: bool       # not a Content Taxonomy 3.1 node (e.g. Misinformation)
    sensitive: bool    # one of the 11 GARM sensitive categories


class LabelSet:
    def __init__(self, labels: list[Label]):
        if len({l.id for l in labels}) != len(labels):
            raise ValueError("duplicate label ids")
        self.labels = list(labels)
        self.index = {l.id: i for i, l in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        return iter(self.labels)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"labels": [asdict(l) for l in self.labels]}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LabelSet":
        return cls([Label(**item) for item in json.loads(Path(path).read_text())["labels"]])
