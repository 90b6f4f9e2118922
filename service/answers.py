"""The cache-hit path in one lookup, on the request's bytes: answers remembered per (page object
and brand profile as sent), answered without parsing the request or serializing the response.

Most impressions repeat a page seen moments ago. Answering one through the full path (validate
the site object, build the page, derive its cache key, look the key up, apply the brand profile,
build the response body) cost ~47 us of event-loop CPU per hit inside the server, although the
same code takes ~10 us in a tight loop: between two requests gRPC's own work evicts it from the
CPU caches, so every function call and object it touches is paid again (loadtest/TUNING.md §12).

So a hit touches as little as it can. The request's top-level fields are walked in its wire bytes
(`split_request`): the ids (fields 1 and 2) are what vary per impression, `tmax` (6) never changes
a remembered answer, and every other byte (site, app, policy_id, and any field this version does
not know) is the key, byte for byte. A ClassifyResponse carries `id` and `imp_id` as fields 1 and
2 too, with the same types, so the request's own id bytes are the answer's first bytes; the rest
is the remembered body (serialized without ids) and a fixed `score_source: "local"`. Protobuf
parsers merge concatenated fields, so the bytes are the message the full path would build.

An entry is trusted only while the verdict cache's local tier still returns the very scores
object it was built from, so an expired, evicted or recomputed verdict goes down the full path.
Entries belong to one Serving (one bundle, one set of profiles, one index) and die with it.
Entries hold bytes only: nothing the cyclic garbage collector tracks (loadtest/TUNING.md §12).

The lookup itself (`hit_path`) is one call into C (`_hitpath.c`) where the extension was built,
since even a short Python function is paid cold on every hit (TUNING.md §20); `PyHitPath` is the
same contract in Python, the reference the tests hold the C one to, and the fallback.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from brandsafe.v1 import brandsafe_pb2 as pb

from .cache import BoundedLRU, LocalTier
from .requests import RequestError, check_impression_ids

try:
    from ._hitpath import HitPath
except ImportError:  # built without a C compiler: the Python reference serves
    HitPath = None
HIT_PATH_LANGUAGE = "C" if HitPath is not None else "Python (service/_hitpath.c was not compiled)"

# Bounded in entries and, by remembering only page objects of ordinary size, in memory
# (each entry: ≤ 2 KB of key bytes and a serialized body of a few hundred bytes).
MAX_ENTRIES = 8192
MAX_PAGE_BYTES = 2048

_ID_TAG, _IMP_ID_TAG, _TMAX_TAG = 0x0A, 0x12, 0x30  # (field number << 3) | wire type
_LEN, _VARINT = 2, 0
LOCAL_SOURCE = pb.ClassifyResponse(score_source="local").SerializeToString()


class SplitRequest(NamedTuple):
    """A ClassifyRequest's wire bytes taken apart: its id fields as sent (also valid as the
    response's), their values (bytes, not yet decoded), and the key its answer is remembered under
    (None for a page object too large to remember)."""

    id_fields: bytes
    request_id: bytes
    imp_id: bytes
    key: bytes | None


def split_request(raw: bytes, max_key_bytes: int = MAX_PAGE_BYTES) -> SplitRequest | None:
    """The request's bytes taken apart, or None when they are not a plain, complete encoding of
    top-level fields (the full path then parses them and reports what is wrong). Never raises."""
    id_fields, request_id, imp_id, key = b"", b"", b"", []
    pos, end = 0, len(raw)
    try:
        while pos < end:
            start, tag = pos, raw[pos]
            if tag >= 0x80:  # a field number above 15: not one of ours
                return None
            pos += 1
            wire_type = tag & 7
            if wire_type == _LEN:
                length = raw[pos]
                if length < 0x80:
                    pos += 1
                else:
                    length, pos = _varint(raw, pos)
                value_end = pos + length
                if value_end > end:
                    return None
                if tag == _ID_TAG:
                    request_id, id_fields = raw[pos:value_end], id_fields + raw[start:value_end]
                elif tag == _IMP_ID_TAG:
                    imp_id, id_fields = raw[pos:value_end], id_fields + raw[start:value_end]
                else:
                    key.append(raw[start:value_end])
                pos = value_end
            elif wire_type == _VARINT:
                _, pos = _varint(raw, pos)
                if tag != _TMAX_TAG:
                    key.append(raw[start:pos])
            else:
                return None
    except IndexError:  # truncated
        return None
    if pos != end:
        return None
    joined = b"".join(key)
    return SplitRequest(id_fields, request_id, imp_id, joined if len(joined) <= max_key_bytes else None)


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise IndexError("varint longer than 10 bytes")


class RememberedAnswers(BoundedLRU):
    """Entries: (cache key, the scores it held, the answer's tail: the body built from them,
    serialized without the request's ids, then the score source)."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        super().__init__(max_entries)

    def remember(self, key: bytes, cache_key: str, scores: np.ndarray, body: bytes) -> None:
        self.put(key, (cache_key, scores, body + LOCAL_SOURCE))


class PyHitPath:
    """The hit path: called with a request's bytes and the time now, it returns the serialized
    answer the full path would give, if this page and profile were answered before, the ids are
    ones the full path accepts, and the local tier (`local`: cache key -> (expires, scores)) still
    holds the very scores that answer was built from, unexpired; both entries are then made the
    most recent. Otherwise None, and the full path decides. Never raises on any bytes."""

    def __init__(self, answers: dict, local: dict, max_key_bytes: int):
        self.answers, self.local, self.max_key_bytes = answers, local, max_key_bytes

    def __call__(self, raw: bytes, now: float) -> bytes | None:
        split = split_request(raw, self.max_key_bytes)
        if split is None or split.key is None:
            return None
        entry = self.answers.get(split.key)
        if entry is None:
            return None
        try:
            check_impression_ids(split.request_id.decode(), split.imp_id.decode())
        except (RequestError, UnicodeDecodeError):
            return None  # the full path reports it
        cache_key, scores, tail = entry
        held = self.local.get(cache_key)
        if held is None or held[1] is not scores or held[0] < now:
            return None
        self.answers.move_to_end(split.key)
        self.local.move_to_end(cache_key)
        return split.id_fields + tail


def hit_path(answers: RememberedAnswers, local: LocalTier) -> Callable[[bytes, float], bytes | None]:
    """The hit path over these remembered answers and this local tier: in C where it was built."""
    # Both are this package's BoundedLRUs; the hit path reads and reorders their mappings directly.
    return (HitPath or PyHitPath)(answers._entries, local._entries, MAX_PAGE_BYTES)
