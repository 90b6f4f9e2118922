"""URL normalization for cache keys: two spellings of one page share one verdict.

Scheme and host lower-cased, default ports dropped, IDNs to punycode, trailing dots removed,
fragments dropped, tracking parameters dropped, remaining query parameters sorted. Total: any
string gives a string, nothing raises, and normalizing twice changes nothing.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

DEFAULT_TRACKING_PARAMS = frozenset({
    "gclid", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "mc_cid", "mc_eid", "_ga", "_gl", "igshid", "ref_src", "spm", "vero_id", "oly_anon_id", "oly_enc_id",
})
DEFAULT_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "mtm_")
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
        text = url.strip()
        if not _SCHEME.match(text):
            text = "http://" + text.lstrip("/")
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = _host(parts.hostname or "")
        port = parts.port  # raises ValueError on a bad port, handled above
        netloc = host if port is None or str(port) == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            netloc = f"[{host}]" + ("" if netloc == host else netloc[len(host):])
        path = quote(unquote(parts.path), safe=_PATH_SAFE) or "/"
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not self._tracking(k)]
        query_text = urlencode(sorted(query), quote_via=quote, safe=_QUERY_SAFE)
        return urlunsplit((scheme, netloc, path, query_text, ""))

    def _tracking(self, key: str) -> bool:
        key = key.lower()
        return key in self.tracking_params or key.startswith(self.tracking_prefixes)


def _host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host or ":" in host:  # IPv6 literal
        return host
    labels = []
    for label in host.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if not label.isascii() else label)
        except UnicodeError:
            labels.append(quote(label, safe="").lower())
    return ".".join(labels)


normalize_url = UrlNormalizer()
