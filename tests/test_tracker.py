"""Tracker: the ingestion pipeline, one group of tests per step and per drop reason (reference §2, v0.2)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mallard._enrich.geo import GeoLookup
from mallard._enrich.useragent import AgentParser
from mallard._errors import InvalidEventError
from mallard._events import MAX_SITE_ID, Event
from mallard._payload import RawEvent
from mallard._privacy import Salts
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from mallard._tracker import ClientContext, Outcome, Tracker
from tests.conftest import START, FrozenClock
from tests.mmdb import write_city_db
from tests.strategies import client_contexts, raw_events

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1")
SAFARI_IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/16.6 Mobile/15E148 Safari/604.1")
CHROME_ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/120.0.6099.144 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

IP = "203.0.113.7"
DESKTOP = ClientContext(ip=IP, user_agent=CHROME_WINDOWS)
HEX64 = re.compile(r"[0-9a-f]{64}")

MakeTracker = Callable[..., Tracker]


def raw(**overrides: Any) -> RawEvent:
    fields: dict[str, Any] = {"site": "example.com", "name": "pageview",
                              "url": "https://example.com/pricing"}
    return RawEvent(**(fields | overrides))


def accepted(outcome: Outcome) -> Event:
    assert outcome.accepted, (outcome.reason, outcome.error)
    assert outcome.event is not None and outcome.reason is None and outcome.error is None
    return outcome.event


def invalid(outcome: Outcome) -> InvalidEventError:
    assert not outcome.accepted and outcome.reason == "invalid" and outcome.event is None
    assert outcome.error is not None
    return outcome.error


def dropped(outcome: Outcome) -> str:
    assert not outcome.accepted and outcome.event is None and outcome.error is None
    assert outcome.reason is not None
    return outcome.reason


@pytest.fixture(scope="module")
def agents() -> AgentParser:
    """One User-Agent parser for the module: building one compiles ~1,000 regexes (0.1 s)."""
    return AgentParser()


@pytest.fixture
def make_tracker(tmp_data_dir: Path, clock: FrozenClock, agents: AgentParser) -> MakeTracker:
    def make(geo: GeoLookup | None = None, **options: Any) -> Tracker:
        return Tracker(Settings(**options), salts=Salts(LocalState(tmp_data_dir / "state")),
                       secret=b"k" * 32, clock=clock, geo=geo, agents=agents)

    return make


@pytest.fixture
def tracker(make_tracker: MakeTracker) -> Tracker:
    return make_tracker()


def run(tracker: Tracker, ctx: ClientContext = DESKTOP, **overrides: Any) -> Outcome:
    return tracker.process(raw(**overrides), ctx)


# -- the pipeline as a whole ------------------------------------------------------------------------
def test_pageview_becomes_an_event(tracker: Tracker) -> None:
    event = accepted(run(tracker))
    assert event.site_id == "example.com" and event.event_name == "pageview"
    assert event.pathname == "/pricing" and event.hostname == "example.com"
    assert event.timestamp == START.replace(tzinfo=None)
    assert HEX64.fullmatch(event.visitor_id)
    assert (event.browser, event.os, event.device_type) == ("Chrome", "Windows", "desktop")
    assert event.referrer is None and event.referrer_source == "(direct)"


def test_steps_run_in_the_documented_order() -> None:
    assert Tracker.STEPS == ("validate", "allow_site", "honour_opt_out", "drop_bot", "enrich",
                             "anonymise", "apply_privacy", "redact", "classify")


def test_validation_comes_before_the_allowlist(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(site_ids=["example.com"])
    assert invalid(run(tracker, site="bad site")).code == "invalid_site_id"


def test_allowlist_comes_before_opt_out_and_bots(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(site_ids=["example.com"], honor_dnt=True)
    ctx = ClientContext(ip=IP, user_agent=GOOGLEBOT, dnt="1")
    assert dropped(tracker.process(raw(site="other.example"), ctx)) == "site_not_allowed"


def test_opt_out_comes_before_the_bot_filter(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(honor_dnt=True)
    assert dropped(tracker.process(raw(), ClientContext(user_agent=GOOGLEBOT, dnt="1"))) == "do_not_track"


# -- validate: lengths in bytes (reference §2.2 step 4) ---------------------------------------------
LIMITS: dict[str, tuple[str, str, int]] = {  # field: (prefix, suffix, limit in bytes)
    "site": ("", "", MAX_SITE_ID),
    "url": ("/", "", 2000),
    "referrer": ("https://ref.example/", "", 2048),
    # two full values before "k": one value may have at most 2,000 bytes (Plausible's limit)
    "props": ('{"a":"' + "y" * 1500 + '","b":"' + "y" * 1500 + '","k":"', '"}', 4096),
}


def text_of(field: str, size: int, char: str) -> str:
    """A value for ``field`` of exactly ``size`` UTF-8 bytes, mostly made of ``char``."""
    prefix, suffix, _ = LIMITS[field]
    room = size - len((prefix + suffix).encode())
    count, rest = divmod(room, len(char.encode()))
    return prefix + char * count + "x" * rest + suffix


LIMIT_CASES = [
    pytest.param(field, char, id=f"{field}-{label}")
    for field in LIMITS
    for char, label in (("x", "ascii"), ("é", "2-byte"), ("😀", "4-byte"))
    if field != "site" or char == "x"  # a site id is ASCII by its charset
]


@pytest.mark.parametrize(("field", "char"), LIMIT_CASES)
def test_value_of_exactly_the_byte_limit_is_accepted(tracker: Tracker, field: str, char: str) -> None:
    value = text_of(field, LIMITS[field][2], char)
    event = accepted(run(tracker, **{field: value}))
    if field == "props":
        assert event.props == value


@pytest.mark.parametrize(("field", "char"), LIMIT_CASES)
def test_value_one_byte_over_the_limit_is_rejected(tracker: Tracker, field: str, char: str) -> None:
    limit = LIMITS[field][2]
    value = text_of(field, limit + 1, char)
    assert len(value) <= limit or char == "x"  # multi-byte values are within the limit in characters
    error = invalid(run(tracker, **{field: value}))
    assert error.code == "too_long" and f"at most {limit} bytes" in str(error)


def test_props_object_too_long_once_serialised_is_rejected(tracker: Tracker) -> None:
    error = invalid(run(tracker, props={"a": "é" * 1000, "b": "é" * 1000, "c": "é" * 100}))
    assert error.code == "too_long" and "props" in str(error)


# -- validate: site id, required values, other fields -----------------------------------------------
@pytest.mark.parametrize("site", ["example.com", "localhost:8080", "my_site-1", "A.B.C", "x", "a" * 247,
                                  "a" * 244 + ":"])
def test_valid_site_ids(tracker: Tracker, site: str) -> None:
    assert accepted(run(tracker, site=site)).site_id == site


@pytest.mark.parametrize(
    "site",
    ["exa mple.com", "example.com/", "https://example.com", "ex@mple.com", "éxample.com", "..", ".",
     "example.com\n", "", "a" * 245 + ":"],
    ids=["space", "slash", "scheme", "at", "non-ascii", "dots", "dot", "newline", "empty",
         "too long once ':' is written %3A"],
)
def test_invalid_site_ids(tracker: Tracker, site: str) -> None:
    assert invalid(run(tracker, site=site)).code == "invalid_site_id"


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        ({"name": ""}, "empty_field", "event name"),
        ({"name": "\x00\x1f\x7f"}, "empty_field", "event name"),  # empty once sanitised
        ({"url": ""}, "empty_field", "url"),
        ({"user_id": ""}, "invalid_field", "user_id"),
        ({"user_id": "u" * 513}, "invalid_field", "user_id"),
        ({"screen_width": -1}, "invalid_field", "screen_width"),
        ({"screen_width": 2**32}, "invalid_field", "screen_width"),
        ({"screen_width": True}, "invalid_field", "screen_width"),
        ({"screen_width": 1920.5}, "invalid_field", "screen_width"),
    ],
    ids=["empty-name", "control-only-name", "empty-url", "empty-user-id", "long-user-id",
         "negative-width", "huge-width", "bool-width", "float-width"],
)
def test_invalid_values(tracker: Tracker, change: dict[str, Any], code: str, fragment: str) -> None:
    error = invalid(run(tracker, **change))
    assert error.code == code and fragment in str(error)


def test_control_characters_are_removed_from_names(tracker: Tracker) -> None:
    assert accepted(run(tracker, name="Sign\x00up\n")).event_name == "Signup"


# -- allow_site -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("site", "reason"),
    [("example.com", None), ("docs.example.com", None), ("other.example", "site_not_allowed"),
     ("example.com.evil.com", "site_not_allowed"), ("sub.example.com", "site_not_allowed"),
     ("EXAMPLE.COM", "site_not_allowed")],
)
def test_site_allowlist(make_tracker: MakeTracker, site: str, reason: str | None) -> None:
    tracker = make_tracker(site_ids=["example.com", "docs.example.com"])
    outcome = run(tracker, site=site)
    if reason is None:
        accepted(outcome)
    else:
        assert dropped(outcome) == reason


def test_empty_allowlist_accepts_any_site(tracker: Tracker) -> None:
    accepted(run(tracker, site="anything.example"))


# -- honour_opt_out ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("honor_dnt", "dnt", "gpc", "reason"),
    [(True, "1", None, "do_not_track"), (True, None, "1", "do_not_track"), (True, "1", "1", "do_not_track"),
     (True, "0", "0", None), (True, None, None, None), (False, "1", "1", None)],
    ids=["dnt", "gpc", "both", "explicit-no", "no-headers", "not-honoured"],
)
def test_do_not_track(make_tracker: MakeTracker, honor_dnt: bool, dnt: str | None, gpc: str | None,
                      reason: str | None) -> None:
    tracker = make_tracker(honor_dnt=honor_dnt)
    outcome = tracker.process(raw(), ClientContext(ip=IP, user_agent=CHROME_WINDOWS, dnt=dnt, gpc=gpc))
    if reason is None:
        accepted(outcome)
    else:
        assert dropped(outcome) == reason


def test_opt_out_headers_from_request_headers(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(honor_dnt=True)
    ctx = ClientContext.from_headers({"user-agent": CHROME_WINDOWS, "sec-gpc": "1"}, IP)
    assert dropped(tracker.process(raw(), ctx)) == "do_not_track"


# -- drop_bot ---------------------------------------------------------------------------------------
BOTS = {
    "googlebot": GOOGLEBOT,
    "curl": "curl/8.4.0",
    "headless-chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "HeadlessChrome/120.0.0.0 Safari/537.36",
    "python-requests": "python-requests/2.31.0",
    "bingbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
               "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
}
HUMANS = {
    "chrome": CHROME_WINDOWS,
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "safari": SAFARI_IPHONE,
    "cubot-phone": "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
    "whatsapp-in-app": "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) "
                       "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 "
                       "Mobile Safari/537.36 WhatsApp/2.23.25.83",
    "empty": "",
}


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_bots_are_dropped(tracker: Tracker, user_agent: str) -> None:
    assert dropped(tracker.process(raw(), ClientContext(ip=IP, user_agent=user_agent))) == "bot"


@pytest.mark.parametrize("user_agent", HUMANS.values(), ids=HUMANS.keys())
def test_browsers_are_kept(tracker: Tracker, user_agent: str) -> None:
    accepted(tracker.process(raw(), ClientContext(ip=IP, user_agent=user_agent)))


def test_missing_user_agent_is_not_a_bot(tracker: Tracker) -> None:
    event = accepted(tracker.process(raw(), ClientContext(ip=IP)))
    assert (event.browser, event.os, event.device_type) == (None, None, None)


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_bots_are_kept_when_filtering_is_off(make_tracker: MakeTracker, user_agent: str) -> None:
    tracker = make_tracker(filter_bots=False)
    accepted(tracker.process(raw(), ClientContext(ip=IP, user_agent=user_agent)))


# -- enrich: page URL -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "pathname"),
    [("https://example.com/about?ref=1#team", "/about"), ("https://example.com/", "/"),
     ("https://example.com", "/"), ("https://example.com/about/", "/about"),
     ("https://example.com/Docs/API", "/Docs/API"), ("https://example.com/a%20b", "/a%20b"),
     ("/about/team", "/about/team"), ("about/team", "/about/team"), ("/", "/"), ("?q=1", "/"),
     ("//cdn.example.com/x/", "/x")],
    ids=["query-and-fragment", "root-slash", "root-bare", "trailing-slash", "case-kept", "not-decoded",
         "relative", "relative-without-slash", "slash", "query-only", "scheme-relative"],
)
def test_pathname(tracker: Tracker, url: str, pathname: str) -> None:
    assert accepted(run(tracker, url=url)).pathname == pathname


@pytest.mark.parametrize(
    ("url", "hostname"),
    [("https://blog.example.com/post", "blog.example.com"), ("https://EXAMPLE.com:8443/", "example.com"),
     ("https://user:pw@example.com/", "example.com"), ("/relative", None)],
    ids=["subdomain", "case-and-port", "userinfo", "relative"],
)
def test_hostname_comes_from_the_url_not_the_site(tracker: Tracker, url: str, hostname: str | None) -> None:
    assert accepted(run(tracker, site="example.com", url=url)).hostname == hostname


def test_utm_parameters_are_decoded(tracker: Tracker) -> None:
    url = ("https://example.com/?utm_source=news%20letter&UTM_Medium=e+mail&utm_campaign=spring%2Fsale"
           "&utm_content=&utm_term=a%zzb&utm_source=mail#utm_term=leak")
    event = accepted(run(tracker, url=url))
    assert (event.utm_source, event.utm_medium, event.utm_campaign, event.utm_content, event.utm_term) == (
        "mail", "e mail", "spring/sale", None, "a%zzb")


# -- enrich: referrer -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "referrer", "source"),
    [
        ("https://example.com/", None, "(direct)"),
        ("https://example.com/", "", "(direct)"),
        ("https://example.com/", "https://example.com/pricing", "(direct)"),
        ("https://www.example.com/", "https://example.com/", "(direct)"),
        ("/relative", "https://example.com/blog", "(direct)"),
        ("https://example.com/", "https://www.google.com/search?q=ducks", "Google"),
        ("https://example.com/", "https://www.google.co.uk/", "Google"),
        ("https://example.com/", "https://news.ycombinator.com/item?id=1", "Hacker News"),
        ("https://example.com/", "https://t.co/abc", "Twitter"),
        ("https://example.com/", "https://notgoogle.com/", "notgoogle.com"),
        ("https://example.com/", "https://www.MyBlog.org:8080/post", "myblog.org"),
        ("https://example.com/", "not a url", "(direct)"),
    ],
    ids=["none", "empty", "self", "self-www", "self-relative-url-uses-site", "google", "google-country",
         "hacker-news", "twitter", "look-alike", "unknown-host", "garbage"],
)
def test_referrer_source(tracker: Tracker, url: str, referrer: str | None, source: str) -> None:
    assert accepted(run(tracker, url=url, referrer=referrer)).referrer_source == source


def test_referrer_is_stored_without_control_characters(tracker: Tracker) -> None:
    event = accepted(run(tracker, referrer="https://blog.example.org/a\x00b?\tq=1"))
    assert event.referrer == "https://blog.example.org/ab?q=1"


# -- enrich: user agent, device, screen -------------------------------------------------------------
def test_browser_and_os_come_from_the_user_agent(tracker: Tracker) -> None:
    event = accepted(tracker.process(raw(), ClientContext(ip=IP, user_agent=SAFARI_IPHONE)))
    assert (event.browser, event.browser_version, event.os, event.os_version) == (
        "Safari", "17.2", "iOS", "17.2.1")


@pytest.mark.parametrize(
    ("user_agent", "width", "ch_mobile", "device"),
    [
        (CHROME_WINDOWS, 500, None, "mobile"),
        (CHROME_WINDOWS, 800, None, "tablet"),
        (SAFARI_IPHONE, 1280, None, "desktop"),
        (SAFARI_IPHONE, None, None, "mobile"),
        (SAFARI_IPAD, None, None, "tablet"),
        (CHROME_WINDOWS, None, None, "desktop"),
        (CHROME_ANDROID_TABLET, None, "?0", "tablet"),
        ("", None, "?1", "mobile"),
        ("", None, "?0", "desktop"),
        (CHROME_WINDOWS, None, "?1", "mobile"),
        (CHROME_WINDOWS, 1920, "?1", "mobile"),
        ("", None, None, None),
    ],
    ids=["width-mobile", "width-tablet", "width-beats-ua", "ua-iphone", "ua-ipad", "ua-windows",
         "ua-tablet-beats-hint-0", "hint-mobile", "hint-desktop", "hint-beats-ua", "hint-beats-width",
         "unknown"],
)
def test_device_type(tracker: Tracker, user_agent: str, width: int | None, ch_mobile: str | None,
                     device: str | None) -> None:
    ctx = ClientContext(ip=IP, user_agent=user_agent, ch_mobile=ch_mobile)
    assert accepted(tracker.process(raw(screen_width=width), ctx)).device_type == device


def test_device_hint_from_request_headers(tracker: Tracker) -> None:
    ctx = ClientContext.from_headers({"user-agent": "", "sec-ch-ua-mobile": "?1"}, IP)
    assert accepted(tracker.process(raw(), ctx)).device_type == "mobile"


@pytest.mark.parametrize(("width", "screen_size"), [(1920, "1920"), (None, None)])
def test_screen_size_is_the_width_as_text(tracker: Tracker, width: int | None,
                                          screen_size: str | None) -> None:
    assert accepted(run(tracker, screen_width=width)).screen_size == screen_size


# -- enrich: location -------------------------------------------------------------------------------
def test_location_from_the_client_ip(make_tracker: MakeTracker, tmp_path: Path) -> None:
    path = write_city_db(tmp_path / "city.mmdb", {"203.0.113.0/24": {
        "country": {"iso_code": "GB"}, "subdivisions": [{"names": {"en": "England"}}],
        "city": {"names": {"en": "London"}}}})
    geo = GeoLookup(path)
    try:
        tracker = make_tracker(geo=geo)
        event = accepted(run(tracker))
        assert (event.country_code, event.region, event.city) == ("GB", "England", "London")
        event = accepted(tracker.process(raw(), ClientContext(user_agent=CHROME_WINDOWS)))
        assert (event.country_code, event.region, event.city) == (None, None, None)
    finally:
        geo.close()


# -- enrich: props ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("props", "stored"),
    [
        ({"plan": "pro", "amount": 3, "a": True, "n": None},
         '{"a":true,"amount":3,"n":null,"plan":"pro"}'),
        ('{"b": 1, "a": "x"}', '{"a":"x","b":1}'),
        (MappingProxyType({"b": 2, "a": 1}), '{"a":1,"b":2}'),
        ({"text": "line\nbreak"}, '{"text":"line\\nbreak"}'),
        ({}, None),
        ("{}", None),
        ("", None),
        (None, None),
    ],
    ids=["object-sorted", "json-string-sorted", "any-mapping", "escaped-control", "empty-object",
         "empty-json-object", "empty-string", "none"],
)
def test_props_are_stored_as_canonical_json(tracker: Tracker, props: Any, stored: str | None) -> None:
    outcome = run(tracker, props=props)
    assert accepted(outcome).props == stored
    assert outcome.warnings == ()


@pytest.mark.parametrize(
    ("props", "warning"),
    [("[1, 2]", "not a JSON object"), ('"text"', "not a JSON object"), ("null", "not a JSON object"),
     ("{not json", "not valid JSON"), ({"tags": {"a", "b"}}, "not JSON"),
     ({1: "non-string key"}, "not JSON"), ({"n": 2**70}, "not JSON")],
    ids=["array", "string", "null", "invalid-json", "set-value", "int-key", "huge-int"],
)
def test_props_that_are_not_a_json_object_are_dropped_with_a_warning(tracker: Tracker, props: Any,
                                                                     warning: str) -> None:
    outcome = run(tracker, props=props)
    assert accepted(outcome).props is None
    assert len(outcome.warnings) == 1 and warning in outcome.warnings[0]


# -- enrich: revenue --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "expected"),
    [(49.9, Decimal("49.90")), ("12.344", Decimal("12.34")), ("12.346", Decimal("12.35")),
     (7, Decimal("7.00")), (Decimal("0.1"), Decimal("0.10")), ("-5", Decimal("-5.00")),
     (" 3.5 ", Decimal("3.50")),
     ("9999999999.99", Decimal("9999999999.99")), (-9999999999.99, Decimal("-9999999999.99"))],
    ids=["float", "round-down", "round-up", "int", "decimal", "refund", "padded-text", "max", "min"],
)
def test_revenue_amount_is_kept_with_two_decimals(tracker: Tracker, amount: Any, expected: Decimal) -> None:
    outcome = run(tracker, revenue=amount, currency="EUR")
    event = accepted(outcome)
    assert event.revenue_amount == expected and event.revenue_amount.as_tuple().exponent == -2
    assert outcome.warnings == ()


@pytest.mark.parametrize(
    "amount",
    [float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", Decimal("sNaN"), "10000000000",
     1e30, -1e30, 10**400, "12,50", "abc", True, [12]],
    ids=["nan", "inf", "-inf", "nan-text", "inf-text", "snan", "over-max", "1e30", "-1e30", "huge-int",
         "comma", "text", "bool", "list"],
)
def test_bad_revenue_amount_is_dropped_with_a_warning(tracker: Tracker, amount: Any) -> None:
    outcome = run(tracker, revenue=amount, currency="USD")
    event = accepted(outcome)
    assert event.revenue_amount is None and event.revenue_currency == "USD"
    assert len(outcome.warnings) == 1 and "revenue amount" in outcome.warnings[0]


@pytest.mark.parametrize(("currency", "expected"), [("usd", "USD"), ("EUR", "EUR"), ("jPy", "JPY")])
def test_currency_is_upper_cased(tracker: Tracker, currency: str, expected: str) -> None:
    assert accepted(run(tracker, revenue=1, currency=currency)).revenue_currency == expected


@pytest.mark.parametrize("currency", ["DOLLARS", "US", "U$D", "ÄBC", "€", 840, "E U"],
                         ids=["long", "short", "symbol", "non-ascii", "sign", "number", "space"])
def test_bad_currency_is_dropped_with_a_warning(tracker: Tracker, currency: Any) -> None:
    outcome = run(tracker, revenue=1, currency=currency)
    event = accepted(outcome)
    assert event.revenue_currency is None and event.revenue_amount == Decimal("1.00")
    assert len(outcome.warnings) == 1 and "currency" in outcome.warnings[0]


def test_no_revenue(tracker: Tracker) -> None:
    event = accepted(run(tracker))
    assert (event.revenue_amount, event.revenue_currency) == (None, None)


# -- timestamps -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("timestamp", "stored"),
    [
        (None, datetime(2024, 5, 1, 12, 0)),
        (datetime(2024, 4, 30, 8, 15, 30, 123456, tzinfo=UTC), datetime(2024, 4, 30, 8, 15, 30, 123456)),
        (datetime(2024, 4, 30, 8, 15, 30, 123456), datetime(2024, 4, 30, 8, 15, 30, 123456)),
        (datetime(2024, 4, 30, 10, 0, tzinfo=timezone(timedelta(hours=2))), datetime(2024, 4, 30, 8, 0)),
        (datetime(2019, 1, 1), datetime(2019, 1, 1)),
        (START + timedelta(minutes=5), datetime(2024, 5, 1, 12, 5)),
    ],
    ids=["clock", "past-aware", "naive-is-utc", "offset-converted", "years-ago", "five-minutes-ahead"],
)
def test_timestamp(tracker: Tracker, timestamp: datetime | None, stored: datetime) -> None:
    event = accepted(run(tracker, timestamp=timestamp))
    assert event.timestamp == stored and event.timestamp.tzinfo is None


def test_clock_keeps_microseconds(tracker: Tracker, clock: FrozenClock) -> None:
    clock.advance(microseconds=1)
    assert accepted(run(tracker)).timestamp == datetime(2024, 5, 1, 12, 0, 0, 1)


@pytest.mark.parametrize(
    "timestamp",
    [START + timedelta(minutes=5, microseconds=1), START + timedelta(days=1), datetime.max,
     datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))],
    ids=["just-over-five-minutes", "tomorrow", "max", "before-utc-min"],
)
def test_future_or_unrepresentable_timestamp_is_rejected(tracker: Tracker, timestamp: datetime) -> None:
    assert invalid(run(tracker, timestamp=timestamp)).code == "invalid_field"


# -- anonymise --------------------------------------------------------------------------------------
def test_visitor_id_is_a_keyed_hash(tracker: Tracker) -> None:
    event = accepted(run(tracker))
    assert HEX64.fullmatch(event.visitor_id) and event.visitor_id_prev is None


def test_user_id_is_stored_as_a_pseudonym(tracker: Tracker) -> None:
    event = accepted(run(tracker, user_id="alice@example.com"))
    assert event.user_id is not None and HEX64.fullmatch(event.user_id)
    assert "alice" not in repr(event)


def test_no_user_id(tracker: Tracker) -> None:
    assert accepted(run(tracker)).user_id is None


# -- apply_privacy ----------------------------------------------------------------------------------
def test_strip_referrer_query(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(strip_referrer_query=True)
    event = accepted(run(tracker, referrer="https://www.google.com/search?q=secret+illness#top"))
    assert event.referrer == "https://www.google.com/search" and event.referrer_source == "Google"


def test_referrer_query_is_kept_by_default(tracker: Tracker) -> None:
    assert accepted(run(tracker, referrer="https://x.example/?q=1#f")).referrer == "https://x.example/?q=1#f"


def test_round_timestamps_floors_to_the_hour(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(round_timestamps=True)
    event = accepted(run(tracker, timestamp=datetime(2024, 5, 1, 11, 59, 59, 999999, tzinfo=UTC)))
    assert event.timestamp == datetime(2024, 5, 1, 11, 0)


@pytest.mark.parametrize(
    ("flag", "field"),
    [("suppress_browser_version", "browser_version"), ("suppress_os_version", "os_version"),
     ("suppress_screen_size", "screen_size")],
)
def test_suppress_flags_remove_their_field(make_tracker: MakeTracker, flag: str, field: str) -> None:
    assert getattr(accepted(run(make_tracker(), screen_width=1920)), field) is not None
    assert getattr(accepted(run(make_tracker(**{flag: True}), screen_width=1920)), field) is None


def test_suppressed_screen_size_leaves_the_device_from_user_agent(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(suppress_screen_size=True)
    ctx = ClientContext(ip=IP, user_agent=SAFARI_IPHONE)
    assert accepted(tracker.process(raw(screen_width=1280), ctx)).device_type == "mobile"


def test_suppressed_screen_size_keeps_the_client_hint(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(suppress_screen_size=True)
    ctx = ClientContext(ip=IP, user_agent="", ch_mobile="?1")
    event = accepted(tracker.process(raw(screen_width=1280), ctx))
    assert event.device_type == "mobile" and event.screen_size is None


def test_suppress_visitor_id_gives_a_random_id_per_event(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(suppress_visitor_id=True)
    ids = {accepted(run(tracker)).visitor_id for _ in range(5)}
    assert len(ids) == 5
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_gdpr_mode_applies_every_preset_flag(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(gdpr_mode=True)
    event = accepted(run(tracker, referrer="https://search.example/?q=me",
                         timestamp=datetime(2024, 5, 1, 11, 45, tzinfo=UTC), screen_width=1920))
    assert event.referrer == "https://search.example/" and event.timestamp == datetime(2024, 5, 1, 11, 0)
    assert event.browser_version is None and event.os_version is None and event.screen_size is None
    assert event.browser == "Chrome" and event.os == "Windows" and HEX64.fullmatch(event.visitor_id)


# -- counts -----------------------------------------------------------------------------------------
def test_outcomes_are_counted_per_reason(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(site_ids=["example.com"], honor_dnt=True)
    run(tracker)
    run(tracker)
    run(tracker, site="other.example")
    run(tracker, name="")
    run(tracker, url="")
    tracker.process(raw(), ClientContext(user_agent=GOOGLEBOT))
    tracker.process(raw(), ClientContext(user_agent=CHROME_WINDOWS, dnt="1"))
    assert tracker.counts == Counter(accepted=2, invalid=2, site_not_allowed=1, bot=1, do_not_track=1)


def test_count_adds_outside_reasons(tracker: Tracker) -> None:
    tracker.count("buffer_full")
    tracker.count("buffer_full")
    assert tracker.counts["buffer_full"] == 2


# -- robustness -------------------------------------------------------------------------------------
@pytest.fixture
def odd_trackers(make_tracker: MakeTracker) -> tuple[Tracker, ...]:
    """The default pipeline and one with every option turned the other way."""
    return make_tracker(), make_tracker(gdpr_mode=True, honor_dnt=True, suppress_visitor_id=True,
                                        filter_bots=False, site_ids=["example.com"])


@pytest.mark.slow
@settings(max_examples=400, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw_event=raw_events(), ctx=client_contexts())
def test_process_never_raises(odd_trackers: tuple[Tracker, ...], raw_event: RawEvent,
                              ctx: ClientContext) -> None:
    for tracker in odd_trackers:
        outcome = tracker.process(raw_event, ctx)
        if outcome.accepted:
            event = outcome.event
            assert event is not None and len(event) == len(Event._fields)
            assert event.pathname.startswith("/") and event.timestamp.tzinfo is None
            assert len(event.event_name.encode()) <= 256 and len(event.pathname) <= 2048
            assert event.props is None or len(event.props.encode()) <= 4096
        else:
            assert outcome.reason in {"invalid", "bot", "site_not_allowed", "do_not_track"}
            assert (outcome.error is not None) == (outcome.reason == "invalid")
