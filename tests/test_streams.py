"""ClassifyStream and the connection limits, against a real server process (issue 25, finding 4):
a client that never reads cannot grow the server, an unexpected failure is answered in band and
the stream still ends, invalid ids are not echoed, and the server-wide limits hold."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import grpc
import pytest

from brandsafe.bundle import write_manifest
from brandsafe.client import site_request
from brandsafe.service.servicer import STREAM_IN_FLIGHT, STREAM_READY
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


STREAM_GROWTH_BOUND_MIB = 64  # before issue 25: 179 → 531 MiB in 3.4 s, and growing


def test_a_client_that_never_reads_cannot_grow_the_server(minilm_server):
    """Repeats of one cached page (the cheapest answers, so the fastest growth), sent as fast as the
    server takes them, none read. The server stops reading the stream once its bounds are reached:
    few requests are ever taken from the client, and its memory stays put."""
    request = site_request("https://stream.example/story", title="t" * 1500)
    with minilm_server.channel() as channel:
        stub = pb_grpc.BrandSafetyStub(channel)
        stub.Classify(request, timeout=30)  # cached from now on
        pulled = 0
        stop = threading.Event()

        def requests():
            nonlocal pulled
            while not stop.is_set() and pulled < 2_000_000:
                pulled += 1
                yield request

        before = rss_mib(minilm_server.proc.pid)
        call = stub.ClassifyStream(requests(), timeout=60)
        time.sleep(5.0)
        grown = rss_mib(minilm_server.proc.pid) - before
        taken = pulled
        stop.set()
        call.cancel()
    print(f"\nstream never read: {taken} requests taken in 5 s, server RSS +{grown:.1f} MiB "
          f"(bounds: {STREAM_IN_FLIGHT} in flight, {STREAM_READY} ready, plus HTTP/2 windows)")
    assert grown < STREAM_GROWTH_BOUND_MIB
    # Each request is ~1.5 KB: what HTTP/2's windows hold (a few MB at most) plus the two bounds.
    assert taken < 20_000
    with minilm_server.channel() as channel:  # and the server serves on
        assert pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=30).bundle_id


@pytest.fixture(scope="module")
def failing_bundle(minilm_bundle, tmp_path_factory) -> Path:
    """The session bundle declaring a longer input than its model has positions for: a page whose
    text runs past 512 tokens fails inside ONNX Runtime, an error the service does not expect."""
    bundle = tmp_path_factory.mktemp("failing") / "bundle"
    shutil.copytree(minilm_bundle, bundle)
    info = json.loads((bundle / "bundle.json").read_text())
    info["max_length"] = 1024
    (bundle / "bundle.json").write_text(json.dumps(info, indent=2))
    write_manifest(bundle)
    return bundle


def test_an_unexpected_failure_is_answered_in_band_and_the_stream_ends(failing_bundle):
    server = ServerProcess(failing_bundle, "--cache-entries", "1000")
    long_page = site_request("https://long.example/", keywords=" ".join(["word"] * 1500))
    long_page.id, long_page.imp_id = "req-long", "imp-1"
    fine = site_request("https://fine.example/", title="A fine page")
    try:
        with server.channel() as channel:
            stub = pb_grpc.BrandSafetyStub(channel)
            stub.Classify(fine, timeout=30)  # cached: answered without the model below
            with pytest.raises(grpc.RpcError) as failed:
                stub.Classify(long_page, timeout=30)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
            assert failed.value.details().startswith("internal error (ref ")
            assert "Error" not in failed.value.details() and "onnx" not in failed.value.details().lower()

            bad_ids = pb.ClassifyRequest(id="x" * 500, imp_id="\x00")
            sent = [long_page, fine, bad_ids, fine]
            answers = []
            call = stub.ClassifyStream(iter(sent), timeout=60)
            for answer in call:  # ends: before issue 25 the failure dropped its answer and the stream hung
                answers.append(answer)
            assert len(answers) == len(sent)
            errors = {a.error.code: a for a in answers if a.HasField("error")}
            assert set(errors) == {"INTERNAL", "INVALID_ARGUMENT"}
            internal = errors["INTERNAL"]
            assert (internal.id, internal.imp_id) == ("req-long", "imp-1")
            assert internal.error.message.startswith("internal error (ref ")
            assert (errors["INVALID_ARGUMENT"].id, errors["INVALID_ARGUMENT"].imp_id) == ("", "")  # not echoed
            assert sum(1 for a in answers if not a.HasField("error") and a.bundle_id) == 2
        ref = internal.error.message.split("ref ")[1].split(")")[0]
        time.sleep(0.2)
        assert f"ref {ref}" in server.output() and "Traceback" in server.output()  # the text went to the log
    finally:
        server.stop()


def test_the_server_wide_call_limit_and_connection_age_hold(minilm_bundle):
    server = ServerProcess(minilm_bundle, "--max-concurrent-rpcs", "2", "--max-connection-age-seconds", "1",
                           "--max-connection-age-grace-seconds", "1")
    request = site_request("https://limits.example/")
    try:
        with server.channel() as channel:
            stub = pb_grpc.BrandSafetyStub(channel)
            holding = threading.Event()

            def held():
                yield request
                holding.wait(10)

            streams = [stub.ClassifyStream(held(), timeout=20) for _ in range(2)]
            for stream in streams:
                next(stream)  # both calls are open on the server
            with pytest.raises(grpc.RpcError) as refused:
                stub.Classify(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # The connection is past its age, and the open calls past the grace: the server ends them.
            for stream in streams:
                with pytest.raises(grpc.RpcError) as ended:
                    next(stream)
                assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
            holding.set()
            assert stub.Classify(request, timeout=10).bundle_id  # the channel reconnects, the limit is free
    finally:
        server.stop()
