import pytest

from brandsafe.training.data import DataError, read_rows
from brandsafe.training.split import registrable_domain, split_by_domain


def test_reads_the_shared_jsonl_format(small_train_file):
    rows = read_rows(small_train_file)
    assert len(rows) > 100
    assert any(r.labels for r in rows) and any(not r.labels for r in rows)
    assert rows[0].origin == f"{small_train_file}:1"


def test_reads_csv_with_pipe_separated_labels(tmp_path):
    path = tmp_path / "urls.csv"
    path.write_text('url,label,title\nexample.com,,Example\n"casino.biz/x",Casinos & Gambling|Misinformation,\n')
    rows = read_rows(path)
    assert rows[0].labels == () and rows[0].title == "Example"
    assert rows[1].labels == ("Casinos & Gambling", "Misinformation")


@pytest.mark.parametrize("content, line, message", [
    ('{"url": "a.com", "labels": []}\n{"url": "b.com", "labels": [}\n', 2, "not valid JSON"),
    ('{"url": "a.com", "labels": []}\n\n{"url": "", "labels": []}\n', 3, "'url' must be a non-empty string"),
    ('{"url": "a.com", "labels": "Terrorism"}\n', 1, "'labels' must be a list"),
    ('{"url": "a.com", "labels": [], "title": 7}\n', 1, "'title' must be a string"),
    ('["a.com"]\n', 1, "expected a JSON object"),
])
def test_bad_jsonl_rows_name_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert f"{path}:{line}:" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("content, line, message", [
    ("link,label\na.com,\n", 1, "must have 'url' and 'label'"),
    ("url,label\na.com,Terrorism||Arms\n", 2, "empty label"),
    ("url,label\n,Terrorism\n", 2, "'url' must be a non-empty string"),
    ("url,label\na.com,x,extra\n", 2, "more fields"),
])
def test_bad_csv_rows_name_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert f"{path}:{line}:" in str(err.value) and message in str(err.value)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown format"):
        (tmp_path / "x.parquet").write_text("")
        read_rows(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="no such file"):
        read_rows(tmp_path / "nope.jsonl")


def test_registrable_domain_uses_the_public_suffix_list_offline():
    assert registrable_domain("http://news.bbc.co.uk/sport/x") == "bbc.co.uk"
    assert registrable_domain("Shop.Example.COM.:8080/a") == "example.com"
    assert registrable_domain("user.blogspot.com") == "user.blogspot.com"  # private suffix: one site per user


def test_split_never_puts_a_domain_on_both_sides(small_train_file):
    rows = read_rows(small_train_file)
    urls = [r.url for r in rows] + ["a.example.com/1", "b.example.com/2", "example.com/3"]
    strata = [r.labels[0] if r.labels else "safe" for r in rows] + ["safe"] * 3
    train, val = split_by_domain(urls, strata, 0.25, seed=1)
    assert sorted(train + val) == list(range(len(urls)))
    train_domains = {registrable_domain(urls[i]) for i in train}
    val_domains = {registrable_domain(urls[i]) for i in val}
    assert not train_domains & val_domains
    val_strata = {strata[i] for i in val}
    assert set(strata) <= val_strata | {s for s in set(strata) if strata.count(s) < 2}


def test_a_bad_byte_is_reported_on_its_own_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"url": "a.com", "labels": []}\n{"url": "b\xff.com", "labels": []}\n')
    with pytest.raises(DataError, match=r"rows.jsonl:2: not UTF-8"):
        read_rows(path)
