"""The training package runs unchanged under `accelerate launch` (two CPU processes, DDP/gloo)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_two_process_accelerate_launch_trains_and_writes_one_run(tiny_qwen3_recipe, small_train_file,
                                                                   taxonomy_path, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "brandsafe.training", "--recipe", str(tiny_qwen3_recipe),
         "--data", str(small_train_file), "--taxonomy", str(taxonomy_path), "--max-steps", "4", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["optimizer_steps"] == 4
    # Both ranks' validation logits were gathered without padding duplicates, or evaluation (which
    # lines them up with the rows) would have failed above.
    assert report["validation_rows"] == sum(1 for _ in (out / "validation.jsonl").open())
    assert (out / "merged" / "model.safetensors").is_file()
