"""URL normalization for cache keys: two spellings of one page share one verdict.

Scheme and host lower-cased, default ports dropped, IDNs to punycode (UTS-46, IDNA 2008: `faß.de`
stays its own site, not `fass.de`), trailing dots removed, dot segments removed (RFC 3986 §5.2.4),
fragments dropped, tracking parameters dropped, remaining query parameters sorted. Total: any
string gives a string, nothing raises, and normalizing twice changes nothing.

Cost is bounded by the URL's length: a host longer than DNS allows (253 characters, or a label over
63) is never IDNA-encoded, since punycode's cost grows with the square of a label's length (a
2,000-character label took 0.4 s). `host_error` says why such a host is refused; the service
refuses it before normalizing (requests.py), and `normalize_url` leaves it as plain text.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import idna

DEFAULT_TRACKING_PARAMS = frozenset({
    "gclid", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "mc_cid", "mc_eid", "_ga", "_gl", "igshid", "ref_src", "spm", "vero_id", "oly_anon_id", "oly_enc_id",
})
DEFAULT_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "mtm_")
MAX_HOST_CHARS = 253  # RFC 1035 (a name's text form, without the trailing dot)
MAX_LABEL_CHARS = 63
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# Characters left as they are in paths and queries; everything else is percent-encoded once.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/:@!$'()*+,;-._~%?"


class UrlNormalizer:
    def __init__(self, tracking_params=DEFAULT_TRACKING_PARAMS, tracking_prefixes=DEFAULT_TRACKING_PREFIXES):
        self.tracking_params = frozenset(p.lower() for p in tracking_params)
        self.tracking_prefixes = tuple(p.lower() for p in tracking_prefixes)

    def __call__(self, url: str) -> str:
        try:
            return self._normalize(url)
        except (ValueError, UnicodeError):
            # Unparseable (e.g. broken IPv6 brackets): fall back to a stable cleanup of the text.
            return " ".join(str(url).split()).lower()

    def _normalize(self, url: str) -> str:
        parts = _split(url)
        scheme = parts.scheme.lower()
        host = normalize_host(parts.hostname or "")
        port = parts.port  # raises ValueError on a bad port, handled above
        netloc = host if port is None or str(port) == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            netloc = f"[{host}]" + ("" if netloc == host else netloc[len(host):])
        path = quote(remove_dot_segments(unquote(parts.path)), safe=_PATH_SAFE) or "/"
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not self._tracking(k)]
        query_text = urlencode(sorted(query), quote_via=quote, safe=_QUERY_SAFE)
        return urlunsplit((scheme, netloc, path, query_text, ""))

    def _tracking(self, key: str) -> bool:
        key = key.lower()
        return key in self.tracking_params or key.startswith(self.tracking_prefixes)


def _split(url: str):
    text = url.strip()
    if not _SCHEME.match(text):
        text = "http://" + text.lstrip("/")
    return urlsplit(text)


def host_error(url: str) -> str | None:
    """Why the URL's host cannot be a DNS name (too long, or a label too long), or None. Counts
    characters only: nothing is encoded, so it costs the same for any host."""
    try:
        host = (_split(url).hostname or "").strip().rstrip(".")
    except ValueError:
        return None  # unparseable: normalize_url's fallback handles it, at linear cost
    if ":" in host:  # IPv6 literal
        return None
    if len(host) > MAX_HOST_CHARS:
        return f"host is {len(host)} characters, over the {MAX_HOST_CHARS} DNS allows"
    longest = max(host.split("."), key=len)
    if len(longest) > MAX_LABEL_CHARS:
        return f"host label of {len(longest)} characters, over the {MAX_LABEL_CHARS} DNS allows"
    return None


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `/a/./b/../c` → `/a/c`; `..` never climbs above the root."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out)


def normalize_host(host: str) -> str:
    """A host as normalize_url writes it: lower case, no trailing dot, IDN labels in punycode."""
    host = host.strip().rstrip(".").lower()
    if not host or ":" in host:  # IPv6 literal
        return host
    dns_sized = len(host) <= MAX_HOST_CHARS  # else never IDNA-encoded: punycode is quadratic
    return ".".join(_label(label, dns_sized) for label in host.split("."))


def _label(label: str, dns_sized: bool) -> str:
    if label.isascii():
        return label
    if dns_sized and len(label) <= MAX_LABEL_CHARS:
        try:
            return idna.encode(label, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError as exc:
            too_long = getattr(exc, "code", "") == "label_too_long"  # in punycode too: so in IDNA 2003
        except (UnicodeError, ValueError):
            too_long = False
        if not too_long:
            try:
                # What IDNA 2008 refuses but browsers still resolve (emoji hosts): as IDNA 2003 spelt it.
                return label.encode("idna").decode("ascii")
            except UnicodeError:
                pass
    return quote(label, safe="").lower()


normalize_url = UrlNormalizer()
