"""Turn a URL into words a subword tokenizer can read.

`cheap-pills-online.biz/buy_now?id=93af` becomes host words `cheap pills online biz` and path
words `buy now`: separators become spaces, letter/digit runs are split, camelCase is split,
percent-encoding and punycode are decoded, and opaque ids (hashes, long numbers) are dropped
because they carry no meaning a model could generalise from.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import wordsegment

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_WORD_SPLIT = re.compile(r"[\W_]+", re.UNICODE)
_ALNUM_RUNS = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_HEXISH = re.compile(r"^(?=.*\d)[0-9a-f]{8,}$")
_MIXED_ID = re.compile(r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9]{8,}$")  # base62 ids: Qm81xZk2pLw
_HOST_NOISE = {"www", "www1", "www2", "www3", "m", "mobile", "amp"}
MAX_PATH_WORDS = 24
MAX_PATH_CHARS = 400  # more than 24 words ever need; bounds the work on huge query strings
MAX_WORD_LEN = 40
MIN_SEGMENT_LEN = 6  # shorter runs are words already, or ids; WordPiece handles them
# Segmentation is quadratic-ish in the run length and runs on the request path: longer runs (rare in
# real hosts, common in random junk) are left whole, which bounds the worst case to ~1 ms.
MAX_SEGMENT_LEN = 20


@functools.lru_cache(maxsize=1)
def load_segmenter() -> None:
    """~0.7 s, word frequencies shipped inside the package (no download). Servers call it at
    start-up so the first request does not pay for it."""
    wordsegment.load()


@functools.lru_cache(maxsize=200_000)
def segment(run: str) -> tuple[str, ...]:
    """Split a run of letters into words by unigram/bigram frequency: `freeporntube` → free porn
    tube. Hosts concatenate words, and a subword tokenizer alone cuts them at the wrong places
    (free ##por ##nt ##ube). Cached: traffic repeats hosts."""
    if not MIN_SEGMENT_LEN <= len(run) <= MAX_SEGMENT_LEN or not run.isascii():
        return (run,)
    load_segmenter()
    return tuple(wordsegment.segment(run)) or (run,)


@dataclass(frozen=True)
class UrlWords:
    host: tuple[str, ...]
    path: tuple[str, ...]


def split_url(url: str) -> tuple[str, str]:
    """(host, path+query) of a URL that may lack a scheme; never raises."""
    text = (url or "").strip()
    if not _SCHEME.match(text):
        text = "http://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        rest = parts.path + ((" " + parts.query) if parts.query else "")
    except ValueError:  # e.g. malformed IPv6 brackets
        host, _, rest = text.split("://", 1)[1].partition("/")
    return host.rstrip(".").lower(), rest


def _decode_host_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except (UnicodeError, ValueError):
            return label
    return label


def words(text: str) -> list[str]:
    """Split free text or a URL fragment into lower-case words, dropping opaque ids."""
    out = []
    for chunk in _WORD_SPLIT.split(text):
        if _HEXISH.match(chunk.lower()) or _MIXED_ID.match(chunk):  # ids, before they split into runs
            continue
        for piece in _ALNUM_RUNS.findall(_CAMEL.sub(" ", chunk)):
            piece = piece.lower()
            if (piece.isdigit() and len(piece) > 4) or len(piece) > MAX_WORD_LEN:
                continue
            out.extend(segment(piece) if piece.isalpha() else (piece,))
    return out


def url_words(url: str) -> UrlWords:
    host, rest = split_url(url)
    host_words: list[str] = []
    for label in host.split("."):
        if not label or label in _HOST_NOISE:
            continue
        host_words.extend(words(_decode_host_label(label)))
    try:
        rest = unquote(rest, errors="replace")
    except Exception:  # noqa: BLE001 - unquote on odd input must never break scoring
        pass
    return UrlWords(tuple(host_words), tuple(words(rest[:MAX_PATH_CHARS])[:MAX_PATH_WORDS]))
