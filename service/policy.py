"""Brand profiles: per-category thresholds over calibrated scores → allow / block, and the
advertiser's own allow / block lists of registrable domains, which win over the model."""
from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brandsafe.domains import registrable_domain
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
ALLOW_LIST, BLOCK_LIST = "allow_domains", "block_domains"


@dataclass(frozen=True)
class Policy:
    id: str
    thresholds: np.ndarray  # per label; +inf where the profile does not block that label
    fallback: str = "allow"  # when the model cannot answer in time: fail-open "allow" or fail-closed "block"
    allow_domains: frozenset[str] = frozenset()  # registrable domains always allowed
    block_domains: frozenset[str] = frozenset()  # registrable domains always blocked

    def decide(self, scores: np.ndarray) -> list[Reason]:
        """Reasons to block, highest score first; empty means allow."""
        hits = np.flatnonzero(scores >= self.thresholds)
        return sorted((Reason(int(j), float(scores[j]), float(self.thresholds[j])) for j in hits),
                      key=lambda r: -r.score)

    def listed(self, url: str) -> tuple[str, str] | None:
        """(ALLOW_LIST or BLOCK_LIST, the registrable domain) when the page's site is on one of the
        profile's lists, else None. A site on no list is left to the model."""
        if not (self.allow_domains or self.block_domains) or not url.strip():
            return None
        domain = registrable_domain(url)
        if domain in self.block_domains:
            return BLOCK_LIST, domain
        if domain in self.allow_domains:
            return ALLOW_LIST, domain
        return None


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
    allow, block = _domains(path, where, spec, ALLOW_LIST), _domains(path, where, spec, BLOCK_LIST)
    both = sorted(allow & block)
    if both:
        raise PolicyError(f"{where}: on both allow_domains and block_domains: {', '.join(both[:5])}")
    return Policy(pid, thresholds, fallback, frozenset(allow), frozenset(block))


def _domains(path: Path, where: str, spec: dict, key: str) -> set[str]:
    """`key` (a list of registrable domains) plus `key_file` (a text file of them, one a line, `#`
    comments, resolved beside the TOML): long advertiser lists live in their own files."""
    entries: list[tuple[str, str]] = []
    inline = spec.get(key, [])
    if not isinstance(inline, list) or not all(isinstance(d, str) for d in inline):
        raise PolicyError(f"{where}: {key} must be a list of domain names")
    entries += [(f"{where}: {key}", d) for d in inline]
    listed_file = spec.get(f"{key}_file")
    if listed_file is not None:
        file = path.parent / str(listed_file)
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            raise PolicyError(f"{where}: {key}_file: cannot read {file}: {exc}") from None
        entries += [(f"{file}:{n}", line.split("#", 1)[0].strip()) for n, line in enumerate(lines, start=1)]
    domains = set()
    for origin, raw in entries:
        name = raw.strip().lower().rstrip(".")
        if not name:
            continue
        if "/" in name or " " in name or "." not in name:
            raise PolicyError(f"{origin}: {raw!r} is not a domain name (give registrable domains like example.co.uk)")
        registrable = registrable_domain(name)
        if registrable != name:
            raise PolicyError(f"{origin}: {raw!r} is not a registrable domain; lists match whole sites, "
                              f"so write {registrable!r}")
        domains.add(name)
    return domains
