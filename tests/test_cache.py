import asyncio
import time

import numpy as np
import pytest

from brandsafe.rendering import PageContext
from brandsafe.service.cache import CircuitBreaker, LocalTier, RedisTier, VerdictCache, cache_key
from redis_server import RedisServer


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.kill()


def test_key_is_the_normalized_page_and_the_bundle():
    a = cache_key("b1", PageContext(url="HTTP://Example.com:80/x?utm_source=n&b=2&a=1#f", title="T"))
    assert a == cache_key("b1", PageContext(url="example.com/x?a=1&b=2", title="T"))
    assert a != cache_key("b2", PageContext(url="example.com/x?a=1&b=2", title="T"))  # new bundle, new key
    assert a != cache_key("b1", PageContext(url="example.com/x?a=1&b=2", title="Other"))
    assert len(cache_key("b1", PageContext(url="example.com/" + "a" * 9000))) < 700


def test_local_tier_is_an_lru_with_ttl():
    tier = LocalTier(max_entries=2, ttl_seconds=0.2)
    tier.put("a", np.ones(2))
    tier.put("b", np.ones(2))
    assert tier.get("a") is not None  # a is now most recent
    tier.put("c", np.ones(2))
    assert tier.get("b") is None and tier.get("a") is not None and len(tier) == 2
    time.sleep(0.25)
    assert tier.get("a") is None


def test_concurrent_misses_on_one_key_run_one_inference():
    calls = []

    async def main():
        cache = VerdictCache(LocalTier(100, 60))

        async def compute():
            calls.append(1)
            await asyncio.sleep(0.05)
            return np.array([0.5], dtype=np.float32)

        results = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(20)))
        assert {source for _, source in results} == {"model", "coalesced"}
        assert (await cache.get_or_compute("k", compute))[1] == "local"
        return cache.stats

    stats = asyncio.run(main())
    assert calls == [1] and stats.coalesced == 19 and stats.local_hits == 1


def test_a_failed_inference_fails_every_waiter_and_is_not_cached():
    async def main():
        cache = VerdictCache(LocalTier(100, 60))

        async def boom():
            await asyncio.sleep(0.01)
            raise RuntimeError("model failed")

        results = await asyncio.gather(*(cache.get_or_compute("k", boom) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert cache.local.get("k") is None

    asyncio.run(main())


def test_replicas_share_scores_through_redis(redis_server):
    async def main():
        replicas = [VerdictCache(LocalTier(100, 60), RedisTier(redis_server.url, 60, timeout_seconds=0.5))
                    for _ in range(2)]
        calls = []

        async def compute():
            calls.append(1)
            return np.array([0.25, 0.75], dtype=np.float32)

        first, source = await replicas[0].get_or_compute("page", compute)
        assert source == "model"
        await asyncio.sleep(0.1)  # the Redis write is fire-and-forget
        second, source = await replicas[1].get_or_compute("page", compute)
        assert source == "redis" and np.allclose(first, second) and calls == [1]
        for replica in replicas:
            await replica.redis.close()

    asyncio.run(main())


def test_redis_down_or_slow_never_fails_a_lookup_and_opens_the_breaker(redis_server):
    async def main():
        breaker = CircuitBreaker(failures=3, cooldown_seconds=30)
        cache = VerdictCache(LocalTier(100, 60), RedisTier(redis_server.url, 60, timeout_seconds=0.05,
                                                           breaker=breaker))

        async def compute():
            return np.array([0.1], dtype=np.float32)

        await cache.get_or_compute("warm", compute)
        redis_server.kill()
        for i in range(10):
            scores, source = await cache.get_or_compute(f"k{i}", compute)
            assert source == "model" and scores[0] == pytest.approx(0.1)
        assert breaker.open
        started = time.monotonic()
        await cache.get_or_compute("fast-path", compute)  # breaker open: Redis is not even tried
        assert time.monotonic() - started < 0.05
        await cache.redis.close()

    asyncio.run(main())


def test_slow_redis_times_out_instead_of_stalling(redis_server):
    import redis as sync_redis

    async def main():
        cache = VerdictCache(LocalTier(100, 60), RedisTier(redis_server.url, 60, timeout_seconds=0.02))

        async def compute():
            return np.array([0.3], dtype=np.float32)

        blocker = asyncio.get_running_loop().run_in_executor(
            None, lambda: sync_redis.Redis.from_url(redis_server.url).execute_command("DEBUG", "SLEEP", "0.5"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        scores, source = await cache.get_or_compute("slow", compute)
        assert source == "model" and time.monotonic() - started < 0.2
        await blocker
        await cache.redis.close()

    asyncio.run(main())
