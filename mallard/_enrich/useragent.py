"""User-Agent parsing: browser, OS, device class and bot flag, cached per distinct User-Agent.

Parsing uses ua-parser 1.x's regexes through its Rust accelerator (ua-parser-rs), whose three extractors
(browser, OS, device) are called directly rather than through ``ua_parser.regex.Resolver``: the same
matches without the domain checks and the four intermediate objects per string. All three are needed (the
device family decides the device class and marks a "Spider"). A never-seen User-Agent costs ~25 µs
(the three extractors ~15 µs, the bot check ~2.5 µs) with the regex automata in the CPU caches, and
~220 µs with cold caches, as in ``track()`` where other work runs between two never-seen User-Agents
(``benchmarks/bench_useragent.py``). The automata are built lazily, which made the first strings of a
process cost milliseconds each: they are warmed with a few real User-Agents when the first parser of a
process is created. The extractors (~0.35 s to build) are shared
by the parsers of a process and rebuilt in a fork child. The result, with the bot verdict, is kept in a
bounded LRU per parser, so the common case is a dict lookup.
Family names are normalised the way analytics users expect ("Mobile Safari" → "Safari", "Mac OS X" →
"macOS"). Client Hints (``Sec-CH-UA-Mobile``) and the viewport width refine the device class.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from ua_parser import regex as _rs
from ua_parser.loaders import load_builtins

from . import bots
from .bots import is_bot

_BROWSERS: Final = {
    "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari", "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Edge Mobile": "Edge",
    "Opera Mobile": "Opera", "Samsung Internet": "Samsung Internet", "HeadlessChrome": "Chrome",
    "Chromium": "Chromium", "Yandex Browser": "Yandex Browser", "DuckDuckGo Mobile": "DuckDuckGo",
}
_OSES: Final = {"Mac OS X": "macOS", "Chrome OS": "Chrome OS", "iPadOS": "iOS"}
_MOBILE_DEVICES: Final = frozenset({"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"})

# Parsed once when a parser is created, to build the regex engines' automata for common traffic.
_WARM_UP: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)


@dataclass(frozen=True, slots=True)
class Agent:
    """What a User-Agent string says about the client."""

    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str | None  # "mobile" | "tablet" | "desktop" | None (unknown)
    is_bot: bool


UNKNOWN_AGENT: Final = Agent(None, None, None, None, None, False)


def _version(*parts: str | None) -> str | None:
    out = []
    for part in parts:
        if not part:
            break
        out.append(part)
    return ".".join(out) or None


def device_from_width(width: int | None) -> str | None:
    """Device class from the viewport width, as Mallard Metrics: <768 mobile, <1024 tablet."""
    if width is None or width <= 0:
        return None
    if width < 768:
        return "mobile"
    if width < 1024:
        return "tablet"
    return "desktop"


class _Extractors(NamedTuple):
    browser: Callable[[str], Any]
    os: Callable[[str], Any]
    device: Callable[[str], Any]


_extractors_lock = threading.Lock()
_shared: _Extractors | None = None


def _extractors() -> _Extractors:
    """The process's three ua-parser-rs extractors, built and warmed up on the first call."""
    global _shared
    with _extractors_lock:
        if _shared is None:
            resolver = _rs.Resolver(load_builtins())
            extractors = _Extractors(resolver.ua.extract, resolver.os.extract, resolver.de.extract)
            bots.warm_up()
            for user_agent in _WARM_UP:
                _agent(extractors, user_agent)
            _shared = extractors
        return _shared


def _forget_after_fork() -> None:  # another thread may have been inside an extractor at the fork
    global _extractors_lock, _shared
    _extractors_lock, _shared = threading.Lock(), None


os.register_at_fork(after_in_child=_forget_after_fork)


class AgentParser:
    """Parses User-Agent strings; thread-safe, with a bounded per-process LRU cache."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._extractors = _extractors()
        self._cache: OrderedDict[str, Agent] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def parse(self, user_agent: str) -> Agent:
        """The :class:`Agent` for ``user_agent`` (never raises)."""
        cache = self._cache
        agent = cache.get(user_agent)
        if agent is not None:
            self.hits += 1
            try:  # noqa: SIM105 - not contextlib.suppress: the hot path, and suppress costs 4x more
                cache.move_to_end(user_agent)  # least recently *used* goes first, not oldest
            except KeyError:  # evicted meanwhile by another thread
                pass
            return agent
        self.misses += 1
        agent = _agent(self._extractors, user_agent)
        if self._cache_size:
            with self._lock:
                cache[user_agent] = agent
                if len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return agent



def _agent(extractors: _Extractors, user_agent: str) -> Agent:
    """Parse ``user_agent`` (not cached; never raises)."""
    if not user_agent:
        return UNKNOWN_AGENT
    try:
        ua = extractors.browser(user_agent) or None  # falsy → None, as ua_parser's Resolver does
        os = extractors.os(user_agent) or None
        dev = extractors.device(user_agent) or None
    except Exception:  # a parser bug must not cost the event
        return Agent(None, None, None, None, None, is_bot(user_agent))
    return _agent_of(user_agent, ua, os, dev, is_bot)


def _agent_of(user_agent: str, ua: Any, os: Any, dev: Any, bot_check: Callable[[str], bool]) -> Agent:
    """The :class:`Agent` of ua-parser's user-agent, OS and device results (each None when unknown);
    ``bot_check`` runs only when the device family does not already say Spider."""
    browser = version = os_name = os_version = None
    if ua is not None and ua.family != "Other":
        browser = _BROWSERS.get(ua.family, ua.family)
        version = _version(ua.major, ua.minor)  # major.minor, as the column is documented
    if os is not None and os.family != "Other":
        os_name = _OSES.get(os.family, os.family)
        os_version = _version(os.major, os.minor, os.patch, os.patch_minor)
    family = dev.family if dev is not None else ""
    bot = family == "Spider" or bot_check(user_agent)
    return Agent(browser, version, os_name, os_version,
                 _device_from_ua(user_agent, os_name, family), bot)


def _device_from_ua(user_agent: str, os_name: str | None, family: str) -> str | None:
    if "iPad" in user_agent or "Tablet" in family or "Tablet" in user_agent:
        return "tablet"
    if family in _MOBILE_DEVICES or "Mobi" in user_agent:
        return "mobile"
    if os_name == "Android":
        return "tablet"  # Android without "Mobile" in the UA is a tablet by Google's convention
    if os_name == "iOS":
        return "mobile"
    if os_name in ("Windows", "macOS", "Linux", "Chrome OS", "Ubuntu", "Fedora", "FreeBSD"):
        return "desktop"
    return None


def device_type(agent: Agent, width: int | None, ch_mobile: str | None) -> str | None:
    """Device class: Client Hint ``Sec-CH-UA-Mobile`` first, then viewport width, then the UA."""
    if ch_mobile == "?1":
        return "mobile"
    by_width = device_from_width(width)
    if by_width is not None:
        return by_width
    if ch_mobile == "?0" and agent.device is None:
        return "desktop"
    return agent.device
