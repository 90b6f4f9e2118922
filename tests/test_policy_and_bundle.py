import json
import shutil

import numpy as np
import pytest

from brandsafe.bundle import BundleError, BundleInfo, verify, write_manifest
from brandsafe.labels import Label, LabelSet
from brandsafe.rendering import SCHEMA_VERSION
from brandsafe.service.policy import DEFAULT_POLICY_FILE, PolicyError, load_policies

LABELS = LabelSet([
    Label("Rm3SiT", "Adult & Explicit Sexual Content", custom=False, sensitive=True),
    Label("181", "Casinos & Gambling", custom=False, sensitive=False),
    Label("Misinformation", "Misinformation", custom=True, sensitive=False),
    Label("XtODT3", "Crime & Harmful Acts to Individuals, Society & Human Right Violations", custom=False,
          sensitive=True),
    Label("I4GWl6", "Death, Injury, or Military Conflict", custom=False, sensitive=True),
])
BUNDLE_THRESHOLDS = {"Rm3SiT": 0.4, "181": 0.6, "Misinformation": 0.7, "XtODT3": 0.5, "I4GWl6": 0.5}


def test_default_profile_blocks_sensitive_and_custom_at_bundle_thresholds():
    policies = load_policies(DEFAULT_POLICY_FILE, LABELS, BUNDLE_THRESHOLDS)
    default = policies["default"]
    assert default.decide(np.array([0.39, 0.99, 0.69, 0.0, 0.0])) == []  # gambling is not blocked by default
    reasons = default.decide(np.array([0.41, 0.0, 0.9, 0.0, 0.0]))
    assert [LABELS.labels[r.label_index].id for r in reasons] == ["Misinformation", "Rm3SiT"]
    assert reasons[1].threshold == pytest.approx(0.4)
    strict = policies["strict"]
    assert [r.label_index for r in strict.decide(np.array([0.25, 0.61, 0.0, 0.0, 0.0]))] == [1, 0]  # adult at 0.2
    assert default.fallback == "allow" and strict.fallback == "block"
    news = policies["news-publisher-friendly"]
    assert news.decide(np.array([0.0, 0.0, 0.0, 0.9, 0.9])) == []  # crime and conflict reporting allowed
    assert len(default.decide(np.array([0.0, 0.0, 0.0, 0.9, 0.9]))) == 2


def test_policy_file_errors_name_the_profile(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text('[profiles.default]\nblock = ["Nonexistent Category"]\n')
    with pytest.raises(PolicyError, match="profile 'default'.*Nonexistent Category"):
        load_policies(bad, LABELS, BUNDLE_THRESHOLDS)
    bad.write_text('[profiles.other]\nblock = []\n')
    with pytest.raises(PolicyError, match=r"\[profiles.default\]"):
        load_policies(bad, LABELS, BUNDLE_THRESHOLDS)


def test_manifest_detects_tampering_missing_and_extra_files(minilm_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(minilm_bundle, copy)
    verify(copy)
    (copy / "thresholds.json").write_text((copy / "thresholds.json").read_text().replace("0.", "0.0", 1))
    with pytest.raises(BundleError, match="thresholds.json does not match its sha256"):
        verify(copy)
    shutil.copy2(minilm_bundle / "thresholds.json", copy / "thresholds.json")
    (copy / "stray.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="not in the manifest"):
        verify(copy)
    (copy / "stray.bin").unlink()
    (copy / "labels.json").unlink()
    with pytest.raises(BundleError, match="missing: labels.json"):
        verify(copy)


def test_bundle_contents_and_unknown_schema_is_refused(minilm_bundle, tmp_path):
    names = {p.name for p in minilm_bundle.iterdir()}
    assert {"model.onnx", "tokenizer.json", "labels.json", "calibration.json", "thresholds.json", "report.json",
            "report.md", "parity.json", "bundle.json", "manifest.json"} <= names
    info = BundleInfo.load(minilm_bundle)
    assert info.schema_version == SCHEMA_VERSION
    copy = tmp_path / "b"
    shutil.copytree(minilm_bundle, copy)
    raw = json.loads((copy / "bundle.json").read_text())
    raw["schema_version"] = "brandsafe-text/999"
    (copy / "bundle.json").write_text(json.dumps(raw))
    write_manifest(copy)
    with pytest.raises(BundleError, match="brandsafe-text/999"):
        BundleInfo.load(copy)
