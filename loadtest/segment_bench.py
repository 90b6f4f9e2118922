"""Cost of turning a never-seen page into model text, the part of a cache miss that runs on the
event loop: word segmentation of URL letter runs, wordsegment's own search against ours
(brandsafe.urltext, same splits), and parse + render of replayed requests (a benchmark: it prints).

    python -m brandsafe.loadtest.segment_bench

Both segmenters run over the same runs, interleaved run by run, in one process; ours is checked
to split every one of them exactly as wordsegment does.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import wordsegment

from brandsafe.rendering import render
from brandsafe.service.requests import parse
from brandsafe.urltext import MAX_SEGMENT_LEN, MIN_SEGMENT_LEN, load_segmenter

from . import replay as replay_file


def url_runs(data: Path) -> list[str]:
    """Every distinct letter run of the labelled URLs that the service would segment."""
    runs = set()
    with open(data) as lines:
        for line in lines:
            runs.update(r for r in re.findall(r"[a-z]+", json.loads(line)["url"].lower())
                        if MIN_SEGMENT_LEN <= len(r) <= MAX_SEGMENT_LEN)
    return sorted(runs)


def describe(name: str, seconds: list[float]) -> str:
    us = np.array(seconds) * 1e6
    return (f"{name:<26} mean {us.mean():7.0f}  p50 {np.percentile(us, 50):7.0f}  p99 {np.percentile(us, 99):7.0f}"
            f"  max {us.max():7.0f} us")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=replay_file.DEFAULT_DATA,
                        help="labelled URLs (JSONL) whose letter runs are segmented (default: %(default)s)")
    parser.add_argument("--replay", type=Path, default=replay_file.DEFAULT_REPLAY,
                        help="replay file for the parse + render timing (built if missing; default: %(default)s)")
    parser.add_argument("--requests", type=int, default=5000,
                        help="replayed requests to parse and render (default: %(default)s)")
    args = parser.parse_args(argv)

    ours = load_segmenter()
    runs = url_runs(args.data)
    theirs_s, ours_s, mismatched = [], [], 0
    for run in runs:
        start = time.perf_counter()
        expected = wordsegment.segment(run)
        middle = time.perf_counter()
        got = ours.segment(run)
        ours_s.append(time.perf_counter() - middle)
        theirs_s.append(middle - start)
        mismatched += got != expected
    print(f"{len(runs)} distinct URL letter runs of {MIN_SEGMENT_LEN}-{MAX_SEGMENT_LEN} letters; "
          f"splits differing from wordsegment: {mismatched}")
    print(describe("wordsegment.segment", theirs_s))
    print(describe("brandsafe segmenter", ours_s))
    print(f"mean ratio wordsegment / ours: {np.mean(theirs_s) / np.mean(ours_s):.1f}x, "
          f"p99 ratio {np.percentile(theirs_s, 99) / np.percentile(ours_s, 99):.1f}x")

    requests = [replay_file.to_request(r) for r in replay_file.load_or_build(args.replay)[:args.requests]]
    first, again = [], []
    for timings in (first, again):  # the second pass hits the per-run and per-page memos
        for request in requests:
            start = time.perf_counter()
            render(parse(request, "default").page)
            timings.append(time.perf_counter() - start)
    print(describe("parse+render, first sight", first))
    print(describe("parse+render, seen before", again))


if __name__ == "__main__":
    main()
