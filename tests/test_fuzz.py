"""Fuzz the real server: every generated request is answered with a valid response or
INVALID_ARGUMENT naming a field; never a crash, never another status; and no request costs the
request path more than a stated CPU budget over the median (issue 25: one valid 24 KB request once
stalled the event loop ~9 s, and 100,000 requests of ordinary shapes never drew it).

Two parts: a hypothesis property test (shrinks a failure to a minimal request), and a bulk run of
100,000 requests recombined, with a seeded RNG, from field values hypothesis draws from the same
strategies (drawing 100,000 nested requests one by one would take most of an hour)."""
import random
import statistics
import warnings

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brandsafe.loadtest.hostile_cost import hostile_requests, request_cost, server_stall
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

REQUESTS_PER_EXAMPLE = 10
EXAMPLES = 200
BULK_REQUESTS = 100_000

odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\t\n", "💥🔥", "ä" * 50, "\u202e\u200b", "%00%ff%zz", "<script>", "\x00"]),
)
urls = st.one_of(
    st.sampled_from([
        "https://www.example.com/path?q=1", "example.com", "//no-scheme.example/x", "http://[::1]:8080/a",
        "http://[2001:db8::1]/x", "http://[bad", "xn--bcher-kva.example/bücher", "https://bücher.de/ä?ö=ü",
        "http://user:pw@host.example:99999/p", "https://a.example/" + "%41" * 300, "javascript:alert(1)",
        "https://a.example/?" + "&".join(f"k{i}=v{i}" for i in range(400)), "https://😀.example/🔥", "",
    ]),
    st.text(max_size=120),
    st.builds(lambda h, p: f"https://{h}.example/{p}", st.text(min_size=1, max_size=20), st.text(max_size=60)),
    st.integers(0, 9000).map(lambda n: "https://long.example/" + "a" * n),  # crosses the URL limit
)
# Hostile shapes: what costs the request path most per byte (IDNA, labels, dot segments, query
# pairs, keyword lists), drawn up to the request limits.
cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
idn_hosts = st.one_of(
    st.text(cjk, min_size=1, max_size=70).map(lambda label: label + ".example"),          # one long label
    st.lists(st.text(cjk, min_size=1, max_size=20), min_size=2, max_size=40).map(".".join),  # many IDN labels
    st.integers(1, 2800).map(lambda n: ".".join(["ab"] * n)),                                # many ASCII labels
    st.text(cjk, min_size=200, max_size=8100),                                               # past DNS's limits
)
hostile_urls = st.builds(
    lambda host, depth, pairs: (f"https://{host}/" + "/".join(["a", "..", ".", "%2E%2E"][i % 4] for i in range(depth))
                                + ("?" + "&".join(f"k{i}=v{i}" for i in range(pairs)) if pairs else ""))[:8192],
    idn_hosts, st.integers(0, 2000), st.integers(0, 700))
hostile_keywords = st.integers(0, 100).map(lambda n: ",".join(chr(0x4E00 + i) * 80 for i in range(n)))
urls = st.one_of(urls, hostile_urls)
keywords = st.one_of(st.text(max_size=60), st.integers(0, 150).map(lambda n: ",".join(["kw"] * n)), hostile_keywords)
kwarray = st.lists(odd_text, max_size=110)
categories = st.lists(st.text(max_size=70), max_size=105)
content = st.builds(pb.Content, title=st.one_of(odd_text, st.integers(0, 2100).map(lambda n: "t" * n)),
                    keywords=keywords, kwarray=kwarray, language=st.text(max_size=20), url=urls,
                    cat=categories, cattax=st.integers(-5, 2**31 - 1))
site = st.builds(pb.Site, page=urls, ref=urls, domain=st.text(max_size=300), name=odd_text, keywords=keywords,
                 kwarray=kwarray, cat=categories, cattax=st.integers(-5, 20), content=content)
app = st.builds(pb.App, bundle=st.one_of(st.text(max_size=300), st.just("com.example.game")), name=odd_text,
                domain=st.text(max_size=40), storeurl=urls, keywords=keywords, cat=categories, content=content)
requests = st.builds(
    lambda id_, imp, s, a, which, policy, tmax: pb.ClassifyRequest(
        id=id_, imp_id=imp, policy_id=policy, tmax=tmax,
        **({"site": s} if which in ("site", "both") else {}), **({"app": a} if which in ("app", "both") else {})),
    st.text(max_size=140), st.text(max_size=20), site, app, st.sampled_from(["site", "site", "app", "both", "none"]),
    st.sampled_from(["", "default", "strict", "nope", "x" * 200]), st.integers(0, 2**32 - 1))

FIELDS = ("id", "imp_id", "policy_id", "site", "app")


def _check(responses, sent):
    assert len(responses) == len(sent)
    for response in responses:
        if response.HasField("error"):
            assert response.error.code == "INVALID_ARGUMENT", response.error
            assert response.error.message.split(":")[0].split(".")[0].split(",")[0].split("[")[0] in FIELDS, \
                response.error.message
        else:
            assert response.decision in (pb.ALLOW, pb.BLOCK)
            assert response.bundle_id and response.cattax == 9
            assert all(0.0 <= c.score <= 1.0 for c in response.categories)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(batch=st.lists(requests, min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE))
def test_generated_requests_get_a_valid_answer_or_invalid_argument(minilm_server, fuzz_stub, batch):
    _check(list(fuzz_stub.ClassifyStream(iter(batch), timeout=120)), batch)


def _corpus(strategy, n: int) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .example() outside @given is meant for exploration; it is fine here
        return [strategy.example() for _ in range(n)]


def test_one_hundred_thousand_recombined_requests(minilm_server, fuzz_stub):
    rng = random.Random(1234)
    pool = {"url": _corpus(urls, 300), "text": _corpus(odd_text, 300), "kw": _corpus(keywords, 100),
            "kwarray": _corpus(kwarray, 60), "cat": _corpus(categories, 60), "id": _corpus(st.text(max_size=140), 100),
            "bundle": _corpus(st.text(max_size=300), 60)}

    def pick(kind):
        return rng.choice(pool[kind])

    def content():
        return pb.Content(title=pick("text"), keywords=pick("kw"), kwarray=pick("kwarray"), language=pick("text")[:20],
                          url=pick("url"), cat=pick("cat"), cattax=rng.randint(-2, 12))

    def request():
        which = rng.choice(["site", "site", "site", "app", "both", "none"])
        fields = dict(id=pick("id"), imp_id=pick("text")[:20], policy_id=rng.choice(["", "default", "strict", "nope"]),
                      tmax=rng.choice([0, 0, 0, 1, 50, 2**32 - 1]))
        if which in ("site", "both"):
            fields["site"] = pb.Site(page=pick("url"), ref=pick("url"), domain=pick("text"), name=pick("text"),
                                     keywords=pick("kw"), kwarray=pick("kwarray"), cat=pick("cat"),
                                     cattax=rng.randint(-2, 12), content=content())
        if which in ("app", "both"):
            fields["app"] = pb.App(bundle=pick("bundle"), name=pick("text"), domain=pick("text")[:40],
                                   storeurl=pick("url"), keywords=pick("kw"), content=content())
        return pb.ClassifyRequest(**fields)

    sent = 0
    for _ in range(BULK_REQUESTS // 5000):
        batch = [request() for _ in range(5000)]
        _check(list(fuzz_stub.ClassifyStream(iter(batch), timeout=600)), batch)
        sent += len(batch)
    assert sent >= 100_000


def test_undecodable_bytes_are_invalid_argument_not_a_crash(minilm_server):
    """Invalid UTF-8 inside a proto3 string field cannot be parsed; the caller is told so."""
    bad = b"\x1a\x06\x0a\x04\xff\xfe\xfd\xfc"  # site { page: <4 bytes of invalid UTF-8> }
    with minilm_server.channel() as channel:
        call = channel.unary_unary("/brandsafe.v1.BrandSafety/Classify", request_serializer=lambda b: b,
                                   response_deserializer=pb.ClassifyResponse.FromString)
        try:
            call(bad, timeout=10)
            raised = None
        except grpc.RpcError as exc:
            raised = exc
        assert raised is not None and raised.code() == grpc.StatusCode.INVALID_ARGUMENT, raised
        assert "request" in raised.details()
        ok = pb_grpc.BrandSafetyStub(channel).Classify(pb.ClassifyRequest(site=pb.Site(page="a.example")), timeout=10)
        assert ok.bundle_id


# -- cost: no request may cost the request path much more than any other -----------------------------

COST_SAMPLES = 400
COST_BUDGET_OVER_MEDIAN = 0.005  # seconds of CPU (issue 25's bound); the 8 KB IDN URL cost ~9 s


def test_no_request_costs_more_than_the_budget_over_the_median():
    """Each request is timed (CPU of this thread, best of 3) through the request path the server
    runs before inference: decode, validate and normalise, cache key, model text. Drawn from the
    hostile strategies above and the shapes of loadtest/hostile_cost.py."""
    from brandsafe.urltext import load_segmenter

    load_segmenter()
    rng = random.Random(25)
    corpus = {"url": _corpus(hostile_urls, 200), "kw": _corpus(hostile_keywords, 30)}
    sent = [hostile for _, hostile, _ in hostile_requests()]
    for _ in range(COST_SAMPLES):
        sent.append(pb.ClassifyRequest(site=pb.Site(page=rng.choice(corpus["url"]), keywords=rng.choice(corpus["kw"]),
                                                    content=pb.Content(keywords=rng.choice(corpus["kw"])))))
    costs = [(request_cost(request)[0], request) for request in sent]
    median = statistics.median(cost for cost, _ in costs)
    worst, request = max(costs, key=lambda pair: pair[0])
    print(f"\nrequest-path CPU over {len(costs)} hostile requests: median {median * 1e3:.2f} ms, "
          f"worst {worst * 1e3:.2f} ms for a {request.ByteSize()}-byte request: "
          f"site.page={request.site.page[:120]!r}… ({len(request.site.page)} characters), "
          f"{len(request.site.keywords.split(','))} + {len(request.site.content.keywords.split(','))} keywords")
    assert worst <= median + COST_BUDGET_OVER_MEDIAN, f"{worst * 1e3:.1f} ms > {median * 1e3:.1f} ms + 5 ms"


def test_the_costliest_inputs_never_stall_a_real_server(minilm_server):
    """Each of loadtest/hostile_cost.py's inputs sent to the real server while a health check is
    called every 10 ms: no check waits long (before issue 25 the 8 KB IDN URL held the event loop,
    and every other caller, ~9 s). 1 s is a bound that regression would blow ~9x on a busy CPU."""
    for name, hostile, _ in hostile_requests():
        took, worst_wait, status = server_stall(minilm_server.target, hostile)
        print(f"{name}: {status} in {took * 1e3:.1f} ms, longest health check {worst_wait * 1e3:.1f} ms")
        assert status in ("OK", "INVALID_ARGUMENT"), (name, status)
        assert worst_wait < 1.0, (name, worst_wait)
    with minilm_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.BrandSafetyStub(channel).Classify(hostile_requests()[1][1], timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("site.page: host is 8004 characters")


@pytest.fixture(scope="module")
def fuzz_stub(minilm_server):
    channel = minilm_server.channel()
    yield pb_grpc.BrandSafetyStub(channel)
    channel.close()
