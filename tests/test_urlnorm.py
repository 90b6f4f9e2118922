import time

from hypothesis import given, settings
from hypothesis import strategies as st

from brandsafe.urlnorm import UrlNormalizer, host_error, normalize_url, remove_dot_segments
from brandsafe.urltext import MAX_HOST_WORDS, url_words

URLISH = st.builds(
    lambda scheme, host, port, path, query, frag: f"{scheme}{host}{port}{path}{query}{frag}",
    st.sampled_from(["", "http://", "HTTPS://", "ftp://", "//"]),
    st.one_of(st.from_regex(r"[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,8}){0,3}\.?", fullmatch=True),
              st.just("[::1]"), st.just("bücher.DE"), st.text(max_size=12)),
    st.sampled_from(["", ":80", ":443", ":8080", ":99999", ":x"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20).map(lambda s: "/" + s),
    st.lists(st.tuples(st.sampled_from(["utm_source", "gclid", "a", "B", "q", "fbclid"]), st.text(max_size=5)),
             max_size=4).map(lambda kv: ("?" + "&".join(f"{k}={v}" for k, v in kv)) if kv else ""),
    st.sampled_from(["", "#frag", "#"]),
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(URLISH, st.text(max_size=60)))
def test_normalization_never_raises_and_is_idempotent(url):
    once = normalize_url(url)
    assert isinstance(once, str)
    assert normalize_url(once) == once


def test_equivalent_spellings_share_one_key():
    same = ["HTTP://WWW.Example.COM:80/a?b=2&a=1#top", "http://www.example.com/a?a=1&b=2&utm_source=news",
            "www.example.com./a?gclid=xyz&a=1&b=2", "http://www.example.com:80/a?b=2&fbclid=1&a=1"]
    assert len({normalize_url(u) for u in same}) == 1
    assert normalize_url("https://bücher.de/x") == "https://xn--bcher-kva.de/x"
    assert normalize_url("https://example.com:443") == "https://example.com/"
    assert normalize_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert normalize_url("http://example.com/a") != normalize_url("http://example.com/b")
    assert normalize_url("http://example.com/?id=1") != normalize_url("http://example.com/?id=2")


def test_tracking_list_is_configurable():
    keep_utm = UrlNormalizer(tracking_params={"sid"}, tracking_prefixes=())
    assert keep_utm("example.com/?utm_source=x&sid=9") == "http://example.com/?utm_source=x"


# -- issue 25: bounded cost, IDNA 2008, dot segments ------------------------------------------------

CJK = "".join(chr(0x4E00 + i) for i in range(8000))  # distinct code points: punycode's worst case


def test_a_host_dns_cannot_hold_is_named_and_never_idna_encoded():
    assert host_error("https://" + "a" * 63 + ".example/") is None
    assert "label of 64 characters" in host_error("https://" + "a" * 64 + ".example/")
    assert "over the 253" in host_error("https://" + ".".join(["abc"] * 70) + "/")
    assert host_error("http://[::1]:8080/x") is None and host_error("http://[bad") is None
    # Before issue 25 this URL (inside the 8,192-character request limit) took ~9 s to normalise,
    # quadratic punycode on one 8,000-character label; 0.5 s is a bound that change would blow 18x.
    hostile = f"http://{CJK}.com/"
    started = time.thread_time()
    assert host_error(hostile).startswith("host is 8004 characters")
    once = normalize_url(hostile)
    assert time.thread_time() - started < 0.5
    assert normalize_url(once) == once  # still total and idempotent


def test_idna_2008_keeps_sharp_s_and_final_sigma_their_own_sites():
    assert normalize_url("https://faß.de/") == "https://xn--fa-hia.de/"  # IDNA 2003: fass.de, another site
    assert normalize_url("https://FASS.de/") == "https://fass.de/"
    assert normalize_url("https://Bücher.DE/x") == "https://xn--bcher-kva.de/x"
    assert normalize_url("http://Ｅｘａｍｐｌｅ。com/") == "http://example.com/"  # UTS-46 mapping
    assert normalize_url("https://😀.example/") == "https://xn--e28h.example/"  # 2008 refuses it; as browsers spell it
    assert url_words(normalize_url("faß.de")).host == ("faß", "de")


def test_dot_segments_are_removed_as_rfc_3986_says():
    assert normalize_url("http://a.example/a/./b/../c") == "http://a.example/a/c"
    assert normalize_url("http://a.example/a/b/..") == "http://a.example/a/"
    assert normalize_url("http://a.example/../../x") == "http://a.example/x"
    assert normalize_url("http://a.example/a/%2E%2E/b") == "http://a.example/b"
    assert normalize_url("http://a.example/a.b/c..d/.e") == "http://a.example/a.b/c..d/.e"
    for path, expected in [("/a/b/c/./../../g", "/a/g"), ("mid/content=5/../6", "mid/6"), ("/./", "/"),
                           ("", ""), ("/a/..", "/"), ("/a/.", "/a/")]:
        assert remove_dot_segments(path) == expected, path


def test_host_words_are_capped():
    host = ".".join(["spam"] * 60) + ".example"
    assert len(url_words(host).host) == MAX_HOST_WORDS
