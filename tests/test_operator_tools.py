"""Day-two tools against a real server and real files: the CLI's errors and one-line answers,
Explain, domain lists in brand profiles, and the operator metrics."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import grpc
import numpy as np
import pytest

from brandsafe.client import app_request, site_request
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import REPO, ServerProcess
from redis_server import free_port


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brandsafe", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


# --- 7: the CLI -------------------------------------------------------------------------------

def test_a_refused_connection_is_one_line_and_exit_1_not_a_traceback():
    port = free_port()  # nothing listens there
    result = cli("classify", "https://example.com/", "--target", f"127.0.0.1:{port}", "--deadline-ms", "3000")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: UNAVAILABLE: cannot reach 127.0.0.1:{port} \u2014 is the server running?"
    assert "Traceback" not in result.stderr and result.stdout == ""
    health = cli("health", "--target", f"127.0.0.1:{port}")
    assert health.returncode == 1 and health.stderr.count("\n") == 1 and "UNAVAILABLE" in health.stderr


def test_global_options_work_after_the_subcommand_and_defaults_print_as_paths():
    from brandsafe.cli import _parser

    args = _parser().parse_args(["classify", "https://example.com/", "-q", "--log-format", "json"])
    assert args.quiet is True and args.log_format == "json"
    args = _parser().parse_args(["-q", "classify", "https://example.com/"])  # before it still counts
    assert args.quiet is True and args.log_format == "text"
    helps = cli("train", "--help").stdout + cli("serve", "--help").stdout
    assert "PosixPath" not in helps and "[" + "PosixPath" not in helps
    assert "../shared/data/brand-safety-urls.train.jsonl" in helps.replace("\n", "").replace(" ", "") or \
        "brand-safety-urls.train.jsonl" in helps


def test_classify_brief_app_and_tmax_against_a_real_server(minilm_server):
    result = cli("classify", "https://casino-bonus-slots.example/play", "--title", "Free spins", "--brief",
                 "--target", minilm_server.target)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert "\n" not in line and re.match(r"^(ALLOW|BLOCK) ", line) and "(profile default," in line
    app = cli("classify", "--app", "com.example.slots", "--title", "Slots", "--target", minilm_server.target)
    assert app.returncode == 0, app.stderr
    assert json.loads(app.stdout)["policy_id"] == "default"
    # tmax of 1 ms cannot fit the model: the profile's fallback answers, and --brief says so.
    tight = cli("classify", "https://never-seen-before-1.example/x", "--tmax", "1", "--brief",
                "--target", minilm_server.target)
    assert tight.returncode == 0 and "fallback:" in tight.stdout
    bad = cli("classify", "https://example.com/", "--policy", "nope", "--target", minilm_server.target)
    assert bad.returncode == 1 and bad.stderr.startswith("error: INVALID_ARGUMENT: policy_id: unknown brand profile")
    assert "Traceback" not in bad.stderr


# --- 1: Explain -------------------------------------------------------------------------------

def test_explain_shows_the_rendered_text_thresholds_and_occlusion_from_one_model(minilm_server, minilm_bundle):
    from brandsafe.rendering import PageContext, render
    from brandsafe.service.model import LoadedBundle

    request = site_request("https://www.youtube.com/watch?v=x", title="Glock 19 review: best 9mm handgun")
    with minilm_server.channel() as channel:
        stub = pb_grpc.BrandSafetyStub(channel)
        explained = stub.Explain(request, timeout=60)
        classified = stub.Classify(request, timeout=30)
    page = PageContext(url="https://www.youtube.com/watch?v=x", title="Glock 19 review: best 9mm handgun")
    assert explained.model_text == render(page)
    assert explained.text_schema.startswith("brandsafe-text/")
    assert explained.verdict.decision == classified.decision
    assert [c.id for c in explained.verdict.categories] == [c.id for c in classified.categories]
    # Thresholds: every category the default profile blocks, each checked against its score.
    assert explained.thresholds and all(t.reached == (t.score >= t.threshold) for t in explained.thresholds)
    # Occlusion: each drop is the category's score minus its score without that word, by the bundle itself.
    model = LoadedBundle(minilm_bundle)
    words = explained.model_text.split()
    top = explained.explanations[0]
    label = model.labels.index[top.category_id]
    full = model.score([explained.model_text])[0][label]
    assert top.score == pytest.approx(full, abs=1e-5)
    for influence in top.words[:3]:
        assert words[influence.position] == influence.word
        without = " ".join(words[:influence.position] + words[influence.position + 1:])
        assert influence.drop == pytest.approx(full - model.score([without])[0][label], abs=1e-4)
    drops = [abs(w.drop) for w in top.words]
    assert drops == sorted(drops, reverse=True)
    assert "|" not in [w.word for e in explained.explanations for w in e.words]


def test_explain_cli_reads_in_a_terminal_and_as_json(minilm_server):
    text = cli("explain", "https://chicken-curry.example/one-pot-recipe", "--title", "One pot chicken curry",
               "--target", minilm_server.target)
    assert text.returncode == 0, text.stderr
    assert "model text (brandsafe-text/" in text.stdout and "one pot chicken curry" in text.stdout.lower()
    assert "profile default: categories it blocks" in text.stdout
    as_json = cli("explain", "https://chicken-curry.example/one-pot-recipe", "--json", "--target", minilm_server.target)
    parsed = json.loads(as_json.stdout)
    assert parsed["model_text"].startswith("chicken curry") and parsed["verdict"]["policy_id"] == "default"


def test_explain_rejects_what_classify_rejects(minilm_server):
    with minilm_server.channel() as channel, pytest.raises(grpc.RpcError) as err:
        pb_grpc.BrandSafetyStub(channel).Explain(pb.ClassifyRequest(site=pb.Site(page="x" * 9000)), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "site.page" in err.value.details()


# --- 3 and 5: advertiser lists, operator metrics ----------------------------------------------

@pytest.fixture(scope="module")
def listed_server(minilm_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles")
    (folder / "blocked.txt").write_text("# the advertiser's own block list\nbad-neighbour.co.uk\n\nuser.blogspot.com\n")
    (folder / "profiles.toml").write_text("""
[profiles.default]
block = ["@sensitive", "@custom"]
threshold = "bundle"

[profiles.acme]
block = ["@sensitive", "@custom"]
threshold = 0.01
allow_domains = ["trusted-news.example"]
block_domains_file = "blocked.txt"
""")
    server = ServerProcess(minilm_bundle, "--policies", str(folder / "profiles.toml"), "--metrics-port", "0")
    server.metrics_port = int(re.search(r"metrics on :(\d+)/metrics", server.output()).group(1))
    yield server
    server.stop()


def _classify(server, request) -> pb.ClassifyResponse:
    with server.channel() as channel:
        return pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=30)


def test_block_list_blocks_every_page_of_the_registrable_domain_with_its_own_reason(listed_server):
    for page in ("https://www.bad-neighbour.co.uk/recipes", "http://shop.bad-neighbour.co.uk/"):
        response = _classify(listed_server, site_request(page, policy_id="acme"))
        assert response.decision == pb.BLOCK and not response.reasons
        assert (response.domain_list.list, response.domain_list.domain) == ("block_domains", "bad-neighbour.co.uk")
        assert response.categories  # the model's scores are still reported
    # A private suffix: one user's blog is listed, another's is not.
    assert _classify(listed_server, site_request("https://user.blogspot.com/p", policy_id="acme")).domain_list.list
    other = _classify(listed_server, site_request("https://someone.blogspot.com/p", policy_id="acme"))
    assert not other.HasField("domain_list")
    # The default profile has no lists: the same page is the model's call.
    assert not _classify(listed_server, site_request("https://bad-neighbour.co.uk/")).HasField("domain_list")


def test_allow_list_overrides_a_model_block(listed_server):
    # threshold 0.01: the acme profile blocks nearly everything the model scores
    blocked = _classify(listed_server, site_request("https://casino-slots.example/", "Casino", policy_id="acme"))
    assert blocked.decision == pb.BLOCK and blocked.reasons
    allowed = _classify(listed_server, site_request("https://trusted-news.example/casino", "Casino",
                                                    policy_id="acme"))
    assert allowed.decision == pb.ALLOW and not allowed.reasons
    assert allowed.domain_list.list == "allow_domains"
    app = _classify(listed_server, app_request("com.news.app", "trusted-news.example", policy_id="acme"))
    assert app.domain_list.list == "allow_domains"


def test_a_bad_list_entry_names_its_file_and_line(minilm_bundle, tmp_path):
    from brandsafe.labels import LabelSet
    from brandsafe.service.policy import PolicyError, load_policies

    (tmp_path / "list.txt").write_text("ok.example\nnews.bbc.co.uk\n")
    (tmp_path / "p.toml").write_text('[profiles.default]\nblock = ["@sensitive"]\nblock_domains_file = "list.txt"\n')
    labels = LabelSet.load(minilm_bundle / "labels.json")
    with pytest.raises(PolicyError, match=r"list\.txt:2: 'news\.bbc\.co\.uk' is not a registrable domain.*'bbc\.co\.uk'"):
        load_policies(tmp_path / "p.toml", labels, {})


def _metrics(server) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()


def test_metrics_count_decisions_by_profile_category_and_source(listed_server):
    _classify(listed_server, site_request("https://www.bad-neighbour.co.uk/m1", policy_id="acme"))
    _classify(listed_server, site_request("https://metrics-page.example/a", "Casino", policy_id="acme"))
    _classify(listed_server, site_request("https://fallback-page.example/", tmax=1))
    with listed_server.channel() as channel:
        pb_grpc.BrandSafetyStub(channel).Explain(site_request("https://metrics-page.example/a"), timeout=60)
    text = _metrics(listed_server)
    assert re.search(r'brandsafe_decisions_total\{category="list:block_domains",decision="BLOCK",policy="acme",'
                     r'source="model"\} [1-9]', text), text
    assert re.search(r'brandsafe_decisions_total\{category="[^l"][^"]*",decision="BLOCK",policy="acme",'
                     r'source="model"\}', text)
    assert re.search(r'brandsafe_decisions_total\{category="none",decision="ALLOW",policy="default",'
                     r'source="fallback"\} [1-9]', text)
    # Score distribution per category, fed by model answers only.
    assert re.search(r'brandsafe_category_score_bucket\{category="Casinos & Gambling",le="0\.5"\} \d', text)
    # gRPC's conventional label names.
    assert re.search(r'brandsafe_requests_total\{grpc_code="OK",grpc_method="Classify",'
                     r'grpc_service="brandsafe\.v1\.BrandSafety"\} [1-9]', text)
    assert re.search(r'brandsafe_requests_total\{grpc_code="OK",grpc_method="Explain",'
                     r'grpc_service="brandsafe\.v1\.BrandSafety"\}', text)
