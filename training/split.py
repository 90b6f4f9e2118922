"""Train/validation split by registrable domain: no domain appears on both sides, so validation
measures what the model does on sites it has never seen."""
from __future__ import annotations

import random
from collections import defaultdict

from brandsafe.domains import registrable_domain


def split_by_domain(urls: list[str], strata: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indices (train, val). Domains are grouped, then each stratum (e.g. a row's first label)
    gives `val_fraction` of its domains to validation, so thin categories appear on both sides."""
    domain_rows: dict[str, list[int]] = defaultdict(list)
    for i, url in enumerate(urls):
        domain_rows[registrable_domain(url)].append(i)
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for domain, rows in domain_rows.items():
        by_stratum[strata[rows[0]]].append(domain)
    rng = random.Random(seed)
    val_domains: set[str] = set()
    for stratum in sorted(by_stratum):
        domains = sorted(by_stratum[stratum])
        rng.shuffle(domains)
        take = round(len(domains) * val_fraction)
        if len(domains) >= 2:
            take = max(1, min(take, len(domains) - 1))
        val_domains.update(domains[:take])
    train = [i for d, rows in domain_rows.items() if d not in val_domains for i in rows]
    val = [i for d, rows in domain_rows.items() if d in val_domains for i in rows]
    return sorted(train), sorted(val)


def split_rows(urls: list[str], strata: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indices (train, val) for a mix of pages and title-only rows (url ""): pages split by
    registrable domain as above; title-only rows are items of their own, and each stratum gives
    `val_fraction` of them to validation."""
    paged = [i for i, url in enumerate(urls) if url]
    train, val = split_by_domain([urls[i] for i in paged], [strata[i] for i in paged], val_fraction, seed)
    train, val = [paged[i] for i in train], [paged[i] for i in val]
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for i, url in enumerate(urls):
        if not url:
            by_stratum[strata[i]].append(i)
    rng = random.Random(seed)
    for stratum in sorted(by_stratum):
        items = by_stratum[stratum]
        rng.shuffle(items)
        take = round(len(items) * val_fraction)
        val += items[:take]
        train += items[take:]
    return sorted(train), sorted(val)
