"""Build a versioned vector index from a knowledge-base file.

An index is one folder, verified like a bundle (sha256 manifest):
    passages.jsonl   the passages, in vector-key order
    vectors.usearch  usearch HNSW graph over their MiniLM embeddings (cosine)
    embedder/        the ONNX encoder that made the vectors (queries use the same one)
    index.json       version id, knowledge-base digest, sizes

usearch, not FAISS or hnswlib: one small wheel without BLAS or OpenMP (whose thread pools would
fight ONNX Runtime for two cores), HNSW with exact search for small sets, and save/load of the
whole graph in one file, which keeps a rebuild-and-swap cheap.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from brandsafe import bundle as bundle_files

from .embedder import Embedder, exported_embedder
from .knowledge import read_knowledge, write_knowledge

INDEX_INFO = "index.json"
PASSAGES_FILE = "passages.jsonl"
VECTORS_FILE = "vectors.usearch"
EMBEDDER_DIR = "embedder"


def passage_text(title: str, text: str) -> str:
    """What gets embedded for a passage."""
    return f"{title}: {text}" if title else text


def build_index(kb_path: Path, out_dir: Path, embedder_dir: Path | None = None) -> str:
    """Embed every passage of `kb_path` into a new index folder at `out_dir` (replaced whole,
    atomically, so a server watching it never sees half an index). Returns the index version."""
    from usearch.index import Index

    passages = read_knowledge(kb_path)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copytree(embedder_dir or exported_embedder(), staging / EMBEDDER_DIR)
    embedder = Embedder(staging / EMBEDDER_DIR, threads=0)
    vectors = embedder([passage_text(p.title, p.text) for p in passages], progress="embed passages")
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(len(passages), dtype=np.uint64), vectors)
    index.save(str(staging / VECTORS_FILE))
    write_knowledge(passages, staging / PASSAGES_FILE)
    digest = hashlib.sha256((staging / PASSAGES_FILE).read_bytes()).hexdigest()
    version = f"kb-{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}"
    info = {"index_version": version, "passages": len(passages), "dim": int(vectors.shape[1]),
            "knowledge_sha256": digest, "knowledge_source": str(kb_path), "metric": "cos"}
    (staging / INDEX_INFO).write_text(json.dumps(info, indent=2) + "\n")
    bundle_files.write_manifest(staging)
    if out_dir.exists():
        retired = out_dir.with_name(f".{out_dir.name}.retired")
        shutil.rmtree(retired, ignore_errors=True)
        out_dir.rename(retired)
        staging.rename(out_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out_dir)
    return version


def index_id(index_dir: Path) -> str:
    return json.loads((Path(index_dir) / INDEX_INFO).read_text())["index_version"]
