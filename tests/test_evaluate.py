"""`brandsafe evaluate`: per-profile tables on real labelled rows, and an HTML report that a real
browser (headless Chromium) renders."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import REPO

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,2000"]


@pytest.fixture(scope="module")
def report(minilm_bundle, small_train_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate")
    result = subprocess.run([sys.executable, "-m", "brandsafe", "evaluate", "--bundle", str(minilm_bundle),
                             "--data", str(small_train_file), "--html", str(out / "report.html"),
                             "--json", str(out / "report.json")],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    return {"dir": out, "stdout": result.stdout, "json": json.loads((out / "report.json").read_text())}


def test_tables_count_every_row_once_per_profile_and_category(report, small_train_file):
    rows = [json.loads(line) for line in small_train_file.read_text().splitlines()]
    per_label = Counter(label for row in rows for label in row["labels"])
    per_source = Counter(f"{row['source']}:{row['source_label']}" for row in rows)
    tables = report["json"]["tables"]
    assert set(tables) == {"default", "strict", "news-publisher-friendly"}
    for pid, table in tables.items():
        assert table["rows"] == len(rows)
        assert table["caught"] + table["missed"] == table["should_block"]
        assert table["should_block"] + table["safe"] == len(rows)
        for category in table["categories"]:
            assert category["rows"] == per_label.get(category["category"], 0), (pid, category)
            assert category["blocked"] + category["missed"] == category["rows"]
        assert {name: s["rows"] for name, s in table["sources"].items()} == dict(per_source)
    # strict also blocks gambling: it should block every row the default should, and the gambling ones.
    assert tables["strict"]["should_block"] == tables["default"]["should_block"] + per_label["Casinos & Gambling"]
    assert "profile strict: blocks" in report["stdout"]


def test_report_holds_each_plot_inline(report):
    page = (report["dir"] / "report.html").read_text()
    for figure in ("pr", "reliability", "confusion", "false-blocks"):
        start = page.index(f'<figure id="{figure}">')
        assert page[start:start + 200].count("<svg") == 1, figure
    assert "thresholds marked" in page and "http://" not in page.split("<svg", 1)[0]  # nothing fetched


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="headless Chromium is not installed (Debian: apt-get install chromium; .ci/run does)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    (report["dir"] / "report.html").as_uri()], capture_output=True, timeout=180, check=True)
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    # A rendered page: text, tables and plots, not a blank or error page (those are one colour).
    ink = (pixels[..., :3].mean(axis=2) < 0.6).mean()
    assert ink > 0.02, ink
    blue = ((pixels[..., 2] > 0.5) & (pixels[..., 0] < 0.4)).sum()  # the precision-recall curves' colour
    assert blue > 200, blue
