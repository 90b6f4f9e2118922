"""`brandsafe score`: real files in, the bundle in-process, verdicts out, and the shared Redis tier
warmed under the keys a real server reads."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from brandsafe.client import site_request
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc
from conftest import REPO, ServerProcess
from redis_server import RedisServer


def score(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brandsafe", "score", "--no-progress", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


def test_bad_rows_are_named_by_file_and_line_and_the_rest_are_scored(minilm_bundle, tmp_path):
    from brandsafe.rendering import PageContext, render
    from brandsafe.service.model import LoadedBundle

    pages = tmp_path / "pages.jsonl"
    pages.write_text("\n".join([
        json.dumps({"url": "https://casino-slots.example/play", "title": "Free spins", "id": "a"}),
        "{not json",
        json.dumps({"title": "no url here"}),
        "",
        json.dumps({"url": "https://recipes.example/curry", "keywords": ["chicken", "curry"]}),
        json.dumps({"url": "https://x.example/" + "p" * 9000}),
    ]) + "\n")
    out = tmp_path / "verdicts.jsonl"
    result = score(str(pages), "--bundle", str(minilm_bundle), "--policy", "default", "--policy", "strict",
                   "--out", str(out))
    assert result.returncode == 1  # some rows were bad
    assert f"{pages}:2: not valid JSON" in result.stderr
    assert f"{pages}:3: url: required" in result.stderr
    assert f"{pages}:6: site.page: at most 8192 characters" in result.stderr
    assert "scored 2 rows" in result.stderr and "rows/s" in result.stderr and "3 bad rows skipped" in result.stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(v["line"], v["policy"]) for v in verdicts] == [(1, "default"), (1, "strict"), (5, "default"),
                                                            (5, "strict")]
    assert verdicts[0]["id"] == "a"
    # The scores are the bundle's on the shared rendering.
    model = LoadedBundle(minilm_bundle)
    expected = model.score([render(PageContext(url="https://recipes.example/curry", keywords=("chicken", "curry")))])[0]
    top = int(np.argmax(expected))
    assert verdicts[2]["categories"][0]["id"] == model.labels.labels[top].id
    assert verdicts[2]["categories"][0]["score"] == pytest.approx(float(expected[top]), abs=1e-4)


def test_csv_in_csv_out(minilm_bundle, tmp_path):
    pages = tmp_path / "pages.csv"
    pages.write_text("url,title\nhttps://bet.example/poker,Poker night\n,missing url\nnews.example/world,World\n")
    out = tmp_path / "verdicts.csv"
    result = score(str(pages), "--bundle", str(minilm_bundle), "--out", str(out))
    assert result.returncode == 1 and f"{pages}:3: url: required" in result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["url"] for r in rows] == ["https://bet.example/poker", "news.example/world"]
    assert all(r["decision"] in ("ALLOW", "BLOCK") and r["policy"] == "default" for r in rows)


def test_unknown_profile_is_one_line(minilm_bundle, tmp_path):
    pages = tmp_path / "p.jsonl"
    pages.write_text('{"url": "a.example"}\n')
    result = score(str(pages), "--bundle", str(minilm_bundle), "--policy", "nope")
    assert result.returncode == 2 and "unknown brand profile(s) nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_warm_redis_makes_a_fresh_replica_answer_from_the_shared_tier(minilm_bundle, tmp_path):
    redis = RedisServer()
    try:
        pages = tmp_path / "pages.jsonl"
        pages.write_text("".join(json.dumps({"url": f"https://warm-{i}.example/page?utm_source=x",
                                             "title": f"Page {i}"}) + "\n" for i in range(40)))
        result = score(str(pages), "--bundle", str(minilm_bundle), "--warm-redis", redis.url, "--out",
                       str(tmp_path / "v.jsonl"))
        assert result.returncode == 0, result.stderr
        assert "40 verdicts written to Redis" in result.stderr
        offline = {json.loads(l)["url"]: json.loads(l) for l in (tmp_path / "v.jsonl").read_text().splitlines()}
        server = ServerProcess(minilm_bundle, "--redis-url", redis.url, "--redis-timeout-ms", "200")
        try:
            with server.channel() as channel:
                stub = pb_grpc.BrandSafetyStub(channel)
                # The same page spelled as a bidder would (tracking parameter dropped): the service's key.
                response = stub.Classify(site_request("https://warm-7.example/page", "Page 7"), timeout=30)
        finally:
            server.stop()
        assert response.score_source == "redis"
        expected = offline["https://warm-7.example/page?utm_source=x"]
        assert pb.Decision.Name(response.decision) == expected["decision"]
        assert response.categories[0].score == pytest.approx(expected["categories"][0]["score"], abs=1e-4)
    finally:
        redis.kill()
