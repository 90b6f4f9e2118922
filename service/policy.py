"""Brand profiles: per-category thresholds over calibrated scores → allow / block."""
from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brandsafe.labels import LabelSet

DEFAULT_POLICY_FILE = Path(str(importlib.resources.files("brandsafe") / "policies.toml"))
DEFAULT_POLICY_ID = "default"


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Reason:
    label_index: int
    score: float
    threshold: float


FALLBACKS = ("allow", "block")


@dataclass(frozen=True)
class Policy:
    id: str
    thresholds: np.ndarray  # per label; +inf where the profile does not block that label
    fallback: str = "allow"  # when the model cannot answer in time: fail-open "allow" or fail-closed "block"

    def decide(self, scores: np.ndarray) -> list[Reason]:
        """Reasons to block, highest score first; empty means allow."""
        hits = np.flatnonzero(scores >= self.thresholds)
        return sorted((Reason(int(j), float(scores[j]), float(self.thresholds[j])) for j in hits),
                      key=lambda r: -r.score)


def load_policies(path: str | Path, labels: LabelSet, bundle_thresholds: dict[str, float]) -> dict[str, Policy]:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read brand profiles: {exc}") from None
    profiles = raw.get("profiles")
    if not isinstance(profiles, dict) or DEFAULT_POLICY_ID not in profiles:
        raise PolicyError(f"{path}: needs a [profiles.{DEFAULT_POLICY_ID}] table")
    return {pid: _compile(path, pid, spec, labels, bundle_thresholds) for pid, spec in profiles.items()}


def _compile(path: Path, pid: str, spec: dict, labels: LabelSet, bundle_thresholds: dict[str, float]) -> Policy:
    where = f"{path}: profile {pid!r}"
    by_key = {l.id.casefold(): i for i, l in enumerate(labels)} | {l.name.casefold(): i for i, l in enumerate(labels)}

    def index_of(key: str) -> int:
        if key.casefold() not in by_key:
            raise PolicyError(f"{where}: category {key!r} is not a label of the loaded bundle")
        return by_key[key.casefold()]

    blocked: set[int] = set()
    for entry in spec.get("block", []):
        if entry == "@sensitive":
            blocked |= {i for i, l in enumerate(labels) if l.sensitive}
        elif entry == "@custom":
            blocked |= {i for i, l in enumerate(labels) if l.custom}
        else:
            blocked.add(index_of(entry))
    threshold = spec.get("threshold", "bundle")
    thresholds = np.full(len(labels), np.inf, dtype=np.float32)
    for i in blocked:
        if threshold == "bundle":
            thresholds[i] = bundle_thresholds.get(labels.labels[i].id, 0.5)
        elif isinstance(threshold, (int, float)) and 0 < threshold <= 1:
            thresholds[i] = threshold
        else:
            raise PolicyError(f"{where}: threshold must be \"bundle\" or a number in (0, 1], got {threshold!r}")
    for key, value in spec.get("overrides", {}).items():
        if not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise PolicyError(f"{where}: override for {key!r} must be a number in (0, 1]")
        thresholds[index_of(key)] = value
    fallback = spec.get("fallback", "allow")
    if fallback not in FALLBACKS:
        raise PolicyError(f"{where}: fallback must be \"allow\" (fail-open) or \"block\" (fail-closed), got {fallback!r}")
    return Policy(pid, thresholds, fallback)
