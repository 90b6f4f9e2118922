from hypothesis import given, settings
from hypothesis import strategies as st

from brandsafe.urlnorm import UrlNormalizer, normalize_url

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
