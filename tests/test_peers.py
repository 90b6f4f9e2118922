"""The load-test peers serve the same answers as the service they are compared with, so a peer
that only fails fast can never pass for a fast one."""
import re
import subprocess
import sys

import grpc

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import REPO


def test_the_naive_peer_answers_exactly_as_the_service_does(minilm_bundle, minilm_server):
    naive = subprocess.Popen([sys.executable, "-m", "brandsafe.loadtest.peers.naive_server", "--bundle",
                              str(minilm_bundle), "--threads", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        line = naive.stdout.readline()
        match = re.search(r"serving \S+ on (127\.0\.0\.1:\d+)", line)
        assert match, line + naive.stdout.read() if naive.poll() is not None else line
        # A page no other test sends, so the service scores it with the model too.
        request = site_request("https://peers.example/weekend/results", title="Weekend football results",
                               request_id="peer-1", imp_id="3")
        with grpc.insecure_channel(match.group(1)) as channel:
            from_naive = pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=30)
        with minilm_server.channel() as channel:
            from_service = pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=30)
        assert from_service.score_source == "model" and from_service.categories
        assert from_naive == from_service
    finally:
        naive.terminate()
        naive.wait(timeout=30)


def test_the_loaded_echo_warms_the_bundle_then_answers_its_fixed_bytes(minilm_bundle, tmp_path):
    """echo_control's second peer: the bare echo's handler in a process that loaded the bundle."""
    import json

    from brandsafe.loadtest.compare import ServerProcess
    from brandsafe.loadtest.echo_control import sample_response

    bundle_id = json.loads((minilm_bundle / "bundle.json").read_text())["bundle_id"]
    response_file = tmp_path / "response.bin"
    response_file.write_bytes(sample_response(bundle_id))
    loaded = ServerProcess("loaded", [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                                      str(response_file), "--port", "0", "--bundle", str(minilm_bundle)],
                           tmp_path, ready_timeout_s=120)
    try:
        with grpc.insecure_channel(loaded.target) as channel:
            answer = channel.unary_unary("/brandsafe.v1.BrandSafety/Classify")(b"anything", timeout=10)
    finally:
        loaded.stop()
    assert f"echo: loaded bundle {bundle_id} (unused)" in loaded.log.read_text()
    assert answer == sample_response(bundle_id) and len(answer) > 150
