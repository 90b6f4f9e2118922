"""The whole chain on both architectures: trained bundle → real server on a free port → real client."""
import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from brandsafe.client import site_request
from brandsafe.labels import LabelSet
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc


@pytest.fixture(params=["minilm_server", "qwen3_server"])
def server(request):
    return request.getfixturevalue(request.param)


def test_unary_classify_returns_decision_scores_and_bundle(server):
    with server.channel() as channel:
        stub = pb_grpc.BrandSafetyStub(channel)
        response = stub.Classify(site_request("https://casino-bonus-slots.example/play", title="Free spins",
                                              request_id="req-1", imp_id="imp-7"), timeout=30)
    assert response.id == "req-1" and response.imp_id == "imp-7"
    assert response.decision in (pb.ALLOW, pb.BLOCK)
    assert response.cattax == 9
    assert response.bundle_id == server.bundle_id and response.policy_id == "default"
    scores = [c.score for c in response.categories]
    assert scores == sorted(scores, reverse=True) and all(0.05 <= s <= 1 for s in scores)
    if response.decision == pb.BLOCK:
        assert all(r.score >= r.threshold for r in response.reasons)
    else:
        assert not response.reasons


def test_scores_match_the_bundle_model_run_directly(server):
    """What the server answers is the bundle's ONNX model on the shared rendering, nothing else."""
    from brandsafe.rendering import PageContext, render
    from brandsafe.service.model import LoadedBundle

    bundle = LoadedBundle(server_bundle_dir(server))
    expected = bundle.score([render(PageContext(url="bet-now.example/poker", title="Poker night"))])[0]
    with server.channel() as channel:
        response = pb_grpc.BrandSafetyStub(channel).Classify(
            site_request("bet-now.example/poker", title="Poker night"), timeout=30)
    got = {c.id: c.score for c in response.categories}
    for label, score in zip(bundle.labels, expected):
        if score >= 0.05:
            assert got[label.id] == pytest.approx(score, abs=1e-5)


def server_bundle_dir(server):
    return server.proc.args[server.proc.args.index("--bundle") + 1]


def test_stream_answers_every_request_and_reports_bad_ones_in_band(server):
    requests = [site_request(f"site{i}.example/page", request_id=f"r{i}") for i in range(20)]
    requests.insert(5, pb.ClassifyRequest(id="bad", site=pb.Site(page="x" * 9000)))
    with server.channel() as channel:
        responses = list(pb_grpc.BrandSafetyStub(channel).ClassifyStream(iter(requests), timeout=60))
    by_id = {r.id: r for r in responses}
    assert set(by_id) == {r.id for r in requests}
    assert by_id["bad"].error.code == "INVALID_ARGUMENT" and "site.page" in by_id["bad"].error.message
    assert all(r.decision in (pb.ALLOW, pb.BLOCK) and not r.HasField("error") for k, r in by_id.items() if k != "bad")


@pytest.mark.parametrize("request_, field", [
    (pb.ClassifyRequest(id="1"), "site"),
    (pb.ClassifyRequest(site=pb.Site(page="a.com"), app=pb.App(bundle="com.a")), "site, app"),
    (pb.ClassifyRequest(site=pb.Site(page="a.com" * 2000)), "site.page"),
    (pb.ClassifyRequest(site=pb.Site(page="a.com"), policy_id="no-such-profile"), "policy_id"),
    (pb.ClassifyRequest(site=pb.Site(page="a.com", kwarray=["k"] * 101)), "site.kwarray"),
    (pb.ClassifyRequest(site=pb.Site(page="a.com", content=pb.Content(title="t" * 3000))), "site.content.title"),
])
def test_bad_input_is_invalid_argument_naming_the_field(minilm_server, request_, field):
    with minilm_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.BrandSafetyStub(channel).Classify(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(field)


def test_app_requests_and_profiles(minilm_server):
    with minilm_server.channel() as channel:
        stub = pb_grpc.BrandSafetyStub(channel)
        app = stub.Classify(pb.ClassifyRequest(app=pb.App(bundle="com.example.slots", name="Lucky Slots")), timeout=10)
        strict = stub.Classify(site_request("a.example", policy_id="strict"), timeout=10)
    assert app.decision in (pb.ALLOW, pb.BLOCK)
    assert strict.policy_id == "strict"


def test_health_and_reflection(server):
    with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "brandsafe.v1.BrandSafety"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "brandsafe.v1.BrandSafety" in database.get_services()
        pool = descriptor_pool.DescriptorPool(database)
        methods = {m.name for m in pool.FindServiceByName("brandsafe.v1.BrandSafety").methods}
    assert methods == {"Classify", "ClassifyStream", "Explain"}


def test_labels_carry_taxonomy_ids(minilm_bundle):
    labels = LabelSet.load(minilm_bundle / "labels.json")
    by_name = {l.name: l for l in labels}
    assert by_name["Terrorism"].id == "8FD8nI" and not by_name["Terrorism"].custom
    assert by_name["Misinformation"].custom


def test_sigterm_stops_the_server_cleanly(qwen3_bundle):
    from conftest import ServerProcess

    server = ServerProcess(qwen3_bundle)
    with server.channel() as channel:
        pb_grpc.BrandSafetyStub(channel).Classify(site_request("a.example"), timeout=30)
    assert server.stop() == 0
