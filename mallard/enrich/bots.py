"""Bot and crawler detection from the maintained crawler-user-agents list.

The ~1,500 patterns of the `crawler-user-agents` package are compiled once into a single RE2 alternation
(about 1.5 µs a search, against ~400 µs for the same list through the stdlib ``re``), plus the markers of
HTTP libraries and headless tools that Mallard Metrics v0.2 also filters. An empty User-Agent is not a bot
(as in the reference).

For an ASCII User-Agent (nearly all of them) the markers are a case-insensitive branch of the same RE2
alternation, so the check is one search: the same verdict as lower-casing the string and looking for
each marker (for ASCII text the two agree exactly), at about half the cost. Other text keeps the
lower-case-and-look path, where Unicode case rules differ.
"""

from __future__ import annotations

import json
import re
import threading
from importlib import resources
from typing import Final

import re2

# Generic automation markers the crawler list does not carry (lower-case substrings).
_EXTRA_MARKERS: Final = (
    "headlesschrome", "phantomjs", "python-requests", "python-urllib", "python-httpx", "aiohttp",
    "go-http-client", "okhttp", "axios/", "node-fetch", "libwww-perl", "wget/", "curl/",
    "scrapy", "httpclient", "java/", "guzzlehttp", "lighthouse", "pagespeed", "gtmetrix",
    "statuscake", "uptimerobot", "pingdom",
)

# Patterns of the list that also match real browsers, narrowed to the bot. WhatsApp's link-preview
# fetcher sends "WhatsApp/2.23.20.0 A"; its in-app browser appends "WhatsApp/…" to a browser's UA
# (Mallard Metrics v0.2 dropped its `whatsapp` rule for the same reason).
_NARROWED: Final = {"WhatsApp": "^WhatsApp"}

_lock = threading.Lock()
_compiled: re2._Regexp | None = None
_compiled_ascii: re2._Regexp | None = None  # the markers folded in, for ASCII text


def _patterns() -> list[str]:
    data = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text(
        encoding="utf-8"
    )
    return [_NARROWED.get(entry["pattern"], entry["pattern"]) for entry in json.loads(data)]


def _compile(patterns: str) -> re2._Regexp:
    options = re2.Options()
    options.max_mem = 256 << 20
    options.case_sensitive = True
    return re2.compile(patterns, options)


def _regex() -> re2._Regexp:
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                _compiled = _compile("|".join(f"(?:{p})" for p in _patterns()))
    return _compiled


def _ascii_regex() -> re2._Regexp:
    global _compiled_ascii
    if _compiled_ascii is None:
        with _lock:
            if _compiled_ascii is None:
                markers = "|".join(re.escape(m) for m in _EXTRA_MARKERS)
                _compiled_ascii = _compile(f"(?i:{markers})|" + "|".join(f"(?:{p})" for p in _patterns()))
    return _compiled_ascii


def warm_up() -> None:
    """Compile the pattern lists now rather than on the first event."""
    _regex()
    _ascii_regex()


def is_bot(user_agent: str) -> bool:
    """Whether ``user_agent`` belongs to a bot, crawler, monitor or HTTP library."""
    if not user_agent:
        return False
    if user_agent.isascii():
        return (_compiled_ascii or _ascii_regex()).search(user_agent) is not None
    lowered = user_agent.lower()
    if any(marker in lowered for marker in _EXTRA_MARKERS):
        return True
    return _regex().search(user_agent) is not None
