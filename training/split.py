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
