"""A bundle is one folder that serves: model, tokenizer, labels, calibration, thresholds,
evaluation report, and a manifest holding the sha256 of every other file."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .rendering import KNOWN_CONTEXT_SCHEMAS, KNOWN_SCHEMA_VERSIONS

MANIFEST = "manifest.json"
BUNDLE_INFO = "bundle.json"


class BundleError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(bundle_dir: str | Path) -> dict:
    root = Path(bundle_dir)
    files = {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {"files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(bundle_dir: str | Path) -> None:
    """Raise BundleError unless every file listed matches its sha256 and none is missing or extra."""
    root = Path(bundle_dir)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root}: no {MANIFEST}; not a bundle, or an incomplete one")
    listed = json.loads(manifest_path.read_text())["files"]
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST}
    missing = sorted(set(listed) - present)
    extra = sorted(present - set(listed))
    if missing:
        raise BundleError(f"{root}: files in the manifest are missing: {', '.join(missing)}")
    if extra:
        raise BundleError(f"{root}: files not in the manifest: {', '.join(extra)}")
    for name, expected in listed.items():
        if sha256_file(root / name) != expected:
            raise BundleError(f"{root}: {name} does not match its sha256 in the manifest (tampered or corrupt)")


@dataclass(frozen=True)
class BundleInfo:
    bundle_id: str
    schema_version: str
    recipe: str
    max_length: int
    pad_token_id: int
    pad_token: str
    precision: str
    model_file: str
    context_schema: str = ""  # "" = trained without a <context> block: serve it without passages

    @classmethod
    def load(cls, bundle_dir: str | Path) -> "BundleInfo":
        raw = json.loads((Path(bundle_dir) / BUNDLE_INFO).read_text())
        info = cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw or k != "context_schema"})
        if info.schema_version not in KNOWN_SCHEMA_VERSIONS:
            raise BundleError(
                f"{bundle_dir}: text schema {info.schema_version!r} is unknown to this service "
                f"(knows {sorted(KNOWN_SCHEMA_VERSIONS)})"
            )
        if info.context_schema and info.context_schema not in KNOWN_CONTEXT_SCHEMAS:
            raise BundleError(
                f"{bundle_dir}: context schema {info.context_schema!r} is unknown to this service "
                f"(knows {sorted(KNOWN_CONTEXT_SCHEMAS)})"
            )
        return info
