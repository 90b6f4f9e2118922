"""Turn a URL into words a subword tokenizer can read.

`cheap-pills-online.biz/buy_now?id=93af` becomes host words `cheap pills online biz` and path
words `buy now`: separators become spaces, letter/digit runs are split, camelCase is split,
percent-encoding and punycode are decoded, and opaque ids (hashes, long numbers) are dropped
because they carry no meaning a model could generalise from.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import idna
import wordsegment

from .urlnorm import MAX_LABEL_CHARS

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_WORD_SPLIT = re.compile(r"[\W_]+", re.UNICODE)
_ALNUM_RUNS = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_HEXISH = re.compile(r"^(?=.*\d)[0-9a-f]{8,}$")
_MIXED_ID = re.compile(r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9]{8,}$")  # base62 ids: Qm81xZk2pLw
_HOST_NOISE = {"www", "www1", "www2", "www3", "m", "mobile", "amp"}
MAX_PATH_WORDS = 24
MAX_HOST_WORDS = 32  # the training data's longest host has 27; more is padding an attacker chose
MAX_PATH_CHARS = 400  # more than 24 words ever need; bounds the work on huge query strings
MAX_WORD_LEN = 40
MIN_SEGMENT_LEN = 6  # shorter runs are words already, or ids; WordPiece handles them
# Segmentation runs on the request path and grows with the run length: longer runs (rare in real
# hosts, common in random junk) are left whole, which bounds the worst case (~0.3 ms).
MAX_SEGMENT_LEN = 20


class _Segmenter:
    """wordsegment's segmentation, word for word (same scores, same float arithmetic, same
    tie-breaks), several times faster. wordsegment memoizes its search on (rest of the run,
    previous word), so a 20-letter run explores a few hundred states; but the previous word only
    changes a score when it starts one of the bigrams, and for every other word the search over the
    rest is the same. Memoizing on (rest, previous word or "none that matters") visits ~n states."""

    def __init__(self):
        wordsegment.load()
        self.unigrams, self.bigrams = wordsegment.UNIGRAMS, wordsegment.BIGRAMS
        self.total, self.limit = wordsegment._segmenter.total, wordsegment._segmenter.limit
        # A bigram is only used when its first word is a known unigram (wordsegment.Segmenter.score).
        self.contexts = {bigram.split(" ", 1)[0] for bigram in self.bigrams} & self.unigrams.keys()
        self.start = "<s>" if "<s>" in self.contexts else None
        # log10 of a word's unigram score; an unknown word's depends on its length alone.
        self._known_log: dict[str, float] = {}  # filled as words are met; bounded by the vocabulary
        self._unknown_log = [math.log10(10.0 / (self.total * 10 ** n)) for n in range(self.limit + 1)]

    def _unigram_log(self, word: str) -> float:
        value = self._known_log.get(word)
        if value is None:
            count = self.unigrams.get(word)
            if count is None:
                return self._unknown_log[len(word)]
            value = self._known_log[word] = math.log10(count / self.total)
        return value

    def _log_score(self, word: str, previous: str | None) -> float:
        if previous is not None:
            count = self.bigrams.get(f"{previous} {word}")
            if count is not None:
                return math.log10(count / self.total / (self.unigrams[previous] / self.total))
        return self._unigram_log(word)

    def segment(self, text: str) -> list[str]:
        memo: dict[tuple[str, str | None], tuple[float, list[str]]] = {}
        contexts, limit, log_score = self.contexts, self.limit, self._log_score

        def search(rest: str, previous: str | None) -> tuple[float, list[str]]:
            if not rest:
                return 0.0, []
            best_score, best_words = None, None
            for cut in range(1, min(len(rest), limit) + 1):
                prefix, suffix = rest[:cut], rest[cut:]
                key = (suffix, prefix if prefix in contexts else None)
                tail = memo.get(key)
                if tail is None:
                    tail = memo[key] = search(*key)
                score = log_score(prefix, previous) + tail[0]
                # max() over (score, words) tuples: a higher score, or on a tie the greater word
                # list; the first of equal maxima wins.
                if best_score is None or score > best_score or (
                        score == best_score and [prefix] + tail[1] > best_words):
                    best_score, best_words = score, [prefix] + tail[1]
            return best_score, best_words

        # wordsegment.isegment's chunking, for runs longer than its 250-letter chunks.
        clean, out, carry = wordsegment.clean(text), [], ""
        for offset in range(0, len(clean), 250):
            _, chunk_words = search(carry + clean[offset:offset + 250], self.start)
            carry = "".join(chunk_words[-5:])
            out.extend(chunk_words[:-5])
        out.extend(search(carry, self.start)[1])
        # `search` refers to itself through its closure: rebinding the name breaks that cycle, so the
        # memo is freed now by reference counting instead of piling up for the cyclic GC, whose
        # collections then run on the event loop (TUNING.md §11).
        search = None
        return out


@functools.lru_cache(maxsize=1)
def load_segmenter() -> _Segmenter:
    """~0.7 s, word frequencies shipped inside the package (no download). Servers call it at
    start-up so the first request does not pay for it."""
    return _Segmenter()


@functools.lru_cache(maxsize=200_000)
def segment(run: str) -> tuple[str, ...]:
    """Split a run of letters into words by unigram/bigram frequency: `freeporntube` → free porn
    tube. Hosts concatenate words, and a subword tokenizer alone cuts them at the wrong places
    (free ##por ##nt ##ube). Cached: traffic repeats hosts."""
    if not MIN_SEGMENT_LEN <= len(run) <= MAX_SEGMENT_LEN or not run.isascii():
        return (run,)
    return tuple(load_segmenter().segment(run)) or (run,)


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
    # Longer labels are not DNS labels, and punycode decoding costs the square of the length.
    if label.startswith("xn--") and len(label) <= MAX_LABEL_CHARS:
        try:
            return idna.decode(label)  # IDNA 2008, as urlnorm encodes: xn--fa-hia is faß
        except (idna.IDNAError, UnicodeError, ValueError):
            pass
        try:
            return label.encode("ascii").decode("idna")  # IDNA 2003 (e.g. emoji hosts) as before
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
        if len(host_words) >= MAX_HOST_WORDS:
            break
        if not label or label in _HOST_NOISE:
            continue
        host_words.extend(words(_decode_host_label(label)))
    try:
        rest = unquote(rest, errors="replace")
    except Exception:  # noqa: BLE001 - unquote on odd input must never break scoring
        pass
    return UrlWords(tuple(host_words[:MAX_HOST_WORDS]), tuple(words(rest[:MAX_PATH_CHARS])[:MAX_PATH_WORDS]))
