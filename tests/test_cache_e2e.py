"""Two replicas share verdicts through a real Redis; killing Redis under load fails nothing; and
nothing another writer puts in Redis becomes a verdict."""
import time
import urllib.request

import grpc

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess
from redis_server import RedisServer
from test_reliability import SteadyLoad


def test_a_verdict_computed_by_one_replica_is_served_by_another(minilm_bundle, tmp_path):
    redis = RedisServer()
    secret = tmp_path / "redis-secret"
    secret.write_text("one key for every replica\n")
    replicas = [ServerProcess(minilm_bundle, "--redis-url", redis.url, "--redis-timeout-ms", "50",
                              "--redis-secret-file", str(secret)) for _ in range(2)]
    try:
        request = site_request("https://news.example/world/story?utm_source=feed", title="World news")
        with replicas[0].channel() as channel:
            first = pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=10)
        time.sleep(0.2)  # the shared write is fire-and-forget
        same_page = site_request("https://NEWS.example:443/world/story", title="World news", policy_id="strict")
        with replicas[1].channel() as channel:
            second = pb_grpc.BrandSafetyStub(channel).Classify(same_page, timeout=10)
        assert first.score_source == "model" and second.score_source == "redis"
        assert [c.id for c in first.categories] == [c.id for c in second.categories]
        assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(first.categories, second.categories))
        assert second.policy_id == "strict"  # profiles apply after the cache
    finally:
        for replica in replicas:
            replica.stop()
        redis.kill()


def test_killing_redis_under_load_fails_no_request(minilm_bundle):
    redis = RedisServer()
    server = ServerProcess(minilm_bundle, "--redis-url", redis.url, "--redis-timeout-ms", "20", "--metrics-port", "0")
    try:
        with SteadyLoad(server.target, distinct_pages=None) as load:  # every call misses: Redis is asked
            time.sleep(1.0)
            served_before = load.ok
            redis.kill()
            time.sleep(2.0)
        assert load.failures == []
        assert served_before > 0 and load.ok > served_before  # it kept answering after Redis died
        assert "redis cache tier unhealthy" in server.output()
    finally:
        server.stop()
        redis.kill()


def test_poisoned_redis_values_never_become_verdicts(minilm_bundle, tmp_path):
    """Issue 25: any JSON under a key became the scores, survived a Redis DEL through the local tier,
    and malformed values answered with internal error text. Now each is a counted miss and the
    model answers, exactly as a server without Redis does."""
    import numpy as np
    import redis as sync_redis

    from brandsafe.rendering import render
    from brandsafe.service.cache import RedisTier, cache_key
    from brandsafe.service.model import LoadedBundle
    from brandsafe.service.requests import parse

    redis = RedisServer()
    writer = sync_redis.Redis.from_url(redis.url)
    secret = tmp_path / "redis-secret"
    secret.write_text("s3cret")
    server = ServerProcess(minilm_bundle, "--redis-url", redis.url, "--redis-timeout-ms", "200",
                           "--redis-secret-file", str(secret), "--metrics-port", "0")
    model = LoadedBundle(minilm_bundle, intra_op_threads=1)
    labels = len(model.labels.labels)
    forged = RedisTier(redis.url, 60, secret=b"not the server's")  # well formed, wrong key
    try:
        port = int(next(l for l in server.log if "metrics on" in l).split("metrics on :")[1].split("/")[0])
        with server.channel() as channel:
            stub = pb_grpc.BrandSafetyStub(channel)
            poisons = [b"[0.0]", orjson_list([1] * 8), orjson_list([1] * labels), b"{broken", b"x" * 100_000]
            for i, poison in enumerate(poisons + [None]):
                request = site_request(f"https://casino-{i}.example/poker/slots", title="Online casino slots")
                page = parse(request, "default").page
                key = cache_key(server.bundle_id, page, normalized=True)
                value = poison if poison is not None else forged.encode(key, np.zeros(labels))
                writer.set(key, value)
                answer = stub.Classify(request, timeout=10)
                print(f"poison {value[:40]!r}: source={answer.score_source} decision={answer.decision} "
                      f"categories={[c.id for c in answer.categories]}")
                assert answer.score_source == "model", value[:40]
                expected = model.score([render(page, normalized=True)])[0]
                served = {c.id: c.score for c in answer.categories}
                assert served == {l.id: pytest_approx(float(s)) for l, s in zip(model.labels.labels, expected)
                                  if s >= 0.05}
                time.sleep(0.1)  # the model's scores replace the poison (fire and forget)
                assert writer.get(key).startswith(b"bs2|")
                writer.delete(key)  # after a DEL, the local tier answers with the model's scores
                again = stub.Classify(request, timeout=10)
                assert again.score_source == "local" and list(again.categories) == list(answer.categories)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        # Bare JSON fails the format check; the forged envelope its MAC.
        for reason, count in {"format": 4, "size": 1, "mac": 1}.items():
            assert f'brandsafe_cache_redis_rejected_total{{reason="{reason}"}} {count}.0' in metrics, reason
    finally:
        model.close()
        server.stop()
        redis.kill()


def orjson_list(values) -> bytes:
    import orjson

    return orjson.dumps(values)


def pytest_approx(value):
    import pytest

    return pytest.approx(value, abs=1e-4)
