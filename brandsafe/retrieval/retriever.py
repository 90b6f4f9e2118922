"""The retrieval hook: passages for one page, by host key first, then by vector similarity."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from brandsafe import bundle as bundle_files
from brandsafe.domains import host_of, registrable_domain
from brandsafe.rendering import PageContext, Passage, render

from .embedder import Embedder
from .index import EMBEDDER_DIR, INDEX_INFO, PASSAGES_FILE, VECTORS_FILE
from .knowledge import KnowledgePassage, normalize_key

DEFAULT_TOP_K = 3
# Cosine similarity below which a neighbour is noise rather than a fact about the page.
DEFAULT_MIN_SCORE = 0.35
KEY_MATCH_SCORE = 1.0


class Retriever:
    def __init__(self, index_dir: Path, passages: list[KnowledgePassage], vectors, embedder: Embedder, info: dict,
                 min_score: float = DEFAULT_MIN_SCORE):
        self.dir = Path(index_dir)
        self.passages = passages
        self.vectors = vectors
        self.embedder = embedder
        self.info = info
        self.min_score = min_score
        self.by_key: dict[str, list[int]] = {}
        for i, passage in enumerate(passages):
            for key in passage.keys:
                self.by_key.setdefault(key, []).append(i)
        self._lock = threading.Lock()  # one ORT run at a time per retriever; callers may be threads

    @classmethod
    def load(cls, index_dir: str | Path, min_score: float = DEFAULT_MIN_SCORE) -> "Retriever":
        from usearch.index import Index

        root = Path(index_dir)
        bundle_files.verify(root)  # a tampered or half-copied index is refused like a bundle
        info = json.loads((root / INDEX_INFO).read_text())
        passages = [KnowledgePassage(r["id"], r["title"], r["text"], tuple(r.get("keys", ())))
                    for r in map(json.loads, (root / PASSAGES_FILE).read_text().splitlines())]
        vectors = Index.restore(str(root / VECTORS_FILE))
        if vectors is None or len(vectors) != len(passages):
            raise bundle_files.BundleError(f"{root}: {VECTORS_FILE} does not hold one vector per passage")
        return cls(root, passages, vectors, Embedder(root / EMBEDDER_DIR), info, min_score)

    @property
    def version(self) -> str:
        return self.info["index_version"]

    def retrieve(self, page: PageContext, k: int = DEFAULT_TOP_K) -> tuple[Passage, ...]:
        return self.retrieve_many([page], k)[0]

    def retrieve_many(self, pages: list[PageContext], k: int = DEFAULT_TOP_K) -> list[tuple[Passage, ...]]:
        """Top `k` passages per page: those keyed to its host or registrable domain, then nearest
        neighbours of its rendered text (one embedding batch for all pages)."""
        if not pages:
            return []
        with self._lock:
            queries = self.embedder([render(PageContext(p.url, p.title, p.keywords, p.app_bundle)) for p in pages])
        matches = self.vectors.search(queries, min(len(self.passages), 2 * k), exact=len(self.passages) <= 4096)
        keys = np.atleast_2d(matches.keys)
        distances = np.atleast_2d(matches.distances)
        results = []
        for row, page in enumerate(pages):
            chosen: list[tuple[int, float]] = [(i, KEY_MATCH_SCORE) for i in self._keyed(page)][:k]
            taken = {i for i, _ in chosen}
            for key, distance in zip(keys[row], distances[row]):
                similarity = 1.0 - float(distance)
                if len(chosen) >= k or similarity < self.min_score:
                    break
                if int(key) not in taken:
                    chosen.append((int(key), similarity))
                    taken.add(int(key))
            results.append(tuple(self._passage(i, score) for i, score in chosen))
        return results

    def _keyed(self, page: PageContext) -> list[int]:
        if not page.url.strip():
            return []
        host = normalize_key(host_of(page.url))
        found = list(self.by_key.get(host, ()))
        domain = normalize_key(registrable_domain(page.url))
        if domain != host:
            found += [i for i in self.by_key.get(domain, ()) if i not in found]
        return found

    def _passage(self, i: int, score: float) -> Passage:
        p = self.passages[i]
        return Passage(source_id=p.id, title=p.title, text=p.text, score=round(score, 2))
