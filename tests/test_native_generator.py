"""The C++ open-loop generator (loadtest/native) against the bare echo peer: it builds, sends the
schedule it is given, and reports a step the Python harness can read. Skipped where it cannot be
built (no g++ / pkg-config / libgrpc++-dev): nothing else in the project needs it. No timing
thresholds a busy machine could break: only counts, orderings and sanity bounds."""
import json
import math
import subprocess
import sys

import pytest

from brandsafe.loadtest import native_generator, openloop
from brandsafe.loadtest.compare import ServerProcess
from brandsafe.v1 import brandsafe_pb2 as pb


@pytest.fixture(scope="module")
def binary():
    try:
        return native_generator.build_native()
    except native_generator.NativeUnavailable as exc:
        pytest.skip(f"native generator not buildable here: {exc}")


@pytest.fixture(scope="module")
def requests_file(tmp_path_factory):
    requests = [pb.ClassifyRequest(id=f"{i:032x}", site=pb.Site(page=f"https://site{i % 7}.example/a?b={i}"))
                for i in range(50)]
    return native_generator.write_requests([r.SerializeToString() for r in requests],
                                      tmp_path_factory.mktemp("native") / "requests.bin")


def _echo(tmp_path, response: pb.ClassifyResponse) -> ServerProcess:
    response_file = tmp_path / "response.bin"
    response_file.write_bytes(response.SerializeToString())
    return ServerProcess("echo", [sys.executable, "-m", "brandsafe.loadtest.peers.echo_server", "--response-file",
                                  str(response_file), "--port", "0"], tmp_path, ready_timeout_s=60)


def test_one_second_step_against_the_echo_peer_reports_sane_json(binary, requests_file, tmp_path):
    echo = _echo(tmp_path, pb.ClassifyResponse(id="x", decision=pb.ALLOW, bundle_id="b", score_source="local"))
    try:
        out = subprocess.run([str(binary), "--target", echo.target, "--requests", str(requests_file), "--rate", "200",
                              "--seconds", "1", "--arrivals", "constant",
                              "--fallback-field", str(native_generator.fallback_field_number())],
                             capture_output=True, text=True, timeout=60)
    finally:
        echo.stop()
    assert out.returncode == 0, out.stderr
    step = json.loads(out.stdout)
    assert step["offered_rps"] == 200 and step["sent"] == 200 and step["ok"] == 200 and step["errors"] == {}
    lat = step["latency_ms"]
    assert set(lat) == {"p50", "p95", "p99", "p99.9"}
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p99.9"] < 1000  # within the 1 s deadline
    assert 0.9 < step["wall_s"] < 10 and 0 < step["achieved_rps"] <= 200 / 0.9
    assert step["send_lag_p99_ms"] >= 0 and 0 <= step["generator_cpu_pct"] < 400
    result = native_generator.step_result(step)  # what the harness makes of it
    assert result.within(1000.0) and result.server_cpu_pct is None


def test_driven_steps_replay_the_given_schedule_and_count_statuses(binary, requests_file, tmp_path):
    """Through the --serve protocol cache_bench uses: a fallback answer is not a verdict, a wrong
    method is counted by its status, and a step sends exactly the offsets it was given."""
    echo = _echo(tmp_path, pb.ClassifyResponse(id="x", fallback=True, fallback_reason="test"))
    try:
        with native_generator.NativeGenerator(echo.target, requests_file, binary=binary) as gen:
            assert gen.info["ready"] and gen.info["requests"] == 50
            offsets = openloop.arrival_offsets(300, 0.5, "poisson", seed=3)
            fallback = gen.step(offsets, 300, first=45, timeout_s=1.0, server_pid=echo.pid)
            burst = gen.raw_step([0.0] * 40, 40, timeout_s=1.0)  # all due at once: sent back to back
        with native_generator.NativeGenerator(echo.target, requests_file, method="/brandsafe.v1.BrandSafety/Nope",
                                         check_fallback=False, binary=binary) as gen:
            unknown = gen.step([0.0, 0.01, 0.02], 300, timeout_s=1.0)
    finally:
        echo.stop()
    assert fallback.sent == len(offsets) and fallback.ok == 0 and fallback.errors == {"FALLBACK": len(offsets)}
    assert fallback.latency_ms["p99"] == math.inf and not fallback.within(1e9)  # failures are infinitely late
    assert fallback.server_cpu_pct is not None and fallback.server_cpu_pct >= 0
    assert burst["sent"] == 40 and burst["errors"] == {"FALLBACK": 40}
    assert unknown.sent == 3 and unknown.errors == {"UNIMPLEMENTED": 3}


def test_late_counts_the_requests_over_the_threshold_and_every_failure(binary, requests_file, tmp_path):
    """--late-ms: a threshold no answer can beat counts them all, one none can miss counts none, and
    a failed call is late whatever the threshold: the counts the pooled rule adds up."""
    echo = _echo(tmp_path, pb.ClassifyResponse(id="x", decision=pb.ALLOW, bundle_id="b", score_source="local"))
    try:
        offsets = [0.002 * k for k in range(60)]
        with native_generator.NativeGenerator(echo.target, requests_file, binary=binary, late_ms=1e-6) as gen:
            all_late = gen.step(offsets, 500, timeout_s=1.0)
        with native_generator.NativeGenerator(echo.target, requests_file, binary=binary, late_ms=900.0) as gen:
            none_late = gen.step(offsets, 500, timeout_s=1.0)
        with native_generator.NativeGenerator(echo.target, requests_file, method="/brandsafe.v1.BrandSafety/Nope",
                                              check_fallback=False, binary=binary, late_ms=900.0) as gen:
            failed = gen.step(offsets[:5], 500, timeout_s=1.0)
        with native_generator.NativeGenerator(echo.target, requests_file, binary=binary) as gen:
            uncounted = gen.step(offsets[:5], 500, timeout_s=1.0)
    finally:
        echo.stop()
    assert (all_late.ok, all_late.late, all_late.late_ms) == (60, 60, 1e-6)
    assert (none_late.ok, none_late.late, none_late.late_ms) == (60, 0, 900.0)
    assert failed.errors == {"UNIMPLEMENTED": 5} and failed.late == 5
    assert uncounted.late is None and uncounted.late_ms is None  # no threshold given: nothing claimed


def test_a_threshold_that_is_not_positive_is_refused(binary, requests_file):
    out = subprocess.run([str(binary), "--target", "127.0.0.1:1", "--requests", str(requests_file), "--serve",
                          "--late-ms", "0"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "--late-ms must be > 0" in out.stderr


def test_bench_falls_back_to_python_when_native_cannot_be_built(monkeypatch, capsys):
    def unavailable(force=False):
        raise native_generator.NativeUnavailable("no C++ compiler (g++) on PATH")

    monkeypatch.setattr(native_generator, "build_native", unavailable)
    assert native_generator.pick_generator("auto") == "python"
    assert "falling back to the Python generator" in capsys.readouterr().err
    assert native_generator.pick_generator("python") == "python"
    with pytest.raises(SystemExit):
        native_generator.pick_generator("native")
