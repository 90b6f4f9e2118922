import gc
import re
import weakref

from brandsafe.service import heap


class Node:
    def __init__(self):
        self.self_ref = self  # a reference cycle: only the cyclic GC can free it


def test_settle_collects_garbage_freezes_survivors_and_releases_them_once_retired():
    garbage, kept = Node(), Node()
    garbage_ref, kept_ref = weakref.ref(garbage), weakref.ref(kept)
    del garbage
    try:
        assert heap.settle() > 0
        assert garbage_ref() is None  # collected before the freeze
        del kept                      # now unreachable, like a retired bundle's objects
        gc.collect()
        assert kept_ref() is not None  # frozen: an ordinary collection no longer walks it
        heap.settle()
        assert kept_ref() is None      # the next settle (after a retire) frees it
    finally:
        gc.unfreeze()


def _pause_counts(metrics) -> dict[str, float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {g: float(n) for g, n in re.findall(r'brandsafe_gc_pause_seconds_count\{generation="(\d)"\} (\S+)', text)}


def test_gc_pauses_are_exported_by_generation():
    from prometheus_client import CollectorRegistry

    from brandsafe.service.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    stop = heap.watch_pauses(metrics.gc_pauses)
    try:
        assert heap.watch_pauses(metrics.gc_pauses)() is None  # a second watch of one histogram adds nothing
        gc.collect()
        gc.collect(0)
    finally:
        stop()
    counts = _pause_counts(metrics)
    assert counts["2"] >= 1 and counts["0"] >= 1  # (an automatic collection may add to either)
    gc.collect()
    assert _pause_counts(metrics) == counts  # no longer watched
