"""Counters and histograms for the per-request path: plain Python numbers, updated on the event
loop's thread, turned into Prometheus samples only when scraped.

prometheus_client takes a lock on every update (its values may be shared between threads) and a
histogram observation walks its buckets in Python; a cache hit makes three updates, and with
metrics off the server spent ~30 us less CPU per hit (of ~400 us, loadtest/TUNING.md §8).
Everything recorded here is recorded from the event loop's thread, so a plain `+=` cannot lose an
update; a scrape runs on the metrics server's thread and reads under the GIL, so at worst it sees
a histogram one observation behind its sum.
"""
from __future__ import annotations

import bisect
import math

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily


class _Family:
    """Children by label values, created on first use like prometheus_client's `labels()`."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] | list[str],
                 registry: CollectorRegistry | None):
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, **labelvalues: str):
        if set(labelvalues) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels must be exactly {list(self.labelnames)}, got {sorted(labelvalues)}")
        key = tuple(str(labelvalues[name]) for name in self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _new_child(self):
        raise NotImplementedError

    def describe(self):
        return [self._family()]

    def _family(self):
        raise NotImplementedError


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class LoopCounter(_Family):
    def _new_child(self) -> _CounterChild:
        return _CounterChild()

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self):
        family = self._family()
        for key, child in list(self._children.items()):
            family.add_metric(list(key), child.value)
        return [family]


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is the +Inf bucket
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. Prometheus' "le" bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class LoopHistogram(_Family):
    def __init__(self, name: str, documentation: str, labelnames, buckets, registry: CollectorRegistry | None):
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"{name}: buckets must be distinct and increasing, got {list(buckets)}")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self):
        family = self._family()
        for key, child in list(self._children.items()):
            counts, total, cumulative = list(child.counts), child.sum, 0
            buckets = []
            for bound, count in zip(self.bounds + (math.inf,), counts):
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric(list(key), buckets, total)
        return [family]
