"""Bot and crawler detection from the maintained crawler-user-agents list.

The ~1,500 patterns of the `crawler-user-agents` package are compiled once into a single RE2 alternation
(about 1.5 µs a search, against ~400 µs for the same list through the stdlib ``re``), plus the markers of
HTTP libraries and headless tools that Mallard Metrics v0.2 also filters. An empty User-Agent is not a bot
(as in the reference).
"""

from __future__ import annotations

import json
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


def _patterns() -> list[str]:
    data = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text(
        encoding="utf-8"
    )
    return [_NARROWED.get(entry["pattern"], entry["pattern"]) for entry in json.loads(data)]


def _regex() -> re2._Regexp:
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                options = re2.Options()
                options.max_mem = 256 << 20
                options.case_sensitive = True
                _compiled = re2.compile("|".join(f"(?:{p})" for p in _patterns()), options)
    return _compiled


def warm_up() -> None:
    """Compile the pattern list now rather than on the first event."""
    _regex()


def is_bot(user_agent: str) -> bool:
    """Whether ``user_agent`` belongs to a bot, crawler, monitor or HTTP library."""
    if not user_agent:
        return False
    lowered = user_agent.lower()
    if any(marker in lowered for marker in _EXTRA_MARKERS):
        return True
    return _regex().search(user_agent) is not None
