"""Two replicas share verdicts through a real Redis; killing Redis under load fails nothing."""
import time

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess
from redis_server import RedisServer
from test_reliability import SteadyLoad


def test_a_verdict_computed_by_one_replica_is_served_by_another(minilm_bundle):
    redis = RedisServer()
    replicas = [ServerProcess(minilm_bundle, "--redis-url", redis.url, "--redis-timeout-ms", "50") for _ in range(2)]
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
