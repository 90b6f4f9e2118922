"""`brandsafe score FILE`: verdicts for a list of pages, in-process, through the bundle, the
rendering and the brand profiles the service uses; optionally written into the shared Redis tier
under the service's own cache keys, so a new bundle's replicas start warm.

Input: JSONL (`{"url", "title"?, "keywords"? (string or list), "id"?}`) or CSV with a header
(`url[,title][,keywords][,id]`). Each row is checked like a bid request (the same validation,
so the same field limits): a bad row is reported as `file:line: what is wrong` and skipped; the
rest are still scored, and the exit status is 1 when any row was bad.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

CSV_COLUMNS = ("line", "id", "url", "policy", "decision", "reason", "top_category", "top_score", "domain_list")
DEFAULT_BATCH = 64


class ScoreInputError(ValueError):
    pass


@dataclass(frozen=True)
class PageRow:
    where: str      # file:line
    row_id: str
    page: object    # rendering.PageContext (its URL normalised, as the service keys it)
    url: str = ""   # the URL as the file gives it, echoed in the verdicts


def add_score_command(sub) -> None:
    from brandsafe.cli import DEFAULT_BUNDLE

    p = sub.add_parser("score", help="score a JSONL/CSV list of pages in-process; JSONL/CSV verdicts out",
                       description="Score every page of FILE with the bundle, in batches, and write one verdict "
                                   "per page and brand profile. Bad rows are reported as file:line and skipped "
                                   "(exit status 1); the rest are scored. --warm-redis writes the scores into "
                                   "the service's shared cache tier under its own keys.")
    p.add_argument("file", type=Path, help="pages: .jsonl (url, title, keywords, id) or .csv with a header row")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--policies", type=Path, default=None,
                   help="brand profiles TOML (default: the packaged brandsafe/policies.toml)")
    p.add_argument("--policy", action="append", default=None, metavar="ID",
                   help="brand profile to decide with; repeat for several, 'all' for every one (default: default)")
    p.add_argument("--out", type=Path, default=None,
                   help="verdicts file, .jsonl or .csv (default: JSONL on stdout)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per model call (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads, 0 = every core (default: %(default)s)")
    p.add_argument("--warm-redis", default="", metavar="URL",
                   help="also write each page's scores into this Redis (the serve --redis-url tier), e.g. "
                        "redis://cache:6379/0")
    p.add_argument("--cache-ttl", type=float, default=3600.0,
                   help="TTL of the warmed entries in seconds; use the servers' --cache-ttl (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_score)


def read_pages(path: Path, errors: list[str]) -> Iterator[PageRow]:
    """Each good row as a PageRow; each bad one appended to `errors` as `file:line: what is wrong`."""
    from brandsafe.client import site_request
    from brandsafe.service.policy import DEFAULT_POLICY_ID
    from brandsafe.service.requests import RequestError, parse

    for where, record in _records(path, errors):
        url = record.get("url")
        if not isinstance(url, str) or not url.strip():
            errors.append(f"{where}: url: required (the page URL)")
            continue
        title, keywords = record.get("title") or "", record.get("keywords") or ""
        if isinstance(keywords, list):
            keywords = ",".join(str(k) for k in keywords)
        if not isinstance(title, str) or not isinstance(keywords, str):
            errors.append(f"{where}: title and keywords must be text (keywords: a string or a list)")
            continue
        try:
            parsed = parse(site_request(url, title, keywords), DEFAULT_POLICY_ID)
        except RequestError as exc:  # the service's own limits, named by field
            errors.append(f"{where}: {exc}")
            continue
        yield PageRow(where, str(record.get("id") or ""), parsed.page, url.strip())


def _records(path: Path, errors: list[str]) -> Iterator[tuple[str, dict]]:
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "url" not in reader.fieldnames:
                raise ScoreInputError(f"{path}:1: a CSV needs a header row with a 'url' column")
            for record in reader:
                yield f"{path}:{reader.line_num}", record
        return
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            where = f"{path}:{line_no}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                errors.append(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                errors.append(f"{where}: expected a JSON object, got {type(record).__name__}")
                continue
            yield where, record


def batches(rows: Iterator[PageRow], size: int) -> Iterator[list[PageRow]]:
    batch: list[PageRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class VerdictWriter:
    """One line per page and profile, JSONL or CSV by the file's suffix (JSONL on stdout)."""

    def __init__(self, out: Path | None):
        self.fh = out.open("w", newline="") if out else sys.stdout
        self.csv = csv.writer(self.fh) if out and out.suffix.lower() == ".csv" else None
        if self.csv:
            self.csv.writerow(CSV_COLUMNS)

    def write(self, row: PageRow, body) -> None:
        from brandsafe.v1 import brandsafe_pb2 as pb

        listed = body.domain_list.list + ":" + body.domain_list.domain if body.HasField("domain_list") else ""
        reason = body.reasons[0].category_name if body.reasons else ""
        top = body.categories[0] if body.categories else None
        line = row.where.rpartition(":")[2]
        if self.csv:
            self.csv.writerow([line, row.row_id, row.url or row.page.url, body.policy_id,
                               pb.Decision.Name(body.decision), reason, top.name if top else "", f"{top.score:.4f}" if top else "", listed])
            return
        record = {"line": int(line), "id": row.row_id, "url": row.url or row.page.url, "policy": body.policy_id,
                  "decision": pb.Decision.Name(body.decision),
                  "reasons": [{"category": r.category_name, "score": round(r.score, 4),
                               "threshold": round(r.threshold, 4)} for r in body.reasons],
                  "categories": [{"id": c.id, "name": c.name, "score": round(c.score, 4)} for c in body.categories],
                  "domain_list": listed, "bundle_id": body.bundle_id}
        self.fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.fh is not sys.stdout:
            self.fh.close()


class RedisWarmer:
    """Writes scores where the service's Redis tier reads them: the key `cache.cache_key` gives a
    server of this bundle without a retrieval index, the value `cache.encode_value` (signed with
    $BRANDSAFE_REDIS_SECRET when the servers use one), with a TTL."""

    def __init__(self, url: str, bundle_id: str, ttl_seconds: float):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.client.ping()  # a wrong URL fails here, before any scoring
        self.bundle_id, self.ttl_ms = bundle_id, int(ttl_seconds * 1000)
        self.secret = os.environ.get("BRANDSAFE_REDIS_SECRET", "").encode()
        self.written = 0

    def write(self, rows: list[PageRow], scores) -> None:
        from brandsafe.service.cache import cache_key, encode_value

        pipe = self.client.pipeline(transaction=False)
        for row, row_scores in zip(rows, scores):
            key = cache_key(self.bundle_id, row.page, normalized=True)  # parse normalised it
            pipe.set(key, encode_value(key, row_scores, self.secret), px=self.ttl_ms)
        pipe.execute()
        self.written += len(rows)


def _cmd_score(args) -> int:
    from tqdm import tqdm

    from brandsafe.rendering import render
    from brandsafe.service.model import LoadedBundle
    from brandsafe.service.policy import DEFAULT_POLICY_FILE, load_policies
    from brandsafe.service.servicer import verdict_body

    if args.batch_size < 1 or args.cache_ttl <= 0:
        raise ScoreInputError("--batch-size must be >= 1 and --cache-ttl > 0")
    model = LoadedBundle(args.bundle, intra_op_threads=args.threads)
    try:
        policies = load_policies(args.policies or DEFAULT_POLICY_FILE, model.labels, model.thresholds)
        wanted = args.policy or ["default"]
        chosen = sorted(policies) if "all" in wanted else wanted
        unknown = [p for p in chosen if p not in policies]
        if unknown:
            raise ScoreInputError(f"--policy: unknown brand profile(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(policies))})")
        warmer = None
        if args.warm_redis:
            if model.info.context_schema:
                raise ScoreInputError("--warm-redis: this bundle reads a <context> block, and its servers key "
                                      "verdicts by index version too; warm them by traffic instead")
            warmer = RedisWarmer(args.warm_redis, model.bundle_id, args.cache_ttl)
        errors: list[str] = []
        writer = VerdictWriter(args.out)
        started, scored = time.monotonic(), 0
        with tqdm(unit=" rows", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True) as bar:
            for batch in batches(read_pages(args.file, errors), args.batch_size):
                scores = model.score([render(row.page, normalized=True) for row in batch])
                for row, row_scores in zip(batch, scores):
                    for pid in chosen:
                        writer.write(row, verdict_body(row_scores, policies[pid], model, row.page))
                if warmer:
                    warmer.write(batch, scores)
                scored += len(batch)
                bar.update(len(batch))
        writer.close()
    finally:
        model.close()
    elapsed = time.monotonic() - started
    for line in errors:
        print(line, file=sys.stderr)
    summary = f"scored {scored} rows in {elapsed:.1f}s ({scored / max(elapsed, 1e-9):.0f} rows/s)"
    if warmer:
        summary += f"; {warmer.written} verdicts written to Redis (bundle {model.bundle_id})"
    if errors:
        summary += f"; {len(errors)} bad rows skipped"
    print(summary, file=sys.stderr)
    return 1 if errors else 0
