"""Measuring as the product is used: title-only rows, pages as bidders send them, the held-out
title split, the realistic page set and the zero-shot bar."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brandsafe.domains import registrable_domain
from brandsafe.labels import LabelSet
from brandsafe.taxonomy import Taxonomy
from brandsafe.training.augment import BIDDER_PATHS, as_bidders_send, has_path, publish
from brandsafe.training.data import DataError, read_rows
from brandsafe.training.labelmap import build_label_set
from brandsafe.training.quality import PAGE_SET, page_set_view
from brandsafe.training.recipe import load_recipe
from brandsafe.training.split import split_rows
from brandsafe.training.train import load_split

REPO = Path(__file__).resolve().parent.parent


def test_title_only_rows_are_read_and_a_row_needs_a_url_or_a_title(tmp_path):
    good = tmp_path / "content.jsonl"
    good.write_text('{"url": null, "title": "Ten recipes for a rainy day", "labels": [], "source": "clickbait", '
                    '"source_label": "clickbait"}\n')
    row = read_rows(good)[0]
    assert (row.url, row.title, row.source) == ("", "Ten recipes for a rainy day", "clickbait:clickbait")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": null, "title": "  ", "labels": []}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: 'url' must be a non-empty string"):
        read_rows(bad)


def test_split_keeps_domains_apart_and_stratifies_title_only_rows():
    urls = [f"site{i % 40}.example{i % 40}.com/page{i}" for i in range(200)] + [""] * 200
    strata = ["safe" if i % 3 else "unsafe" for i in range(400)]
    train, val = split_rows(urls, strata, 0.25, seed=3)
    assert sorted(train + val) == list(range(400))
    assert not {registrable_domain(urls[i]) for i in train if urls[i]} & {registrable_domain(urls[i]) for i in val
                                                                           if urls[i]}
    titled_val = [i for i in val if not urls[i]]
    for stratum in ("safe", "unsafe"):
        members = [i for i in range(200, 400) if strata[i] == stratum]
        assert sum(strata[i] == stratum for i in titled_val) == round(len(members) * 0.25)


def test_bidders_view_gives_every_bare_domain_a_meaningless_path():
    rng = random.Random(1)
    sent = [as_bidders_send(url, rng) for url in ["casino-royale.biz", "bbc.co.uk", "http://example.org/"] * 10]
    assert all(u.startswith("https://") and u.endswith(tuple(BIDDER_PATHS)) for u in sent)
    assert sum(has_path(u) for u in sent) > 20, "most bidder paths are more than the root"
    assert as_bidders_send("example.com/news/article-1", rng) == "example.com/news/article-1"
    published = [publish("Ten things about cats", random.Random(seed)) for seed in range(20)]
    assert all(has_path(u) for u in published)
    assert any("ten-things-about-cats" in u for u in published) and any("cats" not in u for u in published)


def test_load_split_views_are_the_same_rows_in_three_shapes(small_train_file, taxonomy_path, tmp_path):
    content = tmp_path / "content.jsonl"
    content.write_text("".join(json.dumps({"url": None, "title": f"headline number {i} about gardens",
                                           "labels": [] if i % 2 else ["Misinformation"], "source": "news",
                                           "source_label": "x"}) + "\n" for i in range(40)))
    recipe = load_recipe("minilm-cpu-content")
    split = load_split(recipe, [small_train_file, content], Taxonomy.load(taxonomy_path))
    bidders, listed = split.views["bidders"].examples, split.views["as_listed"].examples
    assert len(bidders) == len(listed) > 0
    bare = [not has_path(p.url) for p in listed.pages]
    assert any(bare), "the shared data lists bare domains"
    assert all(p.url.startswith("https://") and p.url.endswith(tuple(BIDDER_PATHS))
               for p, was_bare in zip(bidders.pages, bare) if was_bare)
    assert [p.url for p, was_bare in zip(bidders.pages, bare) if not was_bare] == \
        [p.url for p, was_bare in zip(listed.pages, bare) if not was_bare]
    np.testing.assert_array_equal(bidders.targets, listed.targets)
    titles = split.views["titles"]
    assert len(titles.examples) == 6 and set(titles.sources) == {"news:x"}
    assert all(has_path(p.url) and p.title for p in titles.examples.pages)
    assert not {p.title for p in titles.examples.pages} & {p.title for p in split.train.pages}
    # the same recipe and data give the same split: a finished run can be measured again
    again = load_split(recipe, [small_train_file, content], Taxonomy.load(taxonomy_path))
    assert [p.url for p in again.views["bidders"].examples.pages] == [p.url for p in bidders.pages]


def test_a_recipe_can_leave_a_source_out(tmp_path, taxonomy_path):
    data = tmp_path / "content.jsonl"
    data.write_text("".join(json.dumps({"url": None, "title": f"question {i} about wine in stews",
                                        "labels": ["Illegal Drugs, Tobacco, eCigarettes, Vaping, Alcohol"],
                                        "source": "cookingse", "source_label": "tag:wine"}) + "\n" for i in range(10))
                    + json.dumps({"url": "a.com", "labels": []}) + "\n")
    recipe = load_recipe("minilm-cpu-content")
    assert recipe.exclude_sources == ("cookingse:tag:",)
    split = load_split(recipe, [data], Taxonomy.load(taxonomy_path))
    assert split.rows == 1


def test_the_content_recipe_adapts_only_the_upper_layers(taxonomy_path):
    from brandsafe.labels import Label
    from brandsafe.training.model import build_model, load_tokenizer

    recipe = load_recipe("minilm-cpu-content")
    model = build_model(recipe, LabelSet([Label("x", "x", False, True)]), load_tokenizer(recipe))
    adapted = {n.split(".layer.")[1].split(".")[0] for n, p in model.named_parameters()
               if p.requires_grad and ".layer." in n}
    assert adapted == {str(i) for i in recipe.lora_layers} == {"3", "4", "5"}


def test_the_realistic_page_set_rebuilds_byte_for_byte_and_is_well_formed(tmp_path, taxonomy_path):
    out = tmp_path / "pages.jsonl"
    subprocess.run([sys.executable, str(PAGE_SET.parent / "pages.py"), "--out", str(out)], check=True,
                   capture_output=True, cwd=REPO)
    assert out.read_bytes() == PAGE_SET.read_bytes()
    rows = read_rows(PAGE_SET)
    assert len(rows) >= 300 and all(has_path(r.url) for r in rows)
    taxonomy = Taxonomy.load(taxonomy_path)
    labels = build_label_set(rows, taxonomy)
    assert len(labels) == 13, "every row's label resolves to one of the 13 known labels"
    view = page_set_view(labels, taxonomy)
    groups = {s.split(":")[1] for s in view.sources}
    assert groups == {"harmful", "reporting", "safe"}
    harmful = np.array([s.split(":")[1] == "harmful" for s in view.sources])
    assert (view.examples.targets[harmful].sum(axis=1) > 0).all()
    assert (view.examples.targets[~harmful].sum() == 0)


def test_zero_shot_scorer_reads_titles_without_training(taxonomy_path):
    from brandsafe.training.zeroshot import PrototypeScorer

    taxonomy = Taxonomy.load(taxonomy_path)
    rows = read_rows(PAGE_SET)
    labels = build_label_set(rows, taxonomy)
    scorer = PrototypeScorer(labels, taxonomy)
    texts = ["Best online casino bonus: 100 free spins on slots tonight", "Easy weeknight lasagne recipe"]
    probs = scorer(texts)
    gambling = next(i for i, l in enumerate(labels) if l.name == "Casinos & Gambling")
    assert probs.shape == (2, len(labels)) and ((0 < probs) & (probs < 1)).all()
    assert probs[0, gambling] > 0.5 > probs[1].max()
