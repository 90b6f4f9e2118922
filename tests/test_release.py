"""Releases: the MLflow registry (real sqlite store), the promotion gate and the alias follower.

Gate tests loosen the latency bound on purpose: tests never assert on timing (the CPU is shared),
and the p99 rule itself is covered by `compare` on fixed numbers.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from brandsafe.bundle import BundleError, BundleInfo, verify, write_manifest
from brandsafe.release.follow import AliasFollower
from brandsafe.release.gate import (CANDIDATE, EVALUATED, PROMOTED, REJECTED, IllegalTransition, Thresholds,
                                    check_transition, compare, promote, transition)
from brandsafe.release.registry import CHALLENGER, CHAMPION, Registry, RegistryError

from conftest import REPO, ServerProcess

# Latency and absolute floors out of the way (see the module docstring); the comparisons that
# matter here are macro-F1, false-block rate and citations.
GATE = Thresholds(p99_ratio=100.0, p99_slack_ms=10_000.0, min_macro_f1=0.0, max_false_block_rate=1.0)

KNOWLEDGE = [
    {"id": "site:lucky-spins.example", "title": "lucky-spins.example",
     "text": "An online casino with slot machines, roulette and sports betting.", "keys": ["lucky-spins.example"]},
    {"id": "site:quiet-garden.example", "title": "quiet-garden.example",
     "text": "A gardening blog about tomatoes, roses and compost.", "keys": ["quiet-garden.example"]},
]
CITATIONS = [
    {"url": "https://lucky-spins.example/lobby", "title": "", "labels": ["Casinos & Gambling"],
     "passage_id": "site:lucky-spins.example"},
    {"url": "https://quiet-garden.example/", "title": "", "labels": [], "passage_id": "site:quiet-garden.example"},
]


@pytest.fixture(scope="module")
def eval_file(small_train_file, tmp_path_factory) -> Path:
    """A slice of real labelled rows (label names, as the data files write them)."""
    lines = small_train_file.read_text().splitlines()[::3][:150]
    path = tmp_path_factory.mktemp("eval") / "eval.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(str(tmp_path / "registry"))


@pytest.fixture(scope="module")
def kb_index(tmp_path_factory) -> Path:
    from brandsafe.retrieval import build_index

    root = tmp_path_factory.mktemp("kb")
    (root / "kb.jsonl").write_text("".join(json.dumps(p) + "\n" for p in KNOWLEDGE))
    build_index(root / "kb.jsonl", root / "index")
    return root / "index"


def variant(bundle: Path, dst: Path, suffix: str, threshold: float | dict | None = None) -> Path:
    """A copy of a bundle under a new bundle id, optionally with its thresholds replaced (one value for
    all, or per label), re-sealed with a fresh manifest: to the registry, a different release."""
    shutil.copytree(bundle, dst)
    info = json.loads((dst / "bundle.json").read_text())
    info["bundle_id"] += suffix
    (dst / "bundle.json").write_text(json.dumps(info, indent=2))
    if threshold is not None:
        thresholds = json.loads((dst / "thresholds.json").read_text())
        thresholds["thresholds"] = {k: threshold[k] if isinstance(threshold, dict) else threshold
                                    for k in thresholds["thresholds"]}
        (dst / "thresholds.json").write_text(json.dumps(thresholds, indent=2))
    write_manifest(dst)
    return dst


@pytest.fixture(scope="module")
def champion_bundle(minilm_bundle, eval_file, tmp_path_factory) -> Path:
    """The tiny session bundle with thresholds fitted to the eval rows: a 12-step model flags next to
    nothing at its own thresholds, and a champion with macro-F1 0 could not be beaten by a worse one."""
    import numpy as np

    from brandsafe.release.evaluation import label_matrix, read_rows
    from brandsafe.service.model import LoadedBundle
    from brandsafe.training.evaluate import choose_thresholds

    model = LoadedBundle(minilm_bundle, intra_op_threads=1)
    try:
        rows = read_rows(eval_file, model.labels)
        probs = model.score([r.text for r in rows])
        fitted = choose_thresholds(probs, label_matrix(rows, model.labels), min_support=1)
        ids = [l.id for l in model.labels]
    finally:
        model.close()
    return variant(minilm_bundle, tmp_path_factory.mktemp("champion") / "bundle", "-tuned",
                   {i: float(t) for i, t in zip(ids, np.asarray(fitted))})


# -- the state machine ------------------------------------------------------------------------------

def test_state_machine_allows_only_the_gate_path():
    for current, new in [(CANDIDATE, EVALUATED), (EVALUATED, PROMOTED), (EVALUATED, REJECTED)]:
        check_transition(current, new)
    for current, new in [(CANDIDATE, PROMOTED), (CANDIDATE, REJECTED), (REJECTED, PROMOTED), (PROMOTED, EVALUATED),
                         (EVALUATED, CANDIDATE), (PROMOTED, REJECTED), ("", EVALUATED)]:
        with pytest.raises(IllegalTransition):
            check_transition(current, new)


def test_compare_applies_every_threshold():
    champion = {"macro_f1": 0.60, "false_block_rate_at_90_recall": 0.30, "p99_ms": 10.0, "index_version": ""}
    same = dict(champion)
    assert compare(same, champion, Thresholds()) == []
    assert compare(same, None, Thresholds()) == []  # first release: floors only

    def reasons(**changes):
        return " | ".join(compare({**champion, **changes}, champion, Thresholds()))

    assert "macro-F1 drops" in reasons(macro_f1=0.59)
    assert "false-block rate rises" in reasons(false_block_rate_at_90_recall=0.31)
    assert "p99 latency" in reasons(p99_ms=15.1)            # bound: max(1.5 × 10, 10 + 2) = 15
    assert reasons(p99_ms=14.9) == ""
    assert reasons(p99_ms=0.1) == ""
    fast = {**champion, "p99_ms": 1.0}                      # sub-ms champion: the +2 ms slack rules
    assert compare({**fast, "p99_ms": 2.9}, fast, Thresholds()) == []
    assert "p99" in " ".join(compare({**fast, "p99_ms": 3.1}, fast, Thresholds()))
    assert "could not be measured" in reasons(macro_f1=float("nan"))
    # An index needs the citation check, and a passing score on it.
    assert "no citation data" in reasons(index_version="kb-1", citation_accuracy=None)
    assert "citation accuracy" in reasons(index_version="kb-1", citation_accuracy=0.5)
    assert reasons(index_version="kb-1", citation_accuracy=0.9) == ""
    with_index = {**champion, "index_version": "kb-1", "citation_accuracy": 0.95}
    assert "citation accuracy drops" in " ".join(compare({**with_index, "citation_accuracy": 0.9}, with_index,
                                                         Thresholds()))
    # Floors hold with or without a champion.
    assert "under the floor" in " ".join(compare({**champion, "macro_f1": 0.1}, None, Thresholds()))
    assert "over the ceiling" in " ".join(compare({**champion, "false_block_rate_at_90_recall": 0.9}, None,
                                                  Thresholds()))
    assert compare({**champion, "macro_f1": 0.59}, champion, Thresholds(macro_f1_tolerance=0.02)) == []


def test_eval_rows_resolve_names_and_ids_and_refuse_unknown_labels(tmp_path):
    from brandsafe.labels import Label, LabelSet
    from brandsafe.release.evaluation import EvaluationError, read_rows

    labels = LabelSet([Label("pg0WhF", "Casinos & Gambling", False, False), Label("Misinformation",
                                                                                   "Misinformation", True, False)])
    good = tmp_path / "good.jsonl"
    good.write_text('{"url": "bet.example", "title": null, "labels": ["casinos & gambling"]}\n'
                    '{"text": "news example com", "labels": ["Misinformation", "pg0WhF"]}\n\n')
    rows = read_rows(good, labels)
    assert [r.labels for r in rows] == [frozenset({"pg0WhF"}), frozenset({"Misinformation", "pg0WhF"})]
    assert rows[0].page is not None and rows[1].page is None and rows[1].text == "news example com"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": "a.example", "labels": []}\n{"url": "b.example", "labels": ["Adult"]}\n')
    with pytest.raises(EvaluationError, match=r"bad.jsonl:2: label 'Adult'"):
        read_rows(bad, labels)


# -- the registry -----------------------------------------------------------------------------------

def test_registry_round_trip(registry, minilm_bundle, kb_index, tmp_path):
    bundle_id = BundleInfo.load(minilm_bundle).bundle_id
    first = registry.register(minilm_bundle)
    assert (first.version, first.state, first.bundle_id, first.index_version) == ("1", CANDIDATE, bundle_id, "")
    bundle_dir, index_dir = registry.download("1", tmp_path / "dl1")
    verify(bundle_dir)
    assert index_dir is None
    assert (bundle_dir / "manifest.json").read_text() == (minilm_bundle / "manifest.json").read_text()

    from brandsafe.retrieval import index_id

    second = registry.register(minilm_bundle, kb_index)  # same model, new index: just another version
    assert (second.version, second.index_version) == ("2", index_id(kb_index))
    registry.set_alias(CHAMPION, "2")
    assert registry.get(CHAMPION).version == "2" and CHAMPION in registry.get("2").aliases
    bundle_dir, index_dir = registry.download(CHAMPION, tmp_path / "dl2")
    verify(bundle_dir)
    verify(index_dir)
    assert index_id(index_dir) == second.index_version
    # Artifacts live in the store's folder, not in ./mlruns of whatever directory we ran from.
    assert any((Path(registry.uri[len("sqlite:///"):]).parent / "artifacts").rglob("model.onnx"))
    assert [r.version for r in registry.releases()] == ["2", "1"]
    assert registry.alias_version(CHALLENGER) is None
    with pytest.raises(RegistryError):
        registry.get("nope")
    with pytest.raises(RegistryError):
        registry.get("99")
    # Illegal transitions are refused against the real store, and the state stays put.
    with pytest.raises(IllegalTransition):
        transition(registry, "1", PROMOTED)
    assert registry.get("1").state == CANDIDATE


def test_registry_refuses_a_broken_bundle(registry, minilm_bundle, tmp_path):
    broken = variant(minilm_bundle, tmp_path / "broken", "-broken")
    (broken / "thresholds.json").write_text("{}")
    with pytest.raises(BundleError):
        registry.register(broken)
    assert registry.releases() == []


# -- the gate ---------------------------------------------------------------------------------------

def test_gate_rejects_a_worse_candidate_and_the_champion_stays(registry, champion_bundle, eval_file, tmp_path):
    first = promote(registry, registry.register(champion_bundle).version, eval_file, thresholds=GATE, latency_rows=20)
    assert (first.verdict, first.champion) == (PROMOTED, None)
    assert registry.alias_version(CHAMPION) == "1"
    assert first.candidate["macro_f1"] > 0  # else "worse" below could not be worse

    # Thresholds no calibrated score reaches: the model never flags anything.
    worse = variant(champion_bundle, tmp_path / "worse", "-worse", threshold=1.01)
    result = promote(registry, registry.register(worse).version, eval_file, thresholds=GATE, latency_rows=20)
    assert result.verdict == REJECTED
    assert result.champion_version == "1"
    assert any("macro-F1 drops" in r for r in result.reasons)
    assert result.candidate["macro_f1"] < result.champion["macro_f1"]
    assert registry.alias_version(CHAMPION) == "1"
    assert registry.alias_version(CHALLENGER) is None
    rejected = registry.get("2")
    assert rejected.state == REJECTED and "macro-F1 drops" in rejected.tags["gate.reasons"]
    assert float(rejected.tags["metric.macro_f1"]) == pytest.approx(result.candidate["macro_f1"], abs=1e-5)
    run_metrics = registry.client.get_run(rejected.run_id).data.metrics
    assert run_metrics["macro_f1"] == pytest.approx(result.candidate["macro_f1"])
    with pytest.raises(IllegalTransition):  # a rejected version stays rejected
        promote(registry, "2", eval_file, thresholds=GATE, latency_rows=20)

    # The same model under a new id is no worse on any measure, and takes over.
    good = variant(champion_bundle, tmp_path / "good", "-good")
    result = promote(registry, registry.register(good).version, eval_file, thresholds=GATE, latency_rows=20)
    assert (result.verdict, result.reasons, result.champion_version) == (PROMOTED, [], "1")
    assert result.candidate["macro_f1"] == pytest.approx(result.champion["macro_f1"])
    assert registry.alias_version(CHAMPION) == "3"


def test_a_new_index_goes_through_the_same_gate(registry, champion_bundle, kb_index, eval_file, tmp_path):
    from brandsafe.retrieval import index_id

    citations = tmp_path / "citations.jsonl"
    citations.write_text("".join(json.dumps(r) + "\n" for r in CITATIONS))
    promote(registry, registry.register(champion_bundle).version, eval_file, thresholds=GATE, latency_rows=20)

    version = registry.register(champion_bundle, kb_index).version
    no_citations = promote(registry, version, eval_file, thresholds=GATE, latency_rows=20)
    assert no_citations.verdict == REJECTED
    assert any("no citation data" in r for r in no_citations.reasons)

    version = registry.register(champion_bundle, kb_index).version
    impossible = Thresholds(**{**vars(GATE), "citation_floor": 1.01})
    result = promote(registry, version, eval_file, citations, thresholds=impossible, latency_rows=20)
    assert result.candidate["index_version"] == index_id(kb_index)
    assert result.candidate["citation_rows"] == len(CITATIONS)
    assert result.candidate["citation_retrieval_recall"] == 1.0  # both passages are keyed to their hosts
    assert 0.0 <= result.candidate["citation_accuracy"] <= 1.0
    assert result.verdict == REJECTED and any("citation accuracy" in r for r in result.reasons)
    assert registry.alias_version(CHAMPION) == "1"
    assert registry.get(version).state == REJECTED


def test_a_worse_index_for_the_same_model_is_rejected(registry, context_release, tmp_path):
    """The model trained to read passages, its run's index and citation rows: the same bundle with an
    index missing the citation hosts' notes loses the citation check; a rebuilt equal index passes."""
    from brandsafe.retrieval import build_index, index_id

    run, bundle = context_release["run"], context_release["bundle"]
    citations, eval_data = run / "citations.jsonl", tmp_path / "validation.jsonl"
    eval_data.write_text("\n".join((run / "validation.jsonl").read_text().splitlines()[:40]) + "\n")  # fast
    floorless = Thresholds(**{**vars(GATE), "citation_floor": 0.0})
    first = promote(registry, registry.register(bundle, context_release["index"]).version, eval_data, citations,
                    thresholds=floorless, latency_rows=20)
    assert first.verdict == PROMOTED and first.candidate["uses_context"]
    assert first.candidate["citation_retrieval_recall"] == 1.0

    cited = {json.loads(line)["passage_id"] for line in citations.read_text().splitlines()}
    knowledge = [line for line in (run / "knowledge.jsonl").read_text().splitlines()
                 if json.loads(line)["id"] not in cited]
    (tmp_path / "thin.jsonl").write_text("\n".join(knowledge) + "\n")
    build_index(tmp_path / "thin.jsonl", tmp_path / "thin-index")
    result = promote(registry, registry.register(bundle, tmp_path / "thin-index").version, eval_data, citations,
                     thresholds=floorless, latency_rows=20)
    assert result.candidate["bundle_id"] == result.champion["bundle_id"]  # only the index changed
    assert result.candidate["citation_retrieval_recall"] == 0.0
    assert result.verdict == REJECTED and any("citation accuracy drops" in r for r in result.reasons)
    assert registry.alias_version(CHAMPION) == first.version

    build_index(run / "knowledge.jsonl", tmp_path / "rebuilt-index")
    result = promote(registry, registry.register(bundle, tmp_path / "rebuilt-index").version, eval_data, citations,
                     thresholds=floorless, latency_rows=20)
    assert result.candidate["index_version"] == index_id(tmp_path / "rebuilt-index")
    assert result.candidate["citation_accuracy"] == pytest.approx(first.candidate["citation_accuracy"])
    assert (result.verdict, registry.alias_version(CHAMPION)) == (PROMOTED, result.version)


# -- following the champion -------------------------------------------------------------------------

def test_follower_moves_with_the_alias_and_survives_failures(registry, minilm_bundle, tmp_path, monkeypatch):
    for i in (1, 2, 3, 4):
        registry.register(variant(minilm_bundle, tmp_path / f"b{i}", f"-v{i}"))
    registry.set_alias(CHAMPION, "1")
    # Corrupt version 3 inside the store, as a bad upload or a bit flip would.
    artifacts = Path(urlparse(registry.client.get_run(registry.get("3").run_id).info.artifact_uri).path)
    (artifacts / "release" / "bundle" / "thresholds.json").write_text("{}")

    changes = []

    async def on_change(bundle_dir, index_dir, version):
        verify(bundle_dir)
        if version == "4":
            raise RuntimeError("warm-up failed")
        changes.append((version, BundleInfo.load(bundle_dir).bundle_id, index_dir))

    follower = AliasFollower(registry.uri, "brandsafe", CHAMPION, tmp_path / "cache", on_change, interval=0.05)
    bundle_dir, index_dir, version = follower.fetch()
    assert version == "1" and index_dir is None and BundleInfo.load(bundle_dir).bundle_id.endswith("-v1")

    async def scenario():
        assert await follower.poll_once() is False  # nothing moved
        registry.set_alias(CHAMPION, "2")
        assert await follower.poll_once() is True
        registry.set_alias(CHAMPION, "3")
        assert await follower.poll_once() is False  # bad artifacts: refused
        assert await follower.poll_once() is False  # and not fetched again every poll
        registry.set_alias(CHAMPION, "4")
        assert await follower.poll_once() is False  # the server refused it
        registry.set_alias(CHAMPION, "2")
        assert await follower.poll_once() is False  # back to what already serves: nothing to do
        # The task form picks up a move on its own.
        registry.set_alias(CHAMPION, "1")
        follower.start()
        for _ in range(200):
            if follower.version == "1":
                break
            await asyncio.sleep(0.05)
        await follower.stop()

    asyncio.run(scenario())
    assert [(v, b.split("-")[-1]) for v, b, _ in changes] == [("2", "v2"), ("1", "v1")]
    assert follower.version == "1"
    assert follower.errors == {"artifacts": 1, "swap": 1}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")) == ["v1", "v2"]

    # Registry down: counted, nothing raised, nothing changed.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    reported = []
    down = AliasFollower("http://127.0.0.1:9", "brandsafe", CHAMPION, tmp_path / "cache2", on_change,
                         current_version="1", on_error=reported.append)
    assert asyncio.run(down.poll_once()) is False
    assert down.errors == {"registry": 1} and down.version == "1" and reported == ["registry"]


# -- end to end: a real server following the champion -----------------------------------------------

def _serve_follows_registry() -> bool:
    help_text = subprocess.run([sys.executable, "-m", "brandsafe", "serve", "--help"], capture_output=True,
                               text=True, cwd=REPO).stdout
    return "--follow" in help_text and "--registry" in help_text


def test_rejected_candidate_leaves_the_champion_serving(registry, champion_bundle, eval_file, tmp_path):
    if not _serve_follows_registry():
        pytest.skip("`brandsafe serve --registry/--follow` is not wired in yet")
    from brandsafe.client import classify, site_request

    promote(registry, registry.register(champion_bundle).version, eval_file, thresholds=GATE, latency_rows=20)
    champion_id = BundleInfo.load(champion_bundle).bundle_id
    server = ServerProcess(champion_bundle, "--registry", registry.uri, "--follow", CHAMPION,
                           "--follow-seconds", "0.2", "--registry-cache", str(tmp_path / "cache"),
                           "--cache-entries", "0")

    def serving() -> str:
        return classify(server.target, site_request("https://lucky-spins.example/lobby"), timeout=30).bundle_id

    try:
        assert serving() == champion_id
        worse = variant(champion_bundle, tmp_path / "worse", "-worse", threshold=1.01)
        assert promote(registry, registry.register(worse).version, eval_file, thresholds=GATE,
                       latency_rows=20).verdict == REJECTED
        time.sleep(2.0)  # ten polls: time enough to (wrongly) follow anything
        assert serving() == champion_id
        assert "-worse" not in server.output()

        # The follower is live: a promoted release does take over, so the check above was meaningful.
        good = variant(champion_bundle, tmp_path / "good", "-good")
        assert promote(registry, registry.register(good).version, eval_file, thresholds=GATE,
                       latency_rows=20).verdict == PROMOTED
        deadline = time.time() + 60
        while serving() != champion_id + "-good" and time.time() < deadline:
            time.sleep(0.2)
        assert serving() == champion_id + "-good"
    finally:
        assert server.stop() == 0
