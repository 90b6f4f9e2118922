"""Real page URLs from the labelled data, as bid-request-shaped inputs for benchmarks.

Two uses:
- `load_pages` / `requests_for`: a shuffled sample of distinct pages (the latency benchmark).
- a *replay file*: impressions drawn with Zipf-like repetition, because real RTB traffic is
  heavy-tailed (a few publishers and pages take most impressions). Build it with

      python -m brandsafe.loadtest.replay build --out loadtest/replay.jsonl
      python -m brandsafe.loadtest.replay stats loadtest/replay.jsonl

  Each line is one impression: {"id", "page", "domain", "title", "keywords"} with the fields a
  bidder really sends (site.page, site.domain, site.content.title, site.keywords). The labelled
  data carries no keywords, so that field is empty rather than invented.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

import numpy as np

from brandsafe.client import site_request
from brandsafe.urltext import split_url
from brandsafe.v1 import brandsafe_pb2 as pb

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "brand-safety-urls.train.jsonl"
DEFAULT_REPLAY = Path(__file__).resolve().parent / "replay.jsonl"


def load_pages(data_file: Path, limit: int, seed: int = 7) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in Path(data_file).read_text().splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return [(r["url"], r.get("title") or "") for r in rows[:limit]]


def requests_for(pages: list[tuple[str, str]]) -> list[pb.ClassifyRequest]:
    return [site_request(url, title=title, request_id=str(i), imp_id="1") for i, (url, title) in enumerate(pages)]


def zipf_choice(rng: np.random.Generator, n: int, size: int, s: float) -> np.ndarray:
    """`size` draws from ranks 0..n-1 with P(rank k) ∝ 1/(k+1)^s (a truncated Zipf)."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return rng.choice(n, size=size, p=weights / weights.sum())


def build(rows: list[dict], impressions: int, zipf_s: float = 1.0, seed: int = 7) -> list[dict]:
    """Impressions over the distinct pages of `rows`: hosts get a random popularity rank and a Zipf
    share of traffic, and each host's pages share its traffic Zipf-like again."""
    rng = np.random.default_rng(seed)
    by_host: dict[str, list[dict]] = collections.defaultdict(list)
    seen = set()
    for row in rows:
        if row["url"] in seen:
            continue
        seen.add(row["url"])
        by_host[split_url(row["url"])[0] or row["url"]].append(row)
    hosts = sorted(by_host)
    rng.shuffle(hosts)  # popularity is unrelated to label or source: no category is over-served
    host_draws = zipf_choice(rng, len(hosts), impressions, zipf_s)
    out = []
    for i, h in enumerate(host_draws):
        host = hosts[h]
        pages = by_host[host]
        page = pages[int(zipf_choice(rng, len(pages), 1, zipf_s)[0])] if len(pages) > 1 else pages[0]
        out.append({
            "id": f"{rng.integers(1 << 63):016x}{i:016x}",  # bidders send opaque 32-char ids
            "page": page["url"],
            "domain": host,
            "title": page.get("title") or "",
            "keywords": page.get("keywords") or "",
        })
    return out


def write(records: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def to_request(record: dict) -> pb.ClassifyRequest:
    request = site_request(record["page"], title=record["title"], keywords=record["keywords"],
                           request_id=record["id"], imp_id="1")
    request.site.domain = record["domain"]
    return request


def load_or_build(path: Path | None, data_file: Path = DEFAULT_DATA, impressions: int = 20_000,
                  zipf_s: float = 1.0, seed: int = 7) -> list[dict]:
    """The replay file if it exists, else the same impressions built in memory (deterministic)."""
    if path is not None and Path(path).is_file():
        return read(path)
    rows = [json.loads(line) for line in Path(data_file).read_text().splitlines() if line.strip()]
    return build(rows, impressions, zipf_s, seed)


def stats(records: list[dict]) -> dict:
    hosts = collections.Counter(r["domain"] for r in records)
    pages = collections.Counter(r["page"] for r in records)
    n = len(records)
    top = lambda c, k: sum(v for _, v in c.most_common(k)) / n  # noqa: E731
    sizes = np.asarray([to_request(r).ByteSize() for r in records])
    return {
        "impressions": n,
        "distinct_hosts": len(hosts),
        "distinct_pages": len(pages),
        "top_10_hosts_share": round(top(hosts, 10), 3),
        "top_1pct_hosts_share": round(top(hosts, max(1, len(hosts) // 100)), 3),
        "with_title_share": round(sum(1 for r in records if r["title"]) / n, 3),
        "request_bytes_p50": int(np.percentile(sizes, 50)),
        "request_bytes_p99": int(np.percentile(sizes, 99)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write a replay file of Zipf-repeated impressions from the labelled data")
    b.add_argument("--data", type=Path, default=DEFAULT_DATA)
    b.add_argument("--out", type=Path, default=DEFAULT_REPLAY)
    b.add_argument("--impressions", type=int, default=20_000)
    b.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent (1.0 ≈ web traffic)")
    b.add_argument("--seed", type=int, default=7)
    s = sub.add_parser("stats", help="repetition and size summary of a replay file")
    s.add_argument("replay", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "build":
        rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
        records = build(rows, args.impressions, args.zipf_s, args.seed)
        write(records, args.out)
        print(f"wrote {len(records)} impressions to {args.out}", file=sys.stderr)
    else:
        records = read(args.replay)
    print(json.dumps(stats(records)))


if __name__ == "__main__":
    main()
