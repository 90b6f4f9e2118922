"""The GPU test machine's one run (loadtest/gpu/, issue 28), rehearsed on CPU: the dry run goes
through every part the GPU run measures, the carried wheels fit, and the run refuses what it cannot
do. .ci/run also runs the dry run on transformers 5 with only the machine's preinstalled packages
plus the carried wheels."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO

GPU = REPO / "loadtest" / "gpu"


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHON": sys.executable, **extra}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("gpu-check")
    empty = tmp_path_factory.mktemp("no-wheels")
    done = subprocess.run([str(GPU / "device_check.sh"), "--dry-run", str(out)], capture_output=True, text=True,
                          env=_env(WHEELS=str(empty)), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text(), done.stdout


def test_the_dry_run_measures_every_part_with_a_tiny_qwen3(dry_run):
    record, _, stdout = dry_run
    assert "dry run on this environment's brandsafe" in stdout  # no carried wheels given
    assert record["model"].startswith("Qwen3 tiny") and record["transformers"]
    assert record["parts"] == sorted(["latency", "ladder", "serve", "train"])
    assert record["parity"]["passed"] and record["parity"]["rows"] == 8
    assert set(record["latency"]) == {"1", "8", "32"} and all(v["p50_ms"] > 0 for v in record["latency"].values())
    assert record["in_process"]["ladder"]["steps"] and record["in_process"]["ladder"]["budget_ms"] == 10.0
    served = record["serve"]
    assert "--backend" in served["argv"] and served["argv"][served["argv"].index("--backend") + 1] == "torch"
    assert served["argv"][served["argv"].index("--cache-entries") + 1] == "0"  # every request reaches the model
    assert sum(step["ok"] for step in served["ladder"]["steps"]) > 0
    train = record["train"]
    assert train["recipe"] == "qwen3-4b-gpu" and train["steps"] == 3 and train["tokens"] == 96
    assert train["gradient_checkpointing"] and train["lora_r"] == 16 and train["tokens_per_s"] > 0
    assert any("dry run" in note for note in record["notes"])
    # The roofline the GPU numbers are read against: Qwen3-4B on an H100, not the tiny model's.
    assert 2.1 < record["roofline"]["batch1_floor_ms"] < 2.3


def test_the_dry_run_writes_the_markdown_the_results_slot_takes(dry_run):
    record, md, _ = dry_run
    for heading in ("## Latency, torch:cpu:float32, 64 tokens", "## Max rate at p99 <= 10 ms",
                    "## Training: recipe qwen3-4b-gpu"):
        assert heading in md
    assert "| 32 |" in md and "served (`brandsafe serve --backend torch`" in md
    assert f"transformers {record['transformers']}" in md


def test_a_gpu_run_without_carried_wheels_stops_before_measuring(tmp_path):
    done = subprocess.run([str(GPU / "device_check.sh"), str(tmp_path / "out")], capture_output=True, text=True,
                          env=_env(WHEELS=str(tmp_path)), timeout=60)
    assert done.returncode == 2 and "run loadtest/gpu/fetch_wheels.sh" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a host without CUDA")
def test_a_full_run_needs_cuda(capsys):
    from brandsafe.loadtest import gpu_check

    with pytest.raises(SystemExit) as exited:
        gpu_check.main(["/tmp/never-written"])
    assert exited.value.code == 2 and "--dry-run" in capsys.readouterr().err


def test_an_incomplete_record_names_what_is_missing():
    from brandsafe.loadtest import gpu_check

    record = {"parts": ["latency", "ladder", "serve", "train"], "latency": {"1": {}},
              "in_process": {"ladder": {"steps": [{}]}}, "serve": {"ladder": {"steps": [{"ok": 0}, {"ok": 0}]}},
              "parity": {"passed": False}}
    assert gpu_check.missing(record) == ["served ladder (no request answered)", "training steps",
                                         "parity: the torch backend disagrees with transformers' forward"]


def _fetch(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GPU / "fetch_wheels.sh"), str(tmp_path / "wheels")], capture_output=True, text=True,
                          env=_env(PYTHON=sys.executable, **env), timeout=300)


def test_the_carried_wheels_cover_the_list_for_cpython_312_and_fit_in_64_mib(tmp_path):
    done = _fetch(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wheels = sorted(p.name for p in (tmp_path / "wheels").glob("*.whl"))
    listed = [line.split("#")[0].split("==")[0].strip() for line in (GPU / "wheels.txt").read_text().splitlines()]
    names = {re.sub(r"[-_.]+", "-", w.split("-")[0]).lower() for w in wheels}
    assert {name for name in listed if name} | {"brandsafe"} == names
    assert any(w.startswith("brandsafe-") and w.endswith("-py3-none-any.whl") for w in wheels)  # no C extension
    for wheel in wheels:  # each one installs on the machine's CPython 3.12, x86_64 Linux
        python, abi, platform = wheel[:-4].split("-")[-3:]
        assert python in ("py3", "py2.py3", "cp312") or (abi == "abi3" and python.startswith("cp3"))
        assert platform == "any" or "x86_64" in platform and "manylinux" in platform
    total = sum(p.stat().st_size for p in (tmp_path / "wheels").glob("*.whl"))
    assert total <= 64 * 2**20
    assert re.search(rf"^total\s+{total} \(", done.stdout, re.M)


def test_the_wheel_check_fails_when_the_set_outgrows_the_limit(tmp_path):
    done = _fetch(tmp_path, WHEELS_LIMIT_MIB="1")
    assert done.returncode == 1 and "over the 1 MiB that may travel with the working tree" in done.stderr
