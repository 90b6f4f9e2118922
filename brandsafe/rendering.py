"""The one place where a page becomes model input text.

Training renders labelled rows with `render`, and the service renders bid requests with the
same function, so the model sees identical text for identical pages. Any change to the layout
must bump SCHEMA_VERSION: bundles record the version they were trained with, and the service
refuses a bundle whose version it does not know.
"""
from __future__ import annotations

from dataclasses import dataclass

from .urlnorm import normalize_url
from .urltext import url_words, words

SCHEMA_VERSION = "brandsafe-text/2"  # 2: host and path words segmented (freeporntube → free porn tube)
KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})

MAX_TITLE_CHARS = 200
MAX_KEYWORDS = 12


@dataclass(frozen=True)
class PageContext:
    """What the model may read about one impression.

    Referrer, declared categories and language are deliberately absent: no training row carries
    them, so feeding them to the model would be input it has never learnt to weigh.
    """

    url: str = ""
    title: str = ""
    keywords: tuple[str, ...] = ()
    app_bundle: str = ""


def render(page: PageContext) -> str:
    parts = []
    host, path = _location_words(page)
    parts.append(" ".join(host) or "unknown site")
    if path:
        parts.append("path: " + " ".join(path))
    title = " ".join(page.title.split())[:MAX_TITLE_CHARS]
    if title:
        parts.append("title: " + title)
    keywords = [" ".join(k.split()) for k in page.keywords if k.strip()][:MAX_KEYWORDS]
    if keywords:
        parts.append("keywords: " + ", ".join(keywords))
    return " | ".join(parts)


def _location_words(page: PageContext) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if page.url.strip():
        # Normalized first, so tracking parameters, fragments and query order never reach the model
        # and every spelling of a page renders (and caches) alike.
        parsed = url_words(normalize_url(page.url))
        return parsed.host, parsed.path
    if page.app_bundle.strip():
        # Store ids read reversed-domain style (com.example.game); the words are what matter.
        return tuple(w for w in words(page.app_bundle) if w not in {"com", "net", "org", "app"}), ()
    return (), ()
