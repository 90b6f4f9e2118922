"""The cache-hit path in one lookup: answers remembered per (page object as sent, brand profile).

Most impressions repeat a page seen moments ago. Answering one through the full path (validate
the site object, build the page, derive its cache key, look the key up, apply the brand profile,
build the response body) cost ~47 us of event-loop CPU per hit inside the server, although the
same code takes ~10 us in a tight loop: between two requests gRPC's own work evicts it from the
CPU caches, so every function call and object it touches is paid again (loadtest/TUNING.md §12).
A remembered answer costs one lookup here, one in the verdict cache and a parse of the body.

An entry is trusted only while the verdict cache's local tier still returns the very scores
object it was built from, so an expired, evicted or recomputed verdict goes down the full path.
Entries belong to one Serving (one bundle, one set of profiles, one index) and die with it.
Bodies are kept serialized: an entry then holds no object the cyclic garbage collector tracks, so
a full collection does not walk thousands of remembered messages (loadtest/TUNING.md §12).
"""
from __future__ import annotations

import numpy as np

from brandsafe.v1 import brandsafe_pb2 as pb

from .cache import BoundedLRU

# Bounded in entries and, by remembering only page objects of ordinary size, in memory
# (each entry: ≤ 2 KB of page bytes and a serialized body of a few hundred bytes).
MAX_ENTRIES = 8192
MAX_PAGE_BYTES = 2048


def request_key(request: pb.ClassifyRequest) -> tuple | None:
    """What the scores and the body of a request's answer depend on: its site (or app) object, byte
    for byte, and its brand profile. None for a page object too large to remember."""
    site = request.site.SerializeToString() if request.HasField("site") else None
    app = request.app.SerializeToString() if request.HasField("app") else None
    if len(site or app or b"") > MAX_PAGE_BYTES:
        return None
    return site, app, request.policy_id


class RememberedAnswers(BoundedLRU):
    """Entries: (cache key, the scores it held, the serialized body built from them)."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        super().__init__(max_entries)

    def remember(self, key: tuple, cache_key: str, scores: np.ndarray, body: bytes) -> None:
        self.put(key, (cache_key, scores, body))
