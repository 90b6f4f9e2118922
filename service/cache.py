"""Verdict cache: a page's calibrated scores, computed once, shared by every advertiser and replica.

Key: bundle id + normalized page URL + a hash of the other fields that reach the model, so a new
bundle never serves old scores and brand profiles (applied after the cache) never need a flush.
Tiers: an in-process LRU with TTL, then (optionally) Redis shared by replicas. Concurrent misses
on one key run one inference (single-flight). Redis that is slow or down never fails a request:
a circuit breaker stops asking it for a while and the local tier and the model carry on.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import numpy as np
import orjson

from brandsafe.rendering import PageContext
from brandsafe.urlnorm import normalize_url

log = logging.getLogger(__name__)
MAX_KEY_URL_CHARS = 512
MAX_VALUE_BYTES = 4096
_VALUE_VERSION = b"bs2"


def cache_key(bundle_id: str, page: PageContext, normalized: bool = False) -> str:
    """normalized: page.url is normalize_url's output already (requests.parse normalises a request's
    URL once, through a bounded memo), so the key costs two short hashes, whatever the page."""
    url = page.url if normalized or not page.url else normalize_url(page.url)
    if len(url) > MAX_KEY_URL_CHARS:  # keep keys bounded; the tail is still distinguished by its hash
        url = url[:MAX_KEY_URL_CHARS] + "#" + _digest(url)
    others = "\x1f".join([page.title, "\x1e".join(page.keywords), page.app_bundle])
    return f"bs1|{bundle_id}|{url}|{_digest(others)}"


def _model_of(key: str) -> str:
    """The model id a cache key was made for (bundle id, and index version when passages count)."""
    return key.split("|", 2)[1] if key.count("|") >= 2 else ""


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _digest(text: str) -> str:
    # surrogatepass: a str built in Python may hold lone surrogates (protobuf never decodes one).
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


class BoundedLRU:
    """At most `max_entries`, least recently used out first; one event loop uses it, so no locking."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: collections.OrderedDict = collections.OrderedDict()

    def get(self, key):
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key, value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class LocalTier(BoundedLRU):
    """The verdict cache's in-process tier: a BoundedLRU whose entries also expire after a TTL."""

    def __init__(self, max_entries: int, ttl_seconds: float):
        super().__init__(max_entries)
        self.ttl = ttl_seconds

    def get(self, key: str) -> np.ndarray | None:
        # Not BoundedLRU.get: an expired entry is dropped, not made most recent.
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, scores = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return scores

    def put(self, key: str, scores: np.ndarray) -> None:
        super().put(key, (time.monotonic() + self.ttl, scores))


class CircuitBreaker:
    """Closed → open after `failures` in a row; after `cooldown` one probe is let through."""

    def __init__(self, failures: int = 5, cooldown_seconds: float = 2.0):
        self.threshold, self.cooldown = failures, cooldown_seconds
        self.consecutive = 0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.cooldown:
            self.opened_at = time.monotonic()  # half-open: one probe per cooldown
            return True
        return False

    def success(self) -> None:
        self.consecutive, self.opened_at = 0, None

    def failure(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.threshold:
            if self.opened_at is None:
                log.warning("redis cache tier unhealthy (%d failures in a row): bypassing it for %.1fs",
                            self.consecutive, self.cooldown)
            self.opened_at = time.monotonic()

    @property
    def open(self) -> bool:
        return self.opened_at is not None


def encode_value(key: str, scores: np.ndarray, secret: bytes = b"") -> bytes:
    """The value the Redis tier stores for `key` and accepts back (see RedisTier); also what
    `brandsafe score --warm-redis` writes."""
    payload = orjson.dumps({"key": _key_digest(key), "model": _model_of(key),
                            "scores": [round(float(s), 5) for s in scores]})
    return b"|".join([_VALUE_VERSION, _mac(secret, key, payload) if secret else b"-", payload])


def _mac(secret: bytes, key: str, payload: bytes) -> bytes:
    return hmac.new(secret, key.encode("utf-8", "surrogatepass") + b"\x1f" + payload, hashlib.sha256).hexdigest().encode()


class RedisTier:
    """The shared tier. Whatever Redis returns is untrusted input: anyone who can write the key
    space (another tenant, a stale deployment, an attacker) must not be able to choose a verdict.
    So a value is `bs2|<mac>|<payload>`, the payload naming the digest of the key and the model id
    it was computed for beside the scores, and the MAC an HMAC-SHA256 of key and payload under
    `secret` when one is configured ("-" otherwise). A value is used only if it parses, is bound to
    this key and model, carries `width` finite scores in [0, 1] and, with a secret, its MAC
    verifies; anything else is a miss, counted by reason (brandsafe_cache_redis_rejected_total),
    and never reaches the local tier. Values are read with a size bound (GETRANGE), never whole."""

    def __init__(self, url: str, ttl_seconds: float, timeout_seconds: float = 0.005,
                 breaker: CircuitBreaker | None = None, metrics=None, secret: bytes = b""):
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                           retry_on_timeout=False)
        self.ttl_ms = int(ttl_seconds * 1000)
        self.timeout = timeout_seconds
        self.breaker = breaker or CircuitBreaker()
        self.metrics = metrics
        self.secret = secret
        self.rejected: collections.Counter[str] = collections.Counter()
        self._writes: set[asyncio.Task] = set()

    async def get(self, key: str, width: int | None = None) -> np.ndarray | None:
        """The scores stored under `key`, if they pass every check above; `width`: the label count
        of the bundle asking (None: any)."""
        from redis.exceptions import ResponseError

        if not self.breaker.allow():
            return None
        try:
            raw = await asyncio.wait_for(self.client.getrange(key, 0, MAX_VALUE_BYTES), self.timeout)
        except ResponseError:  # e.g. WRONGTYPE: a key someone else wrote; Redis itself is fine
            self._ok()
            self._reject("type")
            return None
        except Exception as exc:  # noqa: BLE001 - any Redis trouble means "no answer from Redis"
            self._failed(exc)
            return None
        self._ok()
        if not raw:  # GETRANGE answers "" for a missing key
            return None
        scores, reason = self._decode(key, raw, width)
        if reason:
            self._reject(reason)
        return scores

    def _decode(self, key: str, raw: bytes, width: int | None) -> tuple[np.ndarray | None, str]:
        if len(raw) > MAX_VALUE_BYTES:
            return None, "size"
        version, _, rest = raw.partition(b"|")
        mac, _, payload = rest.partition(b"|")
        if version != _VALUE_VERSION or not payload:
            return None, "format"
        if self.secret and not hmac.compare_digest(mac, _mac(self.secret, key, payload)):
            return None, "mac"
        try:
            value = orjson.loads(payload)
            bound = value["key"] == _key_digest(key) and value["model"] == _model_of(key)
            scores = np.asarray(value["scores"], dtype=np.float32)
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, OverflowError):
            return None, "format"
        if not bound:
            return None, "key"
        if scores.ndim != 1 or not len(scores) or (width is not None and len(scores) != width):
            return None, "shape"
        if not (np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()):
            return None, "range"
        return scores, ""

    def encode(self, key: str, scores: np.ndarray) -> bytes:
        """The value stored for `key`: what `get` accepts."""
        return encode_value(key, scores, self.secret)

    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1
        if self.metrics:
            self.metrics.cache_redis_rejected.labels(reason=reason).inc()

    def put(self, key: str, scores: np.ndarray) -> None:
        """Fire and forget: the caller already has its answer."""
        if self.breaker.open and not self.breaker.allow():
            return
        task = asyncio.get_running_loop().create_task(self._put(key, self.encode(key, scores)))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, key: str, value: bytes) -> None:
        try:
            await asyncio.wait_for(self.client.set(key, value, px=self.ttl_ms), self.timeout * 4)
            self._ok()
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def _ok(self) -> None:
        self.breaker.success()
        if self.metrics:
            self.metrics.cache_redis_up.set(1)

    def _failed(self, exc: Exception) -> None:
        self.breaker.failure()
        if self.metrics:
            self.metrics.cache_redis_errors.labels(kind=type(exc).__name__).inc()
            self.metrics.cache_redis_up.set(0 if self.breaker.open else 1)

    async def close(self) -> None:
        for task in list(self._writes):
            task.cancel()
        await self.client.aclose()


@dataclass
class CacheStats:
    local_hits: int = 0
    redis_hits: int = 0
    misses: int = 0
    coalesced: int = 0


class VerdictCache:
    def __init__(self, local: LocalTier, redis: RedisTier | None = None, metrics=None):
        self.local, self.redis, self.metrics = local, redis, metrics
        self.stats = CacheStats()
        self._in_flight: dict[str, asyncio.Future] = {}
        self._lookup_counters: dict[str, object] = {}  # result -> its labelled Prometheus child, bound once

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[np.ndarray]],
                             width: int | None = None) -> tuple[np.ndarray, str]:
        """(scores, where they came from: "local", "redis", "model" or "coalesced"). `width`: how
        many scores the model gives (a shared-tier value of another length is refused)."""
        scores = self.local.get(key)
        if scores is not None:
            self.count("local")
            return scores, "local"
        pending = self._in_flight.get(key)
        if pending is not None:
            self.count("coalesced")
            return await asyncio.shield(pending), "coalesced"
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            source = "redis"
            scores = await self.redis.get(key, width) if self.redis else None
            if scores is None:
                source = "model"
                scores = await compute()
                if self.redis:
                    self.redis.put(key, scores)
            self.local.put(key, scores)
            self.count(source)
            future.set_result(scores)
            return scores, source
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here, so an unawaited failure is not logged as lost
            raise
        finally:
            self._in_flight.pop(key, None)

    def count(self, source: str) -> None:
        """One lookup answered from `source` ("local", "redis", "model" or "coalesced")."""
        stats = self.stats
        if source == "local":
            stats.local_hits += 1
        elif source == "redis":
            stats.redis_hits += 1
        elif source == "model":
            stats.misses += 1
        elif source == "coalesced":
            stats.coalesced += 1
        else:
            raise KeyError(source)
        if self.metrics:
            counter = self._lookup_counters.get(source)
            if counter is None:  # labels() validates and locks on every call: bind each child once
                counter = self._lookup_counters[source] = self.metrics.cache_lookups.labels(result=source)
            counter.inc()
