"""Hot swap, trust in bundles, admin auth, metrics and TLS, against a real server process."""
import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest

from brandsafe.bundle import write_manifest
from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess

TOKEN = "test-admin-token"


class SteadyLoad:
    """A few client threads calling Classify back to back; counts every outcome."""

    def __init__(self, target: str, threads: int = 3, distinct_pages: int | None = 50):
        """distinct_pages: pages each thread cycles through (None: a new page every call, so every
        call misses the cache)."""
        self.target, self.stop_flag = target, threading.Event()
        self.distinct_pages = distinct_pages
        self.ok, self.failures, self.bundle_ids = 0, [], set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, worker: int) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.BrandSafetyStub(channel)
            n = 0
            while not self.stop_flag.is_set():
                n += 1
                try:
                    page = n % self.distinct_pages if self.distinct_pages else n
                    response = stub.Classify(site_request(f"site{worker}-{page}.example/page"), timeout=10)
                    with self.lock:
                        self.ok += 1
                        self.bundle_ids.add(response.bundle_id)
                except grpc.RpcError as exc:
                    with self.lock:
                        self.failures.append(exc.code())

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)


def _second_bundle(bundle, tmp_path, name):
    """The same model under another bundle id, as a retrain would produce."""
    other = tmp_path / name
    shutil.copytree(bundle, other)
    info = json.loads((other / "bundle.json").read_text())
    info["bundle_id"] = f"{info['bundle_id']}-{name}"
    (other / "bundle.json").write_text(json.dumps(info))
    write_manifest(other)
    return other


def _reload(channel, path="", token=TOKEN):
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    return pb_grpc.AdminStub(channel).ReloadBundle(pb.ReloadBundleRequest(bundle_path=str(path)), metadata=metadata,
                                                   timeout=60)


def test_twenty_swaps_under_steady_load_lose_no_request(minilm_bundle, tmp_path):
    bundles = [minilm_bundle, _second_bundle(minilm_bundle, tmp_path, "b")]
    server = ServerProcess(minilm_bundle, "--admin-token", TOKEN)
    try:
        with SteadyLoad(server.target) as load, server.channel() as channel:
            time.sleep(0.5)
            for i in range(20):
                response = _reload(channel, bundles[(i + 1) % 2])
                assert response.bundle_id != response.previous_bundle_id
            time.sleep(0.5)
        assert load.failures == []
        assert load.ok > 50
        assert len(load.bundle_ids) == 2  # answers really came from both bundles
    finally:
        server.stop()


def test_tampered_or_incomplete_bundle_is_refused_and_the_old_one_keeps_serving(minilm_bundle, tmp_path):
    tampered = _second_bundle(minilm_bundle, tmp_path, "tampered")
    (tampered / "thresholds.json").write_text((tampered / "thresholds.json").read_text().replace("0.", "0.9", 1))
    incomplete = _second_bundle(minilm_bundle, tmp_path, "incomplete")
    (incomplete / "model.onnx").unlink()
    server = ServerProcess(minilm_bundle, "--admin-token", TOKEN)
    try:
        with server.channel() as channel:
            for bad, reason in ((tampered, "thresholds.json does not match its sha256"), (incomplete, "missing")):
                with pytest.raises(grpc.RpcError) as err:
                    _reload(channel, bad)
                assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert reason in err.value.details() and "still serving" in err.value.details()
            response = pb_grpc.BrandSafetyStub(channel).Classify(site_request("a.example"), timeout=10)
            assert response.bundle_id == server.bundle_id
        time.sleep(0.2)
        assert "refused" in server.output() and "does not match its sha256" in server.output()
    finally:
        server.stop()


def test_admin_rpc_needs_the_token_and_is_absent_without_one(minilm_bundle):
    with_token = ServerProcess(minilm_bundle, "--admin-token", TOKEN)
    without = ServerProcess(minilm_bundle)
    try:
        with with_token.channel() as channel:
            for token in (None, "wrong"):
                with pytest.raises(grpc.RpcError) as err:
                    _reload(channel, token=token)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with without.channel() as channel:
            with pytest.raises(grpc.RpcError) as err:
                _reload(channel)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        with_token.stop()
        without.stop()


def test_sighup_reloads_the_bundle_path_and_metrics_show_it(minilm_bundle, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(minilm_bundle, live)
    server = ServerProcess(live, "--metrics-port", "0")
    try:
        port = int(next(l for l in server.log if "metrics on" in l).split("metrics on :")[1].split("/")[0])
        replacement = _second_bundle(minilm_bundle, tmp_path, "next")
        shutil.rmtree(live)
        shutil.copytree(replacement, live)
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        with server.channel() as channel:
            stub = pb_grpc.BrandSafetyStub(channel)
            while stub.Classify(site_request("a.example"), timeout=10).bundle_id == server.bundle_id:
                assert time.time() < deadline, "SIGHUP did not swap the bundle"
                time.sleep(0.2)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert f'brandsafe_bundle_info{{bundle_id="{server.bundle_id}-next"}} 1.0' in metrics
        assert 'brandsafe_bundle_reloads_total{result="ok"} 2.0' in metrics  # start-up load + SIGHUP
    finally:
        server.stop()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=brandsafe-test-ca", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", "/CN=localhost", cwd=d)
        (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


def test_mutual_tls(minilm_bundle, certificates):
    d = certificates
    server = ServerProcess(minilm_bundle, "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key"),
                           "--tls-client-ca", str(d / "ca.pem"))
    try:
        with_client_cert = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes(), (d / "client.key").read_bytes(),
                                                        (d / "client.pem").read_bytes())
        with grpc.secure_channel(server.target, with_client_cert) as channel:
            assert pb_grpc.BrandSafetyStub(channel).Classify(site_request("a.example"), timeout=10).bundle_id
        no_client_cert = grpc.ssl_channel_credentials((d / "ca.pem").read_bytes())
        with grpc.secure_channel(server.target, no_client_cert) as channel:
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.BrandSafetyStub(channel).Classify(site_request("a.example"), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with server.channel() as plaintext:
            with pytest.raises(grpc.RpcError):
                pb_grpc.BrandSafetyStub(plaintext).Classify(site_request("a.example"), timeout=5)
    finally:
        server.stop()


def test_a_server_without_a_valid_bundle_exits_with_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError) as err:
        ServerProcess(tmp_path / "empty")
    assert "no manifest.json" in str(err.value)


def test_health_is_not_serving_until_the_bundle_is_loaded_and_warmed(minilm_bundle):
    import asyncio

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from brandsafe.service.metrics import Metrics
    from brandsafe.service.server import ServerConfig, start
    from prometheus_client import CollectorRegistry
    from redis_server import free_port

    port = free_port()
    config = ServerConfig(bundle=minilm_bundle, port=port, max_batch=128, intra_op_threads=1)  # long warm-up

    async def main():
        starting = asyncio.ensure_future(start(config, Metrics(CollectorRegistry())))
        seen = []
        # Probes start before the port is bound; after those refusals a channel waits out its
        # reconnect backoff (1 s and growing by default), which can outlast the whole warm-up and
        # hide NOT_SERVING. Reconnect within 50 ms, as a probe on a fresh connection would.
        retry_fast = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
                      ("grpc.max_reconnect_backoff_ms", 50)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=retry_fast) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not starting.done():
                try:
                    status = (await health.Check(health_pb2.HealthCheckRequest(service="brandsafe.v1.BrandSafety"),
                                                 timeout=1)).status
                    if not seen or seen[-1] != status:
                        seen.append(status)
                except grpc.aio.AioRpcError:
                    pass  # not listening yet
                await asyncio.sleep(0.01)
            running = await starting
            seen.append((await health.Check(health_pb2.HealthCheckRequest(), timeout=1)).status)
            await running.stop()
        return seen

    seen = asyncio.run(main())
    assert seen[0] == health_pb2.HealthCheckResponse.NOT_SERVING
    assert seen[-1] == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_lets_in_flight_calls_finish(minilm_bundle):
    """A stream that is being answered when SIGTERM arrives gets every answer before the server exits."""
    server = ServerProcess(minilm_bundle, "--grace-seconds", "10", "--cache-entries", "0")
    answering = threading.Event()

    def requests():
        for i in range(40):
            yield site_request(f"inflight{i}.example/p", request_id=str(i))
        answering.wait(timeout=30)  # the call is in flight: the server has answered part of it
        server.proc.send_signal(signal.SIGTERM)

    responses = []
    with server.channel() as channel:
        for response in pb_grpc.BrandSafetyStub(channel).ClassifyStream(requests(), timeout=60):
            responses.append(response)
            answering.set()
    assert sorted(int(r.id) for r in responses) == list(range(40))
    assert all(r.bundle_id and not r.HasField("error") for r in responses)
    assert server.proc.wait(timeout=30) == 0
