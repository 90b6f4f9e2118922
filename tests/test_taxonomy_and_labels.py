import logging

import pytest

from brandsafe.taxonomy import SENSITIVE_TOPICS_ID, Taxonomy, TaxonomyError
from brandsafe.training.data import LabelledRow
from brandsafe.training.labelmap import build_label_set, resolve_label


@pytest.fixture(scope="module")
def taxonomy(taxonomy_path):
    return Taxonomy.load(taxonomy_path)


def test_parses_published_tsv_with_two_header_rows_and_crlf(taxonomy, taxonomy_path):
    raw = taxonomy_path.read_bytes()
    assert b"\r\n" in raw  # the published file, not a normalised copy
    assert len(taxonomy.nodes) == 704
    assert "Unique ID" not in taxonomy.nodes and "Relational ID System" not in taxonomy.nodes
    node = taxonomy.by_id("181")
    assert node.name == "Casinos & Gambling" and node.parent_id == "150"
    assert all(not n.name.endswith("\r") for n in taxonomy.nodes.values())


def test_eleven_sensitive_categories(taxonomy):
    names = {n.name for n in taxonomy.sensitive_categories()}
    assert len(names) == 11
    assert "Obscenity and Profanity" in names and "Terrorism" in names
    assert all(n.parent_id == SENSITIVE_TOPICS_ID for n in taxonomy.sensitive_categories())


def test_resolves_by_name_and_by_id_case_insensitively(taxonomy):
    assert resolve_label("casinos  &  GAMBLING", taxonomy).id == "181"
    assert resolve_label("8FD8nI", taxonomy).name == "Terrorism"
    assert resolve_label("8FD8nI", taxonomy).sensitive


def test_unknown_label_is_kept_as_custom_with_a_warning(taxonomy, caplog):
    rows = [LabelledRow("a.com", "", ("Misinformation",), "f.jsonl:3"), LabelledRow("b.com", "", ("181",), "f.jsonl:4")]
    with caplog.at_level(logging.WARNING):
        labels = build_label_set(rows, taxonomy)
    assert "f.jsonl:3" in caplog.text and "Misinformation" in caplog.text
    misinformation = labels.labels[labels.index["Misinformation"]]
    assert misinformation.custom and misinformation.name == "Misinformation"
    assert "181" in labels.index
    assert sum(l.sensitive for l in labels) == 11  # every GARM category is a label, even without rows


def test_rejects_a_file_that_is_not_the_taxonomy(tmp_path):
    bad = tmp_path / "t.tsv"
    bad.write_text("h1\r\nh2\r\nonly-one-column\r\n")
    with pytest.raises(TaxonomyError, match=r"t.tsv:3"):
        Taxonomy.load(bad)
