"""The one-lookup cache-hit path (service/answers.py): a repeated page is answered exactly as the
full path answers it, and never past what the verdict cache still holds."""
import asyncio
import gc
import json
import shutil

import grpc
import numpy as np
from prometheus_client import CollectorRegistry

from brandsafe.bundle import write_manifest
from brandsafe.client import site_request
from brandsafe.service.answers import MAX_PAGE_BYTES, RememberedAnswers, request_key
from brandsafe.service.metrics import Metrics
from brandsafe.service.server import ServerConfig, start
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from redis_server import free_port


def _without_request_fields(response: pb.ClassifyResponse) -> pb.ClassifyResponse:
    body = pb.ClassifyResponse()
    body.CopyFrom(response)
    for name in ("id", "imp_id", "score_source"):
        body.ClearField(name)
    return body


def _serve(config: ServerConfig, scenario):
    """Runs `scenario(stub, running)` against a real in-process server on a real port."""
    async def main():
        running = await start(config, Metrics(CollectorRegistry()))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return await scenario(pb_grpc.BrandSafetyStub(channel), running)
        finally:
            await running.stop()
            gc.unfreeze()  # start() froze the heap; later tests expect an ordinary one

    return asyncio.run(main())


def test_a_repeat_is_answered_from_memory_exactly_as_the_full_path_answers_it(minilm_bundle):
    config = ServerConfig(bundle=minilm_bundle, port=free_port(), intra_op_threads=1, inference_workers=1)
    page = dict(page="https://video.example/watch?v=42", title="Range day: testing a new rifle")

    async def scenario(stub, running):
        first = await stub.Classify(site_request(**page, request_id="r1", imp_id="1"), timeout=10)
        answers = running.service.serving.answers
        assert first.score_source == "model" and len(answers) == 1
        repeat = await stub.Classify(site_request(**page, request_id="r2", imp_id="7"), timeout=10)
        assert (repeat.id, repeat.imp_id, repeat.score_source) == ("r2", "7", "local")
        assert _without_request_fields(repeat) == _without_request_fields(first)
        # Another profile on the same page: its own answer from the same scores, remembered apart.
        strict = await stub.Classify(site_request(**page, policy_id="strict"), timeout=10)
        assert strict.policy_id == "strict" and strict.score_source == "local" and len(answers) == 2
        assert [c.score for c in strict.categories] == [c.score for c in first.categories]
        # A remembered page does not excuse a bad id, nor a request that also sets an app.
        errors = []
        for bad in (site_request(**page, request_id="x" * 500),
                    pb.ClassifyRequest(site=pb.Site(), app=pb.App(bundle="com.example"), policy_id=""),):
            if bad.HasField("app"):  # remembered first as the app request it would be without `site`
                app_only = pb.ClassifyRequest(app=pb.App(bundle="com.example"))
                await stub.Classify(app_only, timeout=10)
                await stub.Classify(app_only, timeout=10)
            try:
                await stub.Classify(bad, timeout=10)
            except grpc.aio.AioRpcError as exc:
                errors.append((exc.code(), exc.details().split(":")[0]))
        assert errors == [(grpc.StatusCode.INVALID_ARGUMENT, "id"), (grpc.StatusCode.INVALID_ARGUMENT, "site, app")]
        return running.service.cache.stats.local_hits

    assert _serve(config, scenario) >= 3


def test_an_expired_verdict_is_recomputed_not_answered_from_memory(minilm_bundle):
    config = ServerConfig(bundle=minilm_bundle, port=free_port(), intra_op_threads=1, inference_workers=1,
                          cache_ttl_seconds=0.5)
    request = site_request("https://blog.example/2026/11/pancakes", title="Fluffy pancakes")

    async def scenario(stub, running):
        sources = [(await stub.Classify(request, timeout=10)).score_source for _ in range(2)]
        await asyncio.sleep(0.6)
        sources.append((await stub.Classify(request, timeout=10)).score_source)
        sources.append((await stub.Classify(request, timeout=10)).score_source)
        return sources

    assert _serve(config, scenario) == ["model", "local", "model", "local"]


def test_a_new_bundle_never_answers_from_the_old_ones_memory(minilm_bundle, tmp_path):
    other = tmp_path / "next"
    shutil.copytree(minilm_bundle, other)
    info = json.loads((other / "bundle.json").read_text())
    info["bundle_id"] = f"{info['bundle_id']}-next"
    (other / "bundle.json").write_text(json.dumps(info))
    write_manifest(other)
    config = ServerConfig(bundle=minilm_bundle, port=free_port(), intra_op_threads=1, inference_workers=1)
    request = site_request("https://news.example/world/ceasefire", title="Ceasefire talks resume")

    async def scenario(stub, running):
        before = [await stub.Classify(request, timeout=10) for _ in range(2)]
        await running.swapper.swap(other)
        after = [await stub.Classify(request, timeout=10) for _ in range(2)]
        return before, after

    before, after = _serve(config, scenario)
    assert [r.score_source for r in before] == ["model", "local"]
    assert [(r.bundle_id, r.score_source) for r in after] == [(info["bundle_id"], "model"),
                                                             (info["bundle_id"], "local")]


def test_remembered_answers_are_bounded_and_keyed_by_the_page_object_as_sent():
    answers = RememberedAnswers(max_entries=2)
    scores = np.zeros(3, dtype=np.float32)
    for name in ("a", "b", "c"):
        answers.remember((name,), f"key-{name}", scores, pb.ClassifyResponse(policy_id=name).SerializeToString())
    assert len(answers) == 2 and answers.get(("a",)) is None and answers.get(("c",))[0] == "key-c"
    # Nothing in an entry is left for the cyclic GC to walk (a full collection would visit each).
    gc.collect()
    assert not gc.is_tracked(answers.get(("c",)))

    site = pb.Site(page="https://example.com/")
    assert request_key(pb.ClassifyRequest(site=site)) == (site.SerializeToString(), None, "")
    assert request_key(pb.ClassifyRequest(site=site, policy_id="strict"))[2] == "strict"
    # An app request and the same app beside an empty site differ: only the first one is valid.
    app = pb.App(bundle="com.example")
    assert request_key(pb.ClassifyRequest(app=app)) != request_key(pb.ClassifyRequest(app=app, site=pb.Site()))
    assert request_key(pb.ClassifyRequest(site=pb.Site(page="https://e.com/" + "a" * MAX_PAGE_BYTES))) is None


def test_a_stream_answers_repeats_from_memory_with_each_requests_own_ids(minilm_bundle):
    config = ServerConfig(bundle=minilm_bundle, port=free_port(), intra_op_threads=1, inference_workers=1)
    page = dict(page="https://forum.example/t/knitting-patterns", title="Knitting patterns for winter")

    async def scenario(stub, running):
        first = await stub.Classify(site_request(**page, request_id="u1"), timeout=10)
        stream = [site_request(**page, request_id=f"s{i}", imp_id=str(i)) for i in range(3)]
        stream.append(site_request(**page, request_id="y" * 500))
        responses = [r async for r in stub.ClassifyStream(iter(stream), timeout=10)]
        return first, responses

    first, responses = _serve(config, scenario)
    by_id = {r.id: r for r in responses}
    for i in range(3):
        repeat = by_id[f"s{i}"]
        assert (repeat.imp_id, repeat.score_source) == (str(i), "local")
        assert _without_request_fields(repeat) == _without_request_fields(first)
    bad = by_id["y" * 500]  # a remembered page does not excuse a bad id: reported in band
    assert bad.error.code == "INVALID_ARGUMENT" and bad.error.message.startswith("id:")
