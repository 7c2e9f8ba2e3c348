"""Page URL and referrer handling: pathname, hostname, UTM parameters, text sanitising.

Follows Mallard Metrics v0.2: relative URLs keep every segment, a trailing slash is collapsed (the root
stays ``/``), UTM keys are case-insensitive and their values percent-decoded (``+`` is a space, bad escapes
kept literally), the fragment never leaks into a value. Unlike the reference, ``hostname`` comes from the
URL itself, not from the site id.

Hash mode (Plausible's ``h: 1``, mallard.js's ``data-hash``) is for pages that route on the fragment: the
path is then ``<path>#<fragment>`` (the trailing slash of ``<path>`` collapsed as usual, the fragment
kept as sent, an empty fragment dropped), as Plausible stores it. UTM values still come only from the
query string before the fragment.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple
from urllib.parse import unquote_plus, urlsplit

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
UTM_KEYS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
MAX_UTM: Final = 256
MAX_PATH: Final = 2048
MAX_HOST: Final = 253


def sanitize(text: str, limit: int) -> str:
    """Drop control characters, then truncate to ``limit`` characters."""
    # isprintable() (false for every control character) is 3x cheaper than the search it spares.
    if not text.isprintable() and _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return text[:limit]


class PageUrl(NamedTuple):
    hostname: str | None
    pathname: str
    utm: tuple[str | None, str | None, str | None, str | None, str | None]


_NO_UTM: Final = (None, None, None, None, None)


@lru_cache(maxsize=16_384)
def parse_page_url(url: str, hash_mode: bool = False) -> PageUrl:
    """Split a page URL (absolute, scheme-relative or relative) into host, path and UTM values; with
    ``hash_mode``, the path keeps the ``#fragment``.

    Cached: the pages of a site repeat, and parsing is a third of the ingestion cost otherwise.
    """
    hostname: str | None = None
    rest = url
    if "://" in url[:16] or url.startswith("//"):
        try:
            parts = urlsplit(url)
            if parts.hostname:  # urlsplit keeps control characters in the host
                hostname = sanitize(parts.hostname, MAX_HOST) or None
            path, query = parts.path, parts.query
        except ValueError:  # e.g. an unbalanced IPv6 bracket: keep what can be kept
            path, query = _split_relative(url.split("://", 1)[-1].partition("/")[2])
            path = "/" + path
    else:
        path, query = _split_relative(rest)
    pathname = _normalise_path(path)
    if hash_mode and (fragment := url.partition("#")[2]):
        pathname = sanitize(f"{pathname}#{fragment}", MAX_PATH)
    return PageUrl(hostname, pathname, _utm(query) if query else _NO_UTM)


def _split_relative(url: str) -> tuple[str, str]:
    url = url.split("#", 1)[0]
    path, _, query = url.partition("?")
    return path, query


def _normalise_path(path: str) -> str:
    # Sanitise first, so that neither a removed control character nor the cut can leave a
    # trailing slash behind (``/about/\x00`` is ``/about``).
    path = sanitize(path, MAX_PATH)
    if not path.startswith("/"):
        path = ("/" + path)[:MAX_PATH]
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _utm(query: str) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    if "utm_" not in query.lower():
        return _NO_UTM
    found: dict[str, str] = {}
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in UTM_KEYS or not value:
            continue
        decoded = sanitize(unquote_plus(value, errors="replace"), MAX_UTM)
        if decoded:
            found[key] = decoded  # later duplicates win
    if not found:
        return _NO_UTM
    return (found.get("utm_source"), found.get("utm_medium"), found.get("utm_campaign"),
            found.get("utm_content"), found.get("utm_term"))


def strip_query(url: str) -> str:
    """``url`` without its ``?query`` and ``#fragment``."""
    return url.split("?", 1)[0].split("#", 1)[0]
