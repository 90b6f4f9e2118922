"""The one place where a page becomes model input text.

Training renders labelled rows with `render`, and the service renders bid requests with the
same function, so the model sees identical text for identical pages. Any change to the layout
must bump SCHEMA_VERSION: bundles record the version they were trained with, and the service
refuses a bundle whose version it does not know.

Retrieved passages render as one `<context>` block after the page, versioned on its own
(CONTEXT_SCHEMA_VERSION), so a page without passages renders exactly as before and bundles trained
without context keep working. The block comes last on purpose: when the text is longer than the
model's window, truncation drops the lowest-ranked passages, never the page itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from .urlnorm import normalize_url
from .urltext import url_words, words

SCHEMA_VERSION = "brandsafe-text/2"  # 2: host and path words segmented (freeporntube → free porn tube)
KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})
CONTEXT_SCHEMA_VERSION = "brandsafe-context/1"
KNOWN_CONTEXT_SCHEMAS = frozenset({CONTEXT_SCHEMA_VERSION})

MAX_TITLE_CHARS = 200
MAX_KEYWORDS = 12
MAX_PASSAGES = 5
MAX_PASSAGE_TITLE_WORDS = 8
MAX_PASSAGE_WORDS = 32


@dataclass(frozen=True)
class Passage:
    """One retrieved fact: where it came from, what it says, and how well it matched."""

    source_id: str
    title: str
    text: str
    score: float


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
    passages: tuple[Passage, ...] = ()


def render(page: PageContext, normalized: bool = False) -> str:
    """normalized: page.url is normalize_url's output already (the service normalises a request's
    URL once, when it validates it), so it is not normalised again."""
    parts = []
    host, path = _location_words(page, normalized)
    parts.append(" ".join(host) or "unknown site")
    if path:
        parts.append("path: " + " ".join(path))
    title = " ".join(page.title.split())[:MAX_TITLE_CHARS]
    if title:
        parts.append("title: " + title)
    keywords = [" ".join(k.split()) for k in page.keywords if k.strip()][:MAX_KEYWORDS]
    if keywords:
        parts.append("keywords: " + ", ".join(keywords))
    if page.passages:
        parts.append(render_context(page.passages))
    return " | ".join(parts)


def render_context(passages: tuple[Passage, ...]) -> str:
    """`<context> [1] source (score) title: text [2] … </context>`, best match first."""
    items = []
    for rank, passage in enumerate(passages[:MAX_PASSAGES], start=1):
        title = " ".join(passage.title.split()[:MAX_PASSAGE_TITLE_WORDS])
        text = " ".join(passage.text.split()[:MAX_PASSAGE_WORDS])
        items.append(f"[{rank}] {passage.source_id} ({passage.score:.1f}) {title}: {text}")
    return "<context> " + " ".join(items) + " </context>"


def _location_words(page: PageContext, normalized: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if page.url.strip():
        # Normalized first, so tracking parameters, fragments and query order never reach the model
        # and every spelling of a page renders (and caches) alike.
        parsed = url_words(page.url if normalized else normalize_url(page.url))
        return parsed.host, parsed.path
    if page.app_bundle.strip():
        # Store ids read reversed-domain style (com.example.game); the words are what matter.
        return tuple(w for w in words(page.app_bundle) if w not in {"com", "net", "org", "app"}), ()
    return (), ()
