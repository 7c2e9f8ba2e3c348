"""Hypothesis strategies for ingestion input: texts, URLs, IPs, User-Agents, raw payloads, RawEvent.

They aim at the edges real traffic and careless host code produce: control characters, non-ASCII and
astral text (never lone surrogates, which neither JSON nor HTTP headers can carry), huge strings, odd
numbers (NaN, infinities, huge integers, negative widths), and timestamps at the ends of the calendar.
"""

from __future__ import annotations

import json
import operator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from mallard._payload import RawEvent
from mallard._tracker import ClientContext

#: A few User-Agents of real browsers and bots, for strategies that mix them with noise.
SAMPLE_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
    "",
)

_CHARS = st.characters(codec="utf-8")  # every code point except surrogates
_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x9F).filter(lambda c: not c.isprintable())


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode text without lone surrogates, often with control characters mixed in."""
    return st.one_of(
        st.text(_CHARS, max_size=max_size),
        st.text(st.one_of(_CHARS, _CONTROL), max_size=max_size),
    )


def huge_texts() -> st.SearchStrategy[str]:
    """One character repeated up to 10,000 times (past every length limit, in bytes and characters)."""
    return st.builds(
        operator.mul, st.sampled_from(["a", "é", "€", "😀", "\x00", "/", "%", ".", "?utm_source=x&"]),
        st.integers(0, 10_000),
    )


def odd_texts() -> st.SearchStrategy[str]:
    return st.one_of(texts(), huge_texts())


_HOSTS = st.one_of(
    st.sampled_from(["example.com", "www.example.com", "EXAMPLE.com", "blog.example.com", "[::1]",
                     "127.0.0.1:8080", "user:pw@example.com", "xn--bcher-kva.example", ""]),
    st.text(_CHARS, max_size=20),
)
_SEGMENTS = st.lists(st.one_of(st.sampled_from(["about", "a%20b", "", "ü", ".."]), texts(8)), max_size=4)
_QUERIES = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["utm_source", "UTM_Medium", "utm_campaign", "utm_content",
                                   "utm_term", "ref", ""]), texts(8)),
        st.one_of(st.sampled_from(["x", "a+b", "%zz", "%E2%82%AC", "%ff", ""]), texts(8)),
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))


def urls() -> st.SearchStrategy[str]:
    """Absolute, scheme-relative and relative URLs with odd parts, or any text at all."""
    built = st.builds(
        lambda scheme, host, segments, query, fragment: (
            f"{scheme}{host}/{'/'.join(segments)}" + (f"?{query}" if query else "")
            + (f"#{fragment}" if fragment else "")
        ),
        st.sampled_from(["https://", "http://", "//", "", "/", "android-app://", "ftp://"]),
        _HOSTS, _SEGMENTS, _QUERIES, st.one_of(st.none(), texts(8)),
    )
    return st.one_of(built, odd_texts())


def _ipv4_forms(addr: Any) -> st.SearchStrategy[str]:
    text = str(addr)
    return st.sampled_from([text, f"::ffff:{text}", f"::FFFF:{text}", f" {text} "])


def _ipv6_forms(addr: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([str(addr), addr.exploded, addr.exploded.upper(), str(addr).upper()])


def ips() -> st.SearchStrategy[str]:
    """Valid IPv4/IPv6 addresses in their various spellings (mapped, exploded, upper case)."""
    return st.one_of(
        st.ip_addresses(v=4).flatmap(_ipv4_forms),
        st.ip_addresses(v=6).flatmap(_ipv6_forms),
    )


def client_ips() -> st.SearchStrategy[str | None]:
    """What a caller may pass as the client IP: addresses, None, or garbage."""
    return st.one_of(ips(), st.none(), st.sampled_from(["unknown", "", "1.2.3.4:80", "[::1]",
                                                        "fe80::1%eth0", "1.2.3.4\x00"]), texts(20))


def user_agents() -> st.SearchStrategy[str]:
    """Real User-Agents, real ones with noise appended, and arbitrary text."""
    return st.one_of(
        st.sampled_from(SAMPLE_USER_AGENTS),
        st.builds(operator.add, st.sampled_from(SAMPLE_USER_AGENTS), texts(20)),
        odd_texts(),
    )


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Any JSON value (numbers include huge integers and floats of every size)."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
        texts(12),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts(6), inner, max_size=3)),
        max_leaves=max_leaves,
    )


_SHORT_KEYS = ("d", "n", "u", "r", "w", "p", "ra", "rc")
_LONG_KEYS = ("domain", "name", "url", "referrer", "screen_width", "props", "meta", "m", "revenue", "$")


def raw_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """Event objects in either key set: mostly well-formed, any field possibly of the wrong type."""
    field_value = st.one_of(texts(20), json_values(4))
    well_formed = st.fixed_dictionaries(
        {"d": st.sampled_from(["example.com", "a.com,b.com", "", "bad site"]),
         "n": st.sampled_from(["pageview", "Signup", ""]), "u": urls()},
        optional={"r": st.one_of(st.none(), urls()), "w": st.one_of(st.integers(), st.floats()),
                  "p": st.one_of(texts(), json_values(4)), "ra": json_values(1), "rc": field_value,
                  "$": st.one_of(field_value, st.fixed_dictionaries({"amount": field_value,
                                                                     "currency": field_value}))},
    )
    anything = st.dictionaries(st.one_of(st.sampled_from(_SHORT_KEYS + _LONG_KEYS), texts(4)),
                               field_value, max_size=8)
    return st.one_of(well_formed, anything)


def request_bodies() -> st.SearchStrategy[bytes]:
    """Request bodies: JSON of payloads, of batches, of anything (NaN included), or raw bytes."""
    def encode(value: Any) -> bytes:
        return json.dumps(value, allow_nan=True).encode()

    return st.one_of(
        raw_payloads().map(encode),
        st.lists(raw_payloads(), max_size=3).map(encode),
        st.one_of(json_values(), st.floats()).map(encode),
        st.binary(max_size=200),
        st.text(_CHARS, max_size=200).map(lambda s: s.encode()),
    )


_ODD_NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=10**30), st.floats(), st.decimals(),
    st.sampled_from([Decimal("sNaN"), Decimal("1e999999"), Decimal("-0.005"), 9999999999.99,
                     "9999999999.995", "1e-900", "12,50", True]),
)
_TIMEZONES = st.one_of(
    st.none(), st.timezones(),
    st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
    .map(timezone),
)


def _calendar_ends() -> st.SearchStrategy[datetime]:
    """The first and last representable instants, in any time zone (conversions may overflow)."""
    return st.builds(lambda moment, tz: moment.replace(tzinfo=tz),
                     st.sampled_from([datetime.min, datetime.max]), _TIMEZONES)


def raw_events() -> st.SearchStrategy[RawEvent]:
    """Any RawEvent a caller could build: every field at its edges (types as annotated)."""
    return st.builds(
        RawEvent,
        site=st.one_of(st.sampled_from(["example.com", "localhost:8080", "a" * 247, "a" * 248, "a:" * 83]),
                       odd_texts()),
        name=st.one_of(st.just("pageview"), odd_texts()),
        url=urls(),
        referrer=st.one_of(st.none(), urls()),
        screen_width=st.one_of(st.none(), st.integers(), st.integers(-1, 5000)),
        props=st.one_of(st.none(), odd_texts(), json_values().map(json.dumps),
                        st.dictionaries(texts(8), json_values(), max_size=4),
                        st.dictionaries(texts(8), _ODD_NUMBERS, max_size=2)),
        revenue=st.one_of(st.none(), _ODD_NUMBERS, texts(12)),
        currency=st.one_of(st.none(), st.sampled_from(["usd", "EUR", "DOLLARS", "€€€", ""]), texts(5),
                           st.integers()),
        user_id=st.one_of(st.none(), odd_texts()),
        timestamp=st.one_of(st.none(), st.datetimes(timezones=_TIMEZONES), _calendar_ends()),
    )


def client_contexts() -> st.SearchStrategy[ClientContext]:
    """Any ClientContext: odd IPs and User-Agents, any header values."""
    header = st.one_of(st.none(), st.sampled_from(["1", "0", "?1", "?0", " 1"]), texts(6))
    return st.builds(ClientContext, ip=client_ips(), user_agent=st.one_of(st.none(), user_agents()),
                     dnt=header, gpc=header, ch_mobile=header)
