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
                 min_score: float = DEFAULT_MIN_SCORE, notes_by_key_only: bool = True):
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
        # A note about a site is a fact about that site only. Offered as a neighbour to look-alike
        # hosts it misled the model (validation macro-F1 0.44 with such neighbours vs 0.53 without
        # context, 0.54 with keyed notes only), so keyed passages come by key, and neighbours are
        # drawn from the unkeyed ones (category definitions, advertisers' notes).
        self.notes_by_key_only = notes_by_key_only
        self._pool, self._pool_ids = self._neighbour_pool()

    @classmethod
    def load(cls, index_dir: str | Path, min_score: float = DEFAULT_MIN_SCORE,
             notes_by_key_only: bool = True) -> "Retriever":
        from usearch.index import Index

        root = Path(index_dir)
        bundle_files.verify(root)  # a tampered or half-copied index is refused like a bundle
        info = json.loads((root / INDEX_INFO).read_text())
        passages = [KnowledgePassage(r["id"], r["title"], r["text"], tuple(r.get("keys", ())))
                    for r in map(json.loads, (root / PASSAGES_FILE).read_text().splitlines())]
        vectors = Index.restore(str(root / VECTORS_FILE))
        if vectors is None or len(vectors) != len(passages):
            raise bundle_files.BundleError(f"{root}: {VECTORS_FILE} does not hold one vector per passage")
        return cls(root, passages, vectors, Embedder(root / EMBEDDER_DIR), info, min_score, notes_by_key_only)

    @property
    def version(self) -> str:
        return self.info["index_version"]

    def retrieve(self, page: PageContext, k: int = DEFAULT_TOP_K) -> tuple[Passage, ...]:
        return self.retrieve_many([page], k)[0]

    def retrieve_many(self, pages: list[PageContext], k: int = DEFAULT_TOP_K,
                      progress: str = "") -> list[tuple[Passage, ...]]:
        """Top `k` passages per page: those keyed to its host or registrable domain, then nearest
        neighbours of its rendered text (one embedding batch for all pages; `progress` describes
        a progress bar for long lists)."""
        if not pages:
            return []
        with self._lock:
            queries = self.embedder([render(PageContext(p.url, p.title, p.keywords, p.app_bundle)) for p in pages],
                                    progress=progress)
        pool, ids = self._pool, self._pool_ids
        if len(ids):
            matches = pool.search(queries, min(len(ids), 2 * k), exact=len(ids) <= 4096)
            keys, distances = np.atleast_2d(matches.keys), np.atleast_2d(matches.distances)
        else:
            keys = distances = np.empty((len(pages), 0))
        results = []
        for row, page in enumerate(pages):
            chosen: list[tuple[int, float]] = [(i, KEY_MATCH_SCORE) for i in self._keyed(page)][:k]
            taken = {i for i, _ in chosen}
            for key, distance in zip(keys[row], distances[row]):
                similarity = 1.0 - float(distance)
                if len(chosen) >= k or similarity < self.min_score:
                    break
                passage = int(ids[int(key)])
                if passage not in taken:
                    chosen.append((passage, similarity))
                    taken.add(passage)
            results.append(tuple(self._passage(i, score) for i, score in chosen))
        return results

    def _neighbour_pool(self):
        """(usearch index, position → passage) searched for neighbours: every passage, or, with
        notes_by_key_only, only passages not keyed to a site (a small in-memory index of those)."""
        if not self.notes_by_key_only:
            return self.vectors, np.arange(len(self.passages))
        from usearch.index import Index

        ids = np.asarray([i for i, p in enumerate(self.passages) if not p.keys], dtype=np.uint64)
        pool = Index(ndim=self.vectors.ndim, metric="cos", dtype="f32")
        if len(ids):
            pool.add(np.arange(len(ids), dtype=np.uint64), np.stack([self.vectors.get(int(i)) for i in ids]))
        return pool, ids

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
