"""Registrable domains (example.co.uk, user.blogspot.com): the unit a site is known by, for the
train/validation split and for knowledge-base lookups."""
from __future__ import annotations

import functools

import tldextract

from .urlnorm import MAX_HOST_CHARS
from .urltext import split_url

# suffix_list_urls=() keeps tldextract on the snapshot it ships: no network at run time. Private
# suffixes (blogspot.com, github.io) count, so each user's site is its own domain.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def registrable_domain(url: str) -> str:
    host, _ = split_url(url)
    # Only DNS-sized hosts are memoised, so the memo holds at most 16,384 × 253 characters.
    return _registrable_host(host) if len(host) <= MAX_HOST_CHARS else _extract(host)


def _extract(host: str) -> str:
    return _EXTRACT(host).top_domain_under_public_suffix or host


_registrable_host = functools.lru_cache(maxsize=16384)(_extract)


def host_of(url: str) -> str:
    return split_url(url)[0]
