"""deploy/: the Kubernetes manifests pass the API schema and agree with the image and the CLI; the
worker count follows the container's CPU quota; the container health check works with TLS on."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, ServerProcess

KUBERNETES = REPO / "deploy" / "kubernetes"
K8S_VERSION = "1.31.0"  # the oldest still-supported minor release at the time of writing


def documents() -> list[dict]:
    return [d for f in ("brandsafe.yaml", "redis.yaml") for d in yaml.safe_load_all((KUBERNETES / f).read_text()) if d]


def find(kind: str, name: str) -> dict:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def dockerfile_json(instruction: str) -> list[str]:
    """The exec-form array of a Dockerfile instruction (ENTRYPOINT, or the HEALTHCHECK's CMD)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith(instruction))
    return json.loads(line[line.index("["):])


def test_every_manifest_passes_the_kubernetes_schema_strictly():
    import kubernetes_validate

    docs = documents()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    broken = copy.deepcopy(find("Deployment", "brandsafe"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["prot"] = 50051
    with pytest.raises(kubernetes_validate.ValidationError):  # the check can fail
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_agrees_with_the_image_and_the_server():
    from brandsafe.cli import _parser

    pod = find("Deployment", "brandsafe")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # The image's entrypoint plus the manifest's args is a valid `brandsafe serve` command line.
    entrypoint = dockerfile_json("ENTRYPOINT")
    args = _parser().parse_args(entrypoint[1:] + container["args"])
    assert args.command == "serve" and args.port == 50051 and args.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": args.port, "metrics": args.metrics_port}
    # Native gRPC probes on the serving port; readiness asks for the BrandSafety service by name.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == args.port, probe
    assert container["readinessProbe"]["grpc"]["service"] == "brandsafe.v1.BrandSafety"
    # The pod outlives the preStop pause plus the server's drain.
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + args.grace_seconds + 1
    # Whole CPUs, requests = limits: the quota the server sizes its workers by.
    resources = container["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] and float(resources["limits"]["cpu"]).is_integer()
    # The Redis URL names the Redis Service; the headless Service exposes the pod's ports.
    redis = find("Service", "brandsafe-redis")
    assert args.redis_url == f"redis://{redis['metadata']['name']}:{redis['spec']['ports'][0]['port']}/0"
    service = find("Service", "brandsafe")
    assert service["spec"]["clusterIP"] == "None"
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == find("Deployment", "brandsafe")["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "400000 100000\n"}, 4.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 2.5),
    ({}, None),
])
def test_cgroup_cpu_quota_v1_and_v2(tmp_path, files, expected):
    from brandsafe.service.cpus import available_cpus, cgroup_cpu_quota

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == expected
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (affinity if expected is None else max(1, min(affinity, int(expected))))


def test_a_quota_of_one_cpu_sizes_the_server_to_one_worker(tmp_path, monkeypatch):
    from brandsafe.service import cpus, server

    (tmp_path / "cpu.max").write_text("100000 100000\n")
    monkeypatch.setattr(cpus, "CGROUP_ROOT", tmp_path)
    config = server.ServerConfig(bundle=tmp_path)
    assert server.inference_workers(config, on_device=False) == 1
    assert server.inference_threads(config) == 1


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=brandsafe-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=brandsafe.example")
    (d / "server.ext").write_text("subjectAltName=DNS:brandsafe.example\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return d


def test_the_container_health_check_works_with_tls_on(minilm_bundle, certificates):
    d = certificates
    # As the container runs it: TLS from the environment, no --tls-* flags.
    env = {**os.environ, "BRANDSAFE_TLS_CERT": str(d / "server.pem"), "BRANDSAFE_TLS_KEY": str(d / "server.key")}
    server = ServerProcess(minilm_bundle, env=env)
    try:
        assert "TLS" in server.output()
        health = dockerfile_json("HEALTHCHECK")  # CMD ["brandsafe", "-q", "health", ...]
        assert health[:3] == ["brandsafe", "-q", "health"]
        command = [sys.executable, "-m", "brandsafe", *health[1:], "--target", server.target]
        with_ca = {**env, "BRANDSAFE_TLS_CA": str(d / "ca.pem"), "BRANDSAFE_TLS_SERVER_NAME": "brandsafe.example"}
        ok = subprocess.run(command, capture_output=True, text=True, env=with_ca, cwd=REPO, timeout=60)
        assert ok.returncode == 0, ok.stderr
        plaintext = subprocess.run(command, capture_output=True, text=True, env=os.environ, cwd=REPO, timeout=60)
        assert plaintext.returncode == 1 and "Traceback" not in plaintext.stderr
    finally:
        server.stop()


def test_the_slim_install_leaves_out_training_and_the_registry():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    for heavy in ("torch", "transformers", "peft", "mlflow", "optimum", "accelerate", "scikit-learn"):
        assert not re.search(rf"(^|\s|\"){heavy}\b", base), heavy
    extras = project["optional-dependencies"]
    assert "brandsafe[full]" in extras["dev"]  # ./dev install and CI still get everything
    assert set(re.findall(r"\[(.*)\]", extras["full"][0])[0].split(",")) == {"train", "release", "report"}
    assert "torch==2.13.0" in extras["train"] and any(d.startswith("mlflow") for d in extras["release"])


SERVING_IMPORTS = """
import sys
import brandsafe.cli, brandsafe.service.server, brandsafe.scoring, brandsafe.retrieval, brandsafe.explain_text
from brandsafe.cli import _parser
_parser()  # every command registers without importing training code
heavy = sorted(m for m in ("torch", "transformers", "peft", "mlflow", "optimum", "sklearn", "matplotlib")
               if m in sys.modules)
print(",".join(heavy))
"""


def test_serving_imports_nothing_from_the_full_install():
    result = subprocess.run([sys.executable, "-c", SERVING_IMPORTS], capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
