"""The cyclic garbage collector, kept off the latency path and in view.

A full collection visits every tracked container and stops every Python thread meanwhile; with
a bundle, its tokenizer, the word lists and the protobuf descriptors loaded that is ~50,000
objects and 15-25 ms on this CPU, taken while requests wait (loadtest/TUNING.md §11). Those
objects live as long as the process, so once a bundle is loaded (and again once a retired one is
released) they are moved to the permanent generation, where collections no longer walk them.
Pauses are exported by generation, so a latency tail can be matched against them.
"""
from __future__ import annotations

import gc
import time
from typing import Callable

_watched: set[int] = set()  # histograms already fed, so a second server in one process adds no callback


def settle() -> int:
    """Collect what is garbage now, then freeze everything left; returns how many objects are frozen.
    Unfreezing first lets a retired bundle's objects be collected instead of staying frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def watch_pauses(histogram) -> Callable[[], None]:
    """Observe every collection's duration into `histogram` (labelled by generation); returns a
    function that stops it."""
    if id(histogram) in _watched:
        return lambda: None
    _watched.add(id(histogram))
    by_generation = [histogram.labels(generation=str(g)) for g in range(3)]
    started = [0.0]

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_collection)

    def unwatch() -> None:
        gc.callbacks.remove(on_collection)
        _watched.discard(id(histogram))
    return unwatch
