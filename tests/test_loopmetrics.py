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
