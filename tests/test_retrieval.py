"""Retrieval under one <context> schema: rendering, knowledge files, the index, and a real server
where a passage, and only a passage, changes the answer."""
import json
import shutil

import grpc
import pytest

from brandsafe import bundle as bundle_files
from brandsafe.client import site_request
from brandsafe.rendering import CONTEXT_SCHEMA_VERSION, PageContext, Passage, render
from brandsafe.retrieval import KnowledgeError, Retriever, build_index, index_id, read_knowledge
from brandsafe.service.servicer import RESPONSE_MARGIN_FLOOR_SECONDS
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import ServerProcess

TOKEN = "retrieval-admin-token"
GAMBLING = "Casinos & Gambling"
# A host no training row or note mentions: whatever the model says about it comes from a passage.
HOST = "quiet-lantern42.net"


def _kb(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _note(topic: str) -> dict:
    return {"id": f"site:{HOST}", "title": HOST, "text": f"{HOST} is known for {topic}.", "keys": [HOST]}


def test_the_context_block_follows_the_page_and_a_page_without_passages_renders_as_before():
    page = PageContext(url="https://news.example.com/world/war-report", title="Front line report")
    passages = (Passage("site:example.com", "example.com", "A national newspaper.  Daily news.", 1.0),
                Passage("iab:I4GWl6", "Death, Injury, or Military Conflict", "war footage; " * 40, 0.4321))
    with_context = render(PageContext(page.url, page.title, passages=passages))
    assert with_context.startswith(render(page) + " | <context> [1] site:example.com (1.0) example.com: ")
    assert "[2] iab:I4GWl6 (0.4) Death, Injury, or Military Conflict: war footage;" in with_context
    assert with_context.endswith(" </context>")
    assert with_context.count("war footage;") == 16  # capped at 32 words; the page never is
    assert "<context>" not in render(page)


def test_training_rows_render_passages_with_the_serving_function():
    import numpy as np

    from brandsafe.training.dataset import Examples

    passages = (Passage("site:a.example", "a.example", "An online casino.", 1.0),)
    pages = [PageContext(url="https://a.example/", passages=passages)]
    assert Examples(pages, np.zeros((1, 1)), ["x"]).texts() == [render(pages[0])]


def test_knowledge_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "kb.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "a", "text": "again"}\n')
    with pytest.raises(KnowledgeError, match=r"kb.jsonl:2: id 'a' already used at line 1"):
        read_knowledge(bad)
    bad.write_text('{"id": "a", "text": "fine"}\n\n{"id": "b", "text": "x", "keys": "host.example"}\n')
    with pytest.raises(KnowledgeError, match=r"kb.jsonl:3: 'keys' must be a list"):
        read_knowledge(bad)
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(KnowledgeError, match=r"kb.jsonl:1: 'text' must be a non-empty string"):
        read_knowledge(bad)


def test_keyed_passages_come_first_then_neighbours_and_a_rebuild_is_a_new_version(tmp_path, embedder_cache):
    kb = _kb(tmp_path / "kb.jsonl",
             {"id": "site:luckyspin-test.com", "title": "luckyspin-test.com", "text": "An online casino with slots.",
              "keys": ["www.LuckySpin-Test.com"]},
             {"id": "iab:gambling", "title": "Gambling", "text": "Casinos, poker, betting and lotteries for money."},
             {"id": "iab:cooking", "title": "Cooking", "text": "Recipes, baking and kitchen tips."})
    first = build_index(kb, tmp_path / "index", embedder_cache)
    retriever = Retriever.load(tmp_path / "index")
    assert retriever.version == first == index_id(tmp_path / "index")

    keyed = retriever.retrieve(PageContext(url="http://shop.luckyspin-test.com/page"), k=2)
    assert keyed[0].source_id == "site:luckyspin-test.com" and keyed[0].score == 1.0
    by_meaning = retriever.retrieve(PageContext(url="https://cards.example.org/", title="poker night and betting"))
    assert by_meaning and by_meaning[0].source_id == "iab:gambling" and by_meaning[0].score < 1.0
    assert all(p.source_id != "site:luckyspin-test.com" for p in by_meaning)  # a site's note is about that site
    anywhere = Retriever.load(tmp_path / "index", notes_by_key_only=False)
    assert "site:luckyspin-test.com" in {p.source_id for p in anywhere.retrieve(
        PageContext(url="https://cards.example.org/", title="online casino slots"), k=3)}

    _kb(kb, {"id": "iab:cooking", "title": "Cooking", "text": "Recipes, baking and kitchen tips."})
    second = build_index(kb, tmp_path / "index", embedder_cache)
    assert second != first
    rebuilt = Retriever.load(tmp_path / "index").retrieve(PageContext(url="http://luckyspin-test.com/"), k=2)
    assert all(p.source_id != "site:luckyspin-test.com" for p in rebuilt)


def test_a_tampered_index_is_refused(tmp_path, embedder_cache):
    kb = _kb(tmp_path / "kb.jsonl", {"id": "a", "title": "A", "text": "alpha"})
    build_index(kb, tmp_path / "index", embedder_cache)
    with (tmp_path / "index" / "passages.jsonl").open("a") as fh:
        fh.write('{"id": "b", "title": "", "text": "injected", "keys": []}\n')
    with pytest.raises(bundle_files.BundleError, match="passages.jsonl does not match"):
        Retriever.load(tmp_path / "index")


def test_a_bundle_with_an_unknown_context_schema_is_refused(context_release, tmp_path):
    bundle = shutil.copytree(context_release["bundle"], tmp_path / "bundle")
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["context_schema"] == CONTEXT_SCHEMA_VERSION
    info["context_schema"] = "brandsafe-context/99"
    (bundle / "bundle.json").write_text(json.dumps(info))
    bundle_files.write_manifest(bundle)
    with pytest.raises(bundle_files.BundleError, match="context schema 'brandsafe-context/99' is unknown"):
        bundle_files.BundleInfo.load(bundle)


def test_the_report_shows_the_model_follows_passages(context_release):
    context = json.loads((context_release["run"] / "report.json").read_text())["context"]
    assert context["citation_rows"] == 40
    # Labels on made-up hosts are only knowable from their notes: without them the model is at chance.
    assert context["citation_accuracy_with_passage"] >= 0.5
    assert context["citation_accuracy_with_passage"] >= context["citation_accuracy_without_passage"] + 0.3
    for key in ("validation_without_context", "validation_with_retrieval"):
        assert 0.0 <= context[key]["macro_f1"] <= 1.0


def _classify(channel, policy="strict", tmax=0):
    request = site_request(f"https://{HOST}/", policy_id=policy)
    request.tmax = tmax
    return pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=10)


def _scores(response) -> dict:
    return {c.name: c.score for c in response.categories}


def test_a_passage_changes_the_answer_and_an_index_swap_needs_no_restart(context_release, tmp_path):
    """The same page, the same model: the host's note says gambling → gambling; after the index is
    rebuilt with a cooking note (no retraining, no restart) → not gambling."""
    run_kb = (context_release["run"] / "knowledge.jsonl").read_text()
    kb = tmp_path / "kb.jsonl"
    kb.write_text(run_kb + json.dumps(_note("casinos & gambling (online casino welcome bonus)")) + "\n")
    build_index(kb, tmp_path / "index")
    # A retrieval budget no cold first search on a busy CI core can miss: this test is about what a
    # passage does to the answer; the default 10 ms once timed out right after the index swap.
    server = ServerProcess(context_release["bundle"], "--index", str(tmp_path / "index"), "--admin-token", TOKEN,
                           "--cache-entries", "1000", "--retrieval-budget-ms", "2000")
    try:
        with server.channel() as channel:
            before = _classify(channel)
            assert before.retrieval.status == "used"
            assert before.retrieval.passage_ids[0] == f"site:{HOST}"
            assert before.categories and before.categories[0].name == GAMBLING, before
            assert before.decision == pb.BLOCK

            kb.write_text(run_kb + json.dumps(_note("cooking and recipes (brand-safe)")) + "\n")
            new_version = build_index(kb, tmp_path / "index")
            reply = pb_grpc.AdminStub(channel).ReloadIndex(
                pb.ReloadIndexRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=60)
            assert (reply.index_version, reply.previous_index_version) == (new_version, before.retrieval.index_version)

            after = _classify(channel)
            assert after.bundle_id == before.bundle_id  # the model was not touched
            assert after.retrieval.index_version == new_version
            assert after.score_source == "model"  # the cached verdict belonged to the old index
            assert after.decision == pb.ALLOW, after
            assert _scores(after).get(GAMBLING, 0.0) < _scores(before)[GAMBLING] / 2

            cached = _classify(channel)
            assert (cached.score_source, cached.retrieval.status) == ("local", "cached")

            # Too little time left to retrieve: scored on the page alone (or the fallback), and said so.
            # A tmax that is all response margin, so the check cannot depend on how fast retrieval
            # has been (with 3 ms, a fast enough retrieval estimate let it go ahead: a flaky test).
            rushed = site_request(f"https://{HOST}/other", policy_id="strict")
            rushed.tmax = round(RESPONSE_MARGIN_FLOOR_SECONDS * 1000)
            answer = pb_grpc.BrandSafetyStub(channel).Classify(rushed, timeout=10)
            assert answer.retrieval.status == "skipped_deadline"

            with pytest.raises(grpc.RpcError) as refused:
                pb_grpc.AdminStub(channel).ReloadIndex(
                    pb.ReloadIndexRequest(index_path=str(tmp_path / "missing")),
                    metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=60)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert _classify(channel).retrieval.index_version == new_version  # the old index kept serving
    finally:
        server.stop()
