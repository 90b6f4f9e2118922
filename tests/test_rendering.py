import json

from brandsafe.client import site_request
from brandsafe.rendering import PageContext, render
from brandsafe.service.requests import parse
from brandsafe.training.data import read_rows
from brandsafe.training.dataset import page_of, to_examples
from brandsafe.urltext import url_words
from brandsafe.v1 import brandsafe_pb2 as pb


def test_hosts_and_paths_become_words():
    words = url_words("https://www.Cheap-Pills-Online.biz/buyNow_today/9f8e7d6c5b4a3f2e?ref=Spam%20Mail#top")
    assert words.host == ("cheap", "pills", "online", "biz")
    assert words.path == ("buy", "now", "today", "ref", "spam", "mail")  # hex id dropped, %20 decoded


def test_odd_urls_never_raise():
    for url in ["", "://", "http://[::1]:8080/x", "http://[bad", "xn--bcher-kva.example/ä", "💥.com/🔥",
                "a" * 10000, "http://user:pw@host.com:99999/p", "%zz%", "javascript:alert(1)"]:
        render(PageContext(url=url))
    assert url_words("xn--bcher-kva.example").host == ("bücher", "example")


def test_render_layout():
    text = render(PageContext(url="news.example.co.uk/world/war-in-x", title="  Breaking:\nwar  ",
                              keywords=("war", " ", "news")))
    assert text == "news example co uk | path: world war in x | title: Breaking: war | keywords: war, news"
    assert render(PageContext(app_bundle="com.example.casinoslots")) == "example casino slots"


def test_concatenated_host_words_are_segmented():
    assert url_words("freeporntube.com").host == ("free", "porn", "tube", "com")
    assert url_words("https://www.youtube.com/watch?v=Qm81xZk2pLw").path == ("watch", "v")  # random id dropped


def test_training_and_serving_render_identical_model_input(small_train_file, taxonomy_path):
    """The training pipeline and the gRPC request path must produce byte-identical text."""
    from brandsafe.taxonomy import Taxonomy
    from brandsafe.training.labelmap import build_label_set

    rows = [r for r in read_rows(small_train_file)][:200]
    taxonomy = Taxonomy.load(taxonomy_path)
    examples = to_examples(rows, build_label_set(rows, taxonomy), taxonomy)
    for row, training_text in zip(rows, examples.texts()):
        request = site_request(row.url, title=row.title)
        serving_text = render(parse(pb.ClassifyRequest.FromString(request.SerializeToString()), "default").page)
        assert serving_text == training_text == render(page_of(row))


def test_fast_segmenter_splits_exactly_as_wordsegment():
    """Bundles were trained on wordsegment's splits; the faster search must not move a single one:
    every letter run of the first 3,000 labelled URLs, plus random junk and ties-prone repeats."""
    import random
    import re

    import wordsegment

    from brandsafe.urltext import load_segmenter

    from conftest import TRAIN_JSONL

    segmenter = load_segmenter()
    runs = set()
    with open(TRAIN_JSONL) as lines:
        for _, line in zip(range(3000), lines):
            runs.update(r for r in re.findall(r"[a-z]+", json.loads(line)["url"].lower()) if len(r) >= 6)
    rng = random.Random(7)
    runs.update("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(6, 28)))
                for _ in range(300))
    runs.update(["aaaaaaaaaaaaaaaaaaaa", "thethethethe", "a" * 300, "in" * 140])  # ties; > one 250-letter chunk
    assert len(runs) > 1500
    mismatched = [r for r in sorted(runs) if segmenter.segment(r) != wordsegment.segment(r)]
    assert mismatched == []


def test_segmenting_leaves_no_cyclic_garbage():
    """Each first-sight URL is segmented on the event loop: its search memo must be freed at once,
    not left in a reference cycle for the cyclic GC to collect while requests wait."""
    import gc

    from brandsafe.urltext import load_segmenter

    segmenter = load_segmenter()
    gc.collect()
    gc.disable()
    try:
        for run in ["cheappillsonline", "bestfootballhighlightsvideos", "newsworldtodayupdates"] * 20:
            assert segmenter.segment(run)
        assert gc.collect() == 0
    finally:
        gc.enable()
