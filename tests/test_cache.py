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


def test_redis_values_are_used_only_when_well_formed_and_bound_to_their_key(redis_server):
    """Anything a writer of the key space can put under a key (issue 25: `[0.0]` turned a casino
    page ALLOW, `[1]*8` blocked a harmless one) is a counted miss; the model answers and the local
    tier never holds it."""
    import redis as sync_redis

    writer = sync_redis.Redis.from_url(redis_server.url)
    key, other = "bs1|bundle-a|https://casino.example/|h", "bs1|bundle-a|https://garden.example/|h"

    async def main():
        tier = RedisTier(redis_server.url, 60, timeout_seconds=0.5)
        genuine = tier.encode(key, np.array([0.9, 0.1, 0.8], dtype=np.float32))
        poisons = {
            "format": [b"[0.0]", b"[1,1,1,1,1,1,1,1]", b"{not json", b"bs2|-|{\"scores\": [0.1, 0.2, 0.3]}",
                       b"bs2|-|" + genuine.split(b"|", 2)[2].replace(b'"scores"', b'"scorez"'),
                       genuine.replace(b"0.9", b"NaN"), genuine.replace(b"0.9", b"1e999")],  # not JSON
            "key": [tier.encode(other, np.array([0.0, 0.0, 0.0])),  # a genuine value copied from another key
                    tier.encode("bs1|bundle-b|https://casino.example/|h", np.array([0.0, 0.0, 0.0]))],
            "shape": [tier.encode(key, np.zeros(8)), tier.encode(key, np.zeros((0,)))],
            "range": [genuine.replace(b"0.9", b"1.5"), genuine.replace(b"0.9", b"-0.5"),
                      genuine.replace(b"0.9", b"3.5e38")],  # infinite as float32
            "size": [genuine + b" " * 5000],
        }
        for reason, values in poisons.items():
            for value in values:
                writer.set(key, value)
                cache = VerdictCache(LocalTier(100, 60), tier)

                async def compute():
                    return np.array([0.2, 0.3, 0.4], dtype=np.float32)

                scores, source = await cache.get_or_compute(key, compute, width=3)
                assert (source, scores.tolist()) == ("model", pytest.approx([0.2, 0.3, 0.4])), (reason, value)
                await asyncio.sleep(0.05)  # the model's scores replace the poison in Redis
                assert writer.get(key).startswith(b"bs2|")
        assert tier.rejected == {reason: len(values) for reason, values in poisons.items()}
        writer.delete(key)
        writer.lpush(key, b"[0.0]")  # not a string at all
        assert await tier.get(key, 3) is None and tier.rejected["type"] == 1 and not tier.breaker.consecutive
        writer.delete(key)
        writer.set(key, genuine)
        assert (await tier.get(key, 3)).tolist() == pytest.approx([0.9, 0.1, 0.8])  # a genuine one is used
        await tier.client.aclose()

        signed = RedisTier(redis_server.url, 60, timeout_seconds=0.5, secret=b"s3cret")
        assert await signed.get(key, 3) is None and signed.rejected == {"mac": 1}  # unsigned: refused
        writer.set(key, RedisTier(redis_server.url, 60, secret=b"other").encode(key, np.array([0.0, 0.0, 0.0])))
        assert await signed.get(key, 3) is None and signed.rejected == {"mac": 2}
        writer.set(key, signed.encode(key, np.array([0.5, 0.5, 0.5])))
        assert (await signed.get(key, 3)).tolist() == [0.5, 0.5, 0.5]
        await signed.client.aclose()

    asyncio.run(main())
