"""Page URLs: pathname, hostname and UTM parameters (reference §2.6, v0.2), and text sanitising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from mallard._enrich.urls import MAX_PATH, MAX_UTM, parse_page_url, sanitize, strip_query
from tests.strategies import urls

CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}


@pytest.mark.parametrize(
    ("url", "hostname", "pathname"),
    [
        ("https://example.com/about?ref=1#team", "example.com", "/about"),
        ("https://example.com/", "example.com", "/"),
        ("https://example.com", "example.com", "/"),
        ("http://example.com/about/", "example.com", "/about"),
        ("https://example.com/about//", "example.com", "/about"),
        ("https://Example.COM:8443/Docs/", "example.com", "/Docs"),
        ("https://user:pw@example.com/x", "example.com", "/x"),
        ("https://[2001:db8::1]:8080/x", "2001:db8::1", "/x"),
        ("https://[2001:db8::1/x", None, "/x"),
        ("//cdn.example.com/lib/", "cdn.example.com", "/lib"),
        ("https://example.com/a%20b/%C3%BC", "example.com", "/a%20b/%C3%BC"),
        ("/about/team", None, "/about/team"),
        ("about/team", None, "/about/team"),
        ("/search?q=https://other.example/", None, "/search"),
        ("#section", None, "/"),
        ("https://ex\x00ample.com/a\x01b/\x00", "example.com", "/ab"),
        ("\x00/docs/", None, "/docs"),
        ("/" + "p" * 3000, None, "/" + "p" * (MAX_PATH - 1)),
        ("/" + "p" * (MAX_PATH - 2) + "//x", None, "/" + "p" * (MAX_PATH - 2)),
    ],
    ids=["query-and-fragment", "root-slash", "root-bare", "trailing-slash", "double-trailing-slash",
         "case-and-port", "userinfo", "ipv6", "broken-ipv6", "scheme-relative", "percent-kept", "relative",
         "relative-without-slash", "url-in-query", "fragment-only", "control-characters",
         "control-then-slash", "truncated", "truncated-at-slash"],
)
def test_hostname_and_pathname(url: str, hostname: str | None, pathname: str) -> None:
    page = parse_page_url(url)
    assert (page.hostname, page.pathname) == (hostname, pathname)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=banner&utm_term=ducks",
         ("newsletter", "email", "spring", "banner", "ducks")),
        ("UTM_SOURCE=a&Utm_Medium=b", ("a", "b", None, None, None)),
        ("utm_source=news%20letter&utm_medium=e+mail&utm_campaign=%E2%82%AC5",
         ("news letter", "e mail", "€5", None, None)),
        ("utm_source=100%&utm_medium=%zz&utm_campaign=%ff", ("100%", "%zz", "\ufffd", None, None)),
        ("utm_source=first&utm_source=second", ("second", None, None, None, None)),
        ("utm_source=&utm_medium&utm_campaign=x", (None, None, "x", None, None)),
        ("utm_source=a%00b%0A", ("ab", None, None, None, None)),
        ("ref=utm_source&utm_sources=x", (None, None, None, None, None)),
        ("utm_term=" + "t" * 300, (None, None, None, None, "t" * MAX_UTM)),
    ],
    ids=["all-five", "keys-case-insensitive", "decoded", "bad-escapes-kept", "last-wins", "empty-skipped",
         "control-removed", "not-utm-keys", "truncated"],
)
def test_utm_parameters(query: str, expected: tuple[str | None, ...]) -> None:
    assert parse_page_url(f"https://example.com/landing?{query}").utm == expected


@pytest.mark.parametrize(
    "url",
    ["https://example.com/?utm_source=a#utm_medium=b", "/landing?utm_source=a#x&utm_medium=b",
     "https://example.com/#?utm_source=a"],
    ids=["absolute", "relative", "query-in-fragment"],
)
def test_fragment_never_leaks_into_utm(url: str) -> None:
    utm = parse_page_url(url).utm
    assert utm[1] is None and all(value is None or "#" not in value for value in utm)


def test_relative_url_utm() -> None:
    assert parse_page_url("/landing?utm_source=x").utm == ("x", None, None, None, None)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("plain text", 100, "plain text"), ("a\x00b\x1fc\x7fd\x85e\x9ff", 100, "abcdef"),
     ("tab\there", 100, "tabhere"), ("ünïcödé ✓", 100, "ünïcödé ✓"), ("abcdef", 3, "abc"),
     ("\x00abcdef", 3, "abc"), ("", 5, "")],
    ids=["unchanged", "c0-del-c1", "tab", "unicode-kept", "truncated", "truncated-after-removal", "empty"],
)
def test_sanitize(text: str, limit: int, expected: str) -> None:
    assert sanitize(text, limit) == expected


@pytest.mark.parametrize(
    ("url", "stripped"),
    [("https://google.com/search?q=secret#top", "https://google.com/search"),
     ("https://x.example/a#frag?not-query", "https://x.example/a"), ("https://x.example/", "https://x.example/"),
     ("?only=query", "")],
)
def test_strip_query(url: str, stripped: str) -> None:
    assert strip_query(url) == stripped


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(urls())
def test_parse_page_url_invariants(url: str) -> None:
    page = parse_page_url(url)
    path = page.pathname
    assert path.startswith("/") and len(path) <= MAX_PATH
    assert path == "/" or not path.endswith("/")
    assert not CONTROL & set(path) and "?" not in path and "#" not in path
    if page.hostname is not None:
        assert page.hostname and len(page.hostname) <= 253 and not CONTROL & set(page.hostname)
    for value in page.utm:
        assert value is None or (0 < len(value) <= MAX_UTM and not CONTROL & set(value))


@pytest.mark.parametrize(("url", "path"), [
    ("https://a.example/app/#/settings?tab=2", "/app#/settings?tab=2"),
    ("https://a.example/#/", "/#/"),
    ("https://a.example/docs#", "/docs"),
    ("/app#/x", "/app#/x"),
    ("https://a.example/app?utm_source=news#/x", "/app#/x"),
], ids=["trailing-slash-collapsed", "root", "empty-fragment-dropped", "relative", "query-dropped"])
def test_hash_mode_keeps_the_fragment(url: str, path: str) -> None:
    """In hash mode the path is <path>#<fragment>, as Plausible stores it; without it the fragment goes."""
    page = parse_page_url(url, True)
    assert page.pathname == path
    assert "#" not in parse_page_url(url).pathname
    assert page.utm[0] == ("news" if "utm_source" in url else None)
