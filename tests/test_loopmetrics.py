"""The event-loop metrics export what prometheus_client's own Counter and Histogram would."""
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from brandsafe.service.loopmetrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.002, 0.005)


def test_counter_and_histogram_expose_the_same_samples_as_prometheus_client():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counters = (LoopCounter("x_requests_total", "doc", ["code"], registry=ours),
                Counter("x_requests_total", "doc", ["code"], registry=theirs))
    histograms = (LoopHistogram("x_latency_seconds", "doc", ["method"], buckets=BUCKETS, registry=ours),
                  Histogram("x_latency_seconds", "doc", ["method"], buckets=BUCKETS, registry=theirs))
    for counter in counters:
        counter.labels(code="OK").inc()
        counter.labels(code="OK").inc(2)
        counter.labels(code="INVALID_ARGUMENT").inc()
    # On a bound, below the first, between, and past the last bucket.
    for value in (0.001, 0.0001, 0.0015, 0.004, 0.3):
        for histogram in histograms:
            histogram.labels(method="Classify").observe(value)

    def samples(registry):
        return {(s.name, tuple(sorted(s.labels.items())), s.value)
                for family in registry.collect() for s in family.samples if not s.name.endswith("_created")}

    assert samples(ours) == samples(theirs)
    assert ours.get_sample_value("x_latency_seconds_bucket", {"method": "Classify", "le": "0.001"}) == 2
    assert ours.get_sample_value("x_latency_seconds_count", {"method": "Classify"}) == 5
    assert ours.get_sample_value("x_requests_total", {"code": "OK"}) == 3
    assert b'x_latency_seconds_bucket{le="+Inf",method="Classify"} 5.0' in generate_latest(ours)


def test_wrong_labels_and_bad_buckets_are_refused():
    counter = LoopCounter("y_total", "doc", ["result"], registry=None)
    with pytest.raises(ValueError, match="result"):
        counter.labels(outcome="hit")
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels(result="hit").inc(-1)
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("z_seconds", "doc", [], buckets=(0.2, 0.1), registry=None)


def _switches(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/status") as status:
        fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_the_metrics_server_answers_a_scrape_and_its_thread_sleeps_until_the_next():
    """prometheus_client's server thread wakes twice a second, idle, and takes the GIL each time;
    ours must answer scrapes the same and not wake at all in between."""
    import time
    import urllib.request

    from brandsafe.service.metrics import serve_registry

    registry = CollectorRegistry()
    LoopCounter("x_requests_total", "doc", ["code"], registry=registry).labels(code="OK").inc(3)
    httpd, thread = serve_registry(registry, 0, "127.0.0.1")  # a daemon, as in the service: left serving
    url = f"http://127.0.0.1:{httpd.server_port}/metrics"
    assert 'x_requests_total{code="OK"} 3.0' in urllib.request.urlopen(url, timeout=5).read().decode()
    time.sleep(0.2)  # let the thread that answered go back to waiting
    before = _switches(thread.native_id)
    time.sleep(1.5)  # three of prometheus_client's polls
    assert _switches(thread.native_id) == before
    assert 'x_requests_total{code="OK"} 3.0' in urllib.request.urlopen(url, timeout=5).read().decode()
