"""User-Agent parsing: browser, version, OS, device class, bot flag, and the bounded cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from mallard._enrich.useragent import UNKNOWN_AGENT, Agent, AgentParser, device_from_width, device_type
from tests.strategies import user_agents

# name: (User-Agent, browser, browser_version, os, os_version, device)
REAL_AGENTS: dict[str, tuple[str, str, str, str, str | None, str]] = {
    "chrome-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        "Chrome", "120.0", "Windows", "10", "desktop"),
    "chrome-windows-7": (
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 "
        "Safari/537.36",
        "Chrome", "109.0", "Windows", "7", "desktop"),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Mobile/15E148 Safari/604.1",
        "Safari", "17.2", "iOS", "17.2.1", "mobile"),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        "Safari", "16.6", "iOS", "16.6", "tablet"),
    "chrome-android-phone": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
        "Chrome", "120.0", "Android", "14", "mobile"),
    "chrome-android-tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Safari/537.36",
        "Chrome", "120.0", "Android", "13", "tablet"),
    "firefox-linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Firefox", "121.0", "Linux", None, "desktop"),
    "edge-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 Edg/120.0.2210.91",
        "Edge", "120.0", "Windows", "10", "desktop"),
    "samsung-internet": (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Samsung Internet", "23.0", "Android", "13", "mobile"),
    "opera-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 OPR/106.0.0.0",
        "Opera", "106.0", "Windows", "10", "desktop"),
    "safari-macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Safari/605.1.15",
        "Safari", "17.2", "macOS", "10.15.7", "desktop"),
    "chrome-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Chrome", "120.0", "iOS", "17.2", "mobile"),
    "firefox-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
        "Firefox", "121.0", "iOS", "17.2", "mobile"),
    "chrome-os": (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        "Chrome", "120.0", "Chrome OS", "14541.0.0", "desktop"),
}


@pytest.fixture(scope="module")
def parser() -> AgentParser:
    return AgentParser()


@pytest.mark.parametrize(("user_agent", "browser", "version", "os", "os_version", "device"),
                         REAL_AGENTS.values(), ids=REAL_AGENTS.keys())
def test_real_user_agents(parser: AgentParser, user_agent: str, browser: str, version: str, os: str,
                          os_version: str | None, device: str) -> None:
    assert parser.parse(user_agent) == Agent(browser, version, os, os_version, device, False)


@pytest.mark.parametrize("user_agent", ["", "hello world", "Mozilla/5.0", "()" * 50],
                         ids=["empty", "words", "bare-mozilla", "brackets"])
def test_unknown_user_agents(parser: AgentParser, user_agent: str) -> None:
    agent = parser.parse(user_agent)
    assert (agent.browser, agent.browser_version, agent.os, agent.os_version, agent.is_bot) == (
        None, None, None, None, False)


def test_empty_user_agent_is_the_unknown_agent(parser: AgentParser) -> None:
    assert parser.parse("") == UNKNOWN_AGENT


def test_crawler_is_flagged(parser: AgentParser) -> None:
    agent = parser.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert agent.is_bot and agent.browser == "Googlebot"


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(user_agents())
def test_parse_never_raises(parser: AgentParser, user_agent: str) -> None:
    agent = parser.parse(user_agent)
    assert agent.device in {None, "mobile", "tablet", "desktop"}
    assert parser.parse(user_agent) == agent


# -- the cache --------------------------------------------------------------------------------------
UA_A, UA_B, UA_C = (REAL_AGENTS[name][0] for name in ("chrome-windows", "firefox-linux", "safari-iphone"))


def test_cache_counts_hits_and_misses() -> None:
    parser = AgentParser(cache_size=10)
    first = parser.parse(UA_A)
    assert parser.parse(UA_A) is first
    parser.parse(UA_B)
    assert (parser.hits, parser.misses) == (1, 2)


def test_cache_is_bounded() -> None:
    parser = AgentParser(cache_size=2)
    for user_agent in (UA_A, UA_B, UA_C):
        parser.parse(user_agent)
    parser.parse(UA_C)
    parser.parse(UA_B)
    assert (parser.hits, parser.misses) == (2, 3)
    parser.parse(UA_A)  # evicted by the third distinct User-Agent
    assert (parser.hits, parser.misses) == (2, 4)


def test_cache_evicts_the_least_recently_used() -> None:
    parser = AgentParser(cache_size=2)
    parser.parse(UA_A)
    parser.parse(UA_B)
    parser.parse(UA_A)  # A is now more recent than B
    parser.parse(UA_C)  # evicts B
    parser.parse(UA_A)
    assert (parser.hits, parser.misses) == (2, 3)
    parser.parse(UA_B)
    assert parser.misses == 4


def test_cache_size_zero_disables_the_cache() -> None:
    parser = AgentParser(cache_size=0)
    assert parser.parse(UA_A) == parser.parse(UA_A)
    assert (parser.hits, parser.misses) == (0, 2)


# -- device class -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("width", "device"),
    [(None, None), (0, None), (1, "mobile"), (767, "mobile"), (768, "tablet"), (1023, "tablet"),
     (1024, "desktop"), (3840, "desktop")],
)
def test_device_from_width(width: int | None, device: str | None) -> None:
    assert device_from_width(width) == device


PHONE = Agent("Safari", "17.2", "iOS", "17.2", "mobile", False)
TABLET = Agent("Chrome", "120.0", "Android", "13", "tablet", False)


@pytest.mark.parametrize(
    ("agent", "width", "ch_mobile", "device"),
    [(PHONE, None, None, "mobile"), (PHONE, 1280, None, "desktop"), (UNKNOWN_AGENT, 900, None, "tablet"),
     (UNKNOWN_AGENT, None, "?1", "mobile"), (UNKNOWN_AGENT, 1280, "?1", "mobile"),
     (UNKNOWN_AGENT, None, "?0", "desktop"), (TABLET, None, "?0", "tablet"),
     (UNKNOWN_AGENT, None, None, None), (UNKNOWN_AGENT, None, "maybe", None)],
    ids=["ua", "width-beats-ua", "width", "hint-mobile", "hint-mobile-beats-width", "hint-desktop",
         "ua-beats-hint-desktop", "nothing", "bad-hint"],
)
def test_device_type_precedence(agent: Agent, width: int | None, ch_mobile: str | None,
                                device: str | None) -> None:
    assert device_type(agent, width, ch_mobile) == device
