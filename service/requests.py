"""Validate a ClassifyRequest and turn it into the PageContext the renderer reads.

Every limit names its field in the error, so a bidder's engineer can fix the caller from the
message alone. Odd but valid input (IDNs, IPv6 hosts, no scheme, emoji) passes through.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from brandsafe.rendering import PageContext
from brandsafe.urlnorm import host_error, normalize_url
from brandsafe.v1 import brandsafe_pb2 as pb

from .cache import BoundedLRU

MAX_ID_CHARS = 128
MAX_URL_CHARS = 8192
MAX_TITLE_CHARS = 2048
MAX_KEYWORDS = 100
MAX_KEYWORD_CHARS = 200
MAX_KEYWORDS_FIELD_CHARS = 8192
MAX_CATEGORIES = 100
MAX_SHORT_CHARS = 256
# Normalised URLs of recently seen pages (traffic repeats pages; normalising costs ~10 us). Keyed
# on a 16-byte digest of the URL and holding short results only, so it is bounded in bytes whatever
# callers send: 16,384 × (≤ 1 KiB + overhead) ≈ 20 MiB at most.
NORMALIZED_MEMO_ENTRIES = 16384
NORMALIZED_MEMO_MAX_CHARS = 1024
_normalized_memo = BoundedLRU(NORMALIZED_MEMO_ENTRIES)


class RequestError(ValueError):
    """Maps to INVALID_ARGUMENT; the message starts with the offending field's path."""


@dataclass(frozen=True)
class ParsedRequest:
    page: PageContext
    policy_id: str


def check_ids(request: pb.ClassifyRequest) -> None:
    check_impression_ids(request.id, request.imp_id)
    _limit("policy_id", request.policy_id, MAX_ID_CHARS)


def check_impression_ids(request_id: str, imp_id: str) -> None:
    """The request's own identifiers: what varies per impression even when the page repeats."""
    _limit("id", request_id, MAX_ID_CHARS)
    _limit("imp_id", imp_id, MAX_ID_CHARS)


def parse(request: pb.ClassifyRequest, default_policy: str) -> ParsedRequest:
    check_ids(request)
    has_site, has_app = request.HasField("site"), request.HasField("app")
    if has_site and has_app:
        raise RequestError("site, app: set one of them, not both (OpenRTB: a request is for a site or an app)")
    if not (has_site or has_app):
        raise RequestError("site: required (or app): nothing describes the page")
    page = _site_page(request.site) if has_site else _app_page(request.app)
    return ParsedRequest(page, request.policy_id.strip() or default_policy)


def _site_page(site: pb.Site) -> PageContext:
    _check_common("site", site)
    _limit("site.page", site.page, MAX_URL_CHARS)
    _limit("site.ref", site.ref, MAX_URL_CHARS)
    _limit("site.domain", site.domain, MAX_SHORT_CHARS)
    url = site.page.strip() or site.domain.strip()
    if not url:
        raise RequestError("site.page: required (the page URL), or at least site.domain")
    url = normalized_url("site.page" if site.page.strip() else "site.domain", url)
    title = site.content.title.strip() or site.name.strip()
    keywords = _keywords("site", site) + _keywords("site.content", site.content)
    return PageContext(url=url, title=title, keywords=tuple(keywords))


def _app_page(app: pb.App) -> PageContext:
    _check_common("app", app)
    _limit("app.bundle", app.bundle, MAX_SHORT_CHARS)
    _limit("app.domain", app.domain, MAX_SHORT_CHARS)
    _limit("app.storeurl", app.storeurl, MAX_URL_CHARS)
    if not (app.bundle.strip() or app.domain.strip()):
        raise RequestError("app.bundle: required (or app.domain)")
    title = app.content.title.strip() or app.name.strip()
    keywords = _keywords("app", app) + _keywords("app.content", app.content)
    url = normalized_url("app.domain", app.domain.strip()) if app.domain.strip() else ""
    return PageContext(url=url, title=title, keywords=tuple(keywords), app_bundle=app.bundle.strip())


def normalized_url(field: str, url: str) -> str:
    """normalize_url(url), once per request: the page's cache key and model text both read it. A
    host DNS could not hold is refused first, since normalising it would IDNA-encode it, at a cost
    that grows with the square of a label's length (issue 25: 13 s for one 8 KB URL)."""
    problem = host_error(url)
    if problem is not None:
        raise RequestError(f"{field}: {problem}")
    digest = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    normalized = _normalized_memo.get(digest)
    if normalized is None:
        normalized = normalize_url(url)
        if len(normalized) <= NORMALIZED_MEMO_MAX_CHARS:
            _normalized_memo.put(digest, normalized)
    return normalized


def _check_common(prefix: str, obj) -> None:
    _limit(f"{prefix}.name", obj.name, MAX_SHORT_CHARS)
    _categories(prefix, obj)
    content = obj.content
    _limit(f"{prefix}.content.title", content.title, MAX_TITLE_CHARS)
    _limit(f"{prefix}.content.url", content.url, MAX_URL_CHARS)
    _limit(f"{prefix}.content.language", content.language, 16)
    _categories(f"{prefix}.content", content)


def _categories(prefix: str, obj) -> None:
    if len(obj.cat) > MAX_CATEGORIES:
        raise RequestError(f"{prefix}.cat: at most {MAX_CATEGORIES} categories, got {len(obj.cat)}")
    for i, cat in enumerate(obj.cat):
        _limit(f"{prefix}.cat[{i}]", cat, 64)
    if obj.cattax < 0:
        raise RequestError(f"{prefix}.cattax: must be a non-negative AdCOM taxonomy id, got {obj.cattax}")


def _keywords(prefix: str, obj) -> list[str]:
    _limit(f"{prefix}.keywords", obj.keywords, MAX_KEYWORDS_FIELD_CHARS)
    words = [k.strip() for k in obj.keywords.split(",") if k.strip()]
    if len(obj.kwarray) > MAX_KEYWORDS:
        raise RequestError(f"{prefix}.kwarray: at most {MAX_KEYWORDS} keywords, got {len(obj.kwarray)}")
    for i, keyword in enumerate(obj.kwarray):
        _limit(f"{prefix}.kwarray[{i}]", keyword, MAX_KEYWORD_CHARS)
        if keyword.strip():
            words.append(keyword.strip())
    if len(words) > MAX_KEYWORDS:
        raise RequestError(f"{prefix}.keywords: at most {MAX_KEYWORDS} keywords, got {len(words)}")
    return words


def _limit(field: str, value: str, max_chars: int) -> None:
    if len(value) > max_chars:
        raise RequestError(f"{field}: at most {max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise RequestError(f"{field}: contains a NUL character")
