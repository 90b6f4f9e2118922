"""The one-lookup cache-hit path (service/answers.py): a repeated page is answered exactly as the
full path answers it, and never past what the verdict cache still holds."""
import asyncio
import collections
import gc
import json
import shutil

import grpc
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from brandsafe.bundle import write_manifest
from brandsafe.client import site_request
from brandsafe.service import requests
from brandsafe.service.answers import (LOCAL_SOURCE, MAX_PAGE_BYTES, HitPath, PyHitPath, RememberedAnswers,
                                       split_request)
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
        # Nor an id that is not UTF-8 (the bytes path decodes ids itself), nor one sent after the site.
        page_bytes = site_request(**page).SerializeToString()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            raw_call = channel.unary_unary("/brandsafe.v1.BrandSafety/Classify")  # bytes in, bytes out
            try:
                await raw_call(b"\x0a\x02\xff\xfe" + page_bytes, timeout=10)
                raise AssertionError("an id that is not UTF-8 was answered")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            late = pb.ClassifyResponse.FromString(await raw_call(page_bytes + b"\x0a\x04late", timeout=10))
        assert (late.id, late.score_source) == ("late", "local")
        assert _without_request_fields(late) == _without_request_fields(first)
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


def test_remembered_answers_are_bounded_and_hold_nothing_the_gc_walks():
    answers = RememberedAnswers(max_entries=2)
    scores = np.zeros(3, dtype=np.float32)
    for name in (b"a", b"b", b"c"):
        answers.remember(name, f"key-{name.decode()}", scores, pb.ClassifyResponse(policy_id="p").SerializeToString())
    assert len(answers) == 2 and answers.get(b"a") is None and answers.get(b"c")[0] == "key-c"
    # Nothing in an entry is left for the cyclic GC to walk (a full collection would visit each).
    gc.collect()
    assert not gc.is_tracked(answers.get(b"c"))


def _key(request: pb.ClassifyRequest) -> bytes | None:
    return split_request(request.SerializeToString()).key


def test_the_key_is_every_byte_but_the_impression_ids_and_tmax():
    site = pb.Site(page="https://example.com/", content=pb.Content(title="Knitting"))
    key = _key(pb.ClassifyRequest(id="r1", imp_id="1", site=site, tmax=80))
    assert key == pb.ClassifyRequest(site=site).SerializeToString()
    assert _key(pb.ClassifyRequest(id="another", imp_id="99", site=site, tmax=5)) == key
    assert _key(pb.ClassifyRequest(site=site, policy_id="strict")) != key
    assert _key(pb.ClassifyRequest(site=pb.Site(page="https://example.com/", content=pb.Content(title="K")))) != key
    # An app request and the same app beside an empty site differ: only the first one is valid.
    app = pb.App(bundle="com.example")
    assert _key(pb.ClassifyRequest(app=app)) != _key(pb.ClassifyRequest(app=app, site=pb.Site()))
    assert _key(pb.ClassifyRequest(site=pb.Site(page="https://e.com/" + "a" * MAX_PAGE_BYTES))) is None
    # Bytes that are not a plain encoding are left to the full path, which reports them.
    raw = pb.ClassifyRequest(id="r1", site=site).SerializeToString()
    assert split_request(raw[:-1]) is None and split_request(b"\x0a\xff") is None
    assert split_request(b"\x0d\x00\x00\x00\x00") is None  # a fixed32 field


# The C hit path where it was built, always its Python reference.
HIT_PATHS = [PyHitPath] + ([HitPath] if HitPath is not None else [])


def test_the_c_hit_path_is_built_where_a_compiler_is():
    # setup.py builds it optionally, so a broken build would silently fall back to Python.
    if shutil.which("cc") or shutil.which("gcc"):
        assert HitPath is not None, "service/_hitpath.c did not build; reinstall (./dev install) to see why"
        from brandsafe.service import _hitpath
        assert _hitpath.MAX_ID_CHARS == requests.MAX_ID_CHARS


def _tables(raw: bytes, scores: np.ndarray, tail: bytes, expires: float):
    """Remembered answers and a local tier that hold `raw`'s page (and one other entry each)."""
    answers = collections.OrderedDict([(split_request(raw).key, ("ck", scores, tail)), (b"other", ("ck2", scores, b""))])
    local = collections.OrderedDict([("ck", (expires, scores)), ("ck2", (expires, scores))])
    return answers, local


@pytest.mark.parametrize("hit_path_class", HIT_PATHS)
def test_an_answer_from_bytes_parses_to_the_message_the_full_path_builds(hit_path_class):
    body = pb.ClassifyResponse(decision=pb.BLOCK, cattax=9, bundle_id="b", policy_id="default",
                               categories=[pb.CategoryScore(id="181", name="Casinos & Gambling", score=0.9)])
    remembered = pb.ClassifyRequest(id="first", site=pb.Site(page="https://casino.example/"), tmax=50)
    request = pb.ClassifyRequest(id="req-ü", imp_id="3", site=pb.Site(page="https://casino.example/"), tmax=80)
    scores = np.zeros(3, dtype=np.float32)
    answers, local = _tables(remembered.SerializeToString(), scores, body.SerializeToString() + LOCAL_SOURCE, 10.0)
    hits = hit_path_class(answers, local, MAX_PAGE_BYTES)
    expected = pb.ClassifyResponse()
    expected.CopyFrom(body)
    expected.id, expected.imp_id, expected.score_source = "req-ü", "3", "local"
    assert pb.ClassifyResponse.FromString(hits(request.SerializeToString(), 9.0)) == expected
    # Both entries are now the most recent ones.
    assert list(answers)[-1] == split_request(request.SerializeToString()).key and list(local)[-1] == "ck"
    # Not past what the local tier holds: expired, recomputed (other scores) or evicted.
    assert hits(request.SerializeToString(), 10.5) is None
    local["ck"] = (20.0, scores.copy())
    assert hits(request.SerializeToString(), 9.0) is None
    del local["ck"]
    assert hits(request.SerializeToString(), 9.0) is None
    # Nor with ids the full path rejects.
    local["ck"] = (20.0, scores)
    for bad in ("x" * (requests.MAX_ID_CHARS + 1), "a\x00b"):
        assert hits(pb.ClassifyRequest(id=bad, site=request.site).SerializeToString(), 9.0) is None
        assert hits(pb.ClassifyRequest(imp_id=bad, site=request.site).SerializeToString(), 9.0) is None
    assert hits(b"\x0a\x02\xff\xfe" + request.site.SerializeToString(), 9.0) is None
    assert hits(pb.ClassifyRequest(id="é" * requests.MAX_ID_CHARS, site=request.site).SerializeToString(), 9.0)


_requests = st.builds(
    lambda request_id, imp_id, page, policy_id, tmax, app: pb.ClassifyRequest(
        id=request_id, imp_id=imp_id, policy_id=policy_id, tmax=tmax,
        **({"app": pb.App(bundle=page)} if app else {"site": pb.Site(page=page)})),
    st.text(max_size=140), st.text(max_size=20), st.text(max_size=60), st.text(max_size=20),
    st.integers(min_value=0, max_value=2**32 - 1), st.booleans())


@pytest.mark.skipif(HitPath is None, reason="the C hit path was not built (test_the_c_hit_path_is_built_...)")
@given(_requests, st.binary(max_size=8), st.integers(min_value=0, max_value=200), st.binary(max_size=24),
       st.sampled_from(["held", "expired", "recomputed"]))
def test_the_c_hit_path_answers_exactly_as_the_python_reference(request, noise, at, tail, state):
    """Valid requests, and the same bytes with a few bytes spliced in (truncated fields, stray
    tags, over-long varints): same answer or None, and the same entries made most recent."""
    raw = request.SerializeToString()
    scores = np.zeros(2, dtype=np.float32)
    variants = [raw, raw[:at] + noise + raw[at:], raw[:at], noise]
    for variant in variants:
        results = []
        for hit_path_class in HIT_PATHS:
            answers, local = _tables(raw, scores, tail, 1.0 if state == "expired" else 9.0)
            if state == "recomputed":
                local["ck"] = (9.0, scores.copy())
            answer = hit_path_class(answers, local, MAX_PAGE_BYTES)(variant, 5.0)
            results.append((answer, list(answers), list(local)))
        assert results[0] == results[1]
    # And the reference itself: a held page is answered exactly when its ids are acceptable.
    answer = PyHitPath(*_tables(raw, scores, tail, 9.0), MAX_PAGE_BYTES)(raw, 5.0)
    ids_ok = len(request.id) <= requests.MAX_ID_CHARS and "\x00" not in request.id + request.imp_id
    assert (answer is not None) == ids_ok
    assert answer is None or answer == split_request(raw).id_fields + tail


@pytest.mark.skipif(HitPath is None, reason="the C hit path was not built")
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_the_c_hit_path_never_raises_and_agrees_on_any_bytes(raw, remembered):
    split = split_request(remembered)
    key = split.key if split is not None and split.key is not None else b"k"
    scores = np.zeros(1, dtype=np.float32)
    results = []
    for hit_path_class in HIT_PATHS:
        answers = collections.OrderedDict([(key, ("ck", scores, b"tail"))])
        local = collections.OrderedDict([("ck", (9.0, scores))])
        results.append(hit_path_class(answers, local, 16)(raw, 1.0))
    assert results[0] == results[1]


@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=60), st.text(max_size=20),
       st.integers(min_value=0, max_value=2**32 - 1), st.booleans())
def test_splitting_a_request_loses_nothing_but_tmax(request_id, imp_id, page, policy_id, tmax, app):
    request = pb.ClassifyRequest(id=request_id, imp_id=imp_id, policy_id=policy_id, tmax=tmax)
    if app:
        request.app.bundle = page
    else:
        request.site.page = page
    split = split_request(request.SerializeToString())
    rebuilt = pb.ClassifyRequest.FromString(split.id_fields + split.key)
    request.tmax = 0
    assert rebuilt == request


@given(st.binary(max_size=64))
def test_splitting_never_raises_on_any_bytes(raw):
    split = split_request(raw)
    assert split is None or isinstance(split.id_fields, bytes)


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
    # A remembered page does not excuse a bad id: reported in band, and the invalid id is not echoed.
    assert "y" * 500 not in by_id
    bad = by_id[""]
    assert bad.error.code == "INVALID_ARGUMENT" and bad.error.message.startswith("id:")
