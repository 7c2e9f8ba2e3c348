"""Acquisition: ``visit:channel`` (Plausible's channel rules), the source named by a landing URL's tag,
and the entry/exit page hostnames, from real-looking referrer + URL pairs sent through ``track()``.

Each case is one visitor with one pageview on its own path, so ``visit:entry_page`` names the case and
the channel and source of its session are read back from the query API. The v2 body is then checked
against SQL over the lake's Parquet files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mallard
from mallard._enrich.channels import CHANNELS
from mallard._events import COLUMNS
from mallard._http import Api, Request

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = "2024-05-01"
SITE = "shop.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
P = f"https://{SITE}"

# (case name, page URL, referrer, expected channel, expected source)
CASES: list[tuple[str, str, str | None, str, str]] = [
    ("cross-network", f"{P}/c1?utm_source=google&utm_medium=cpc&utm_campaign=Cross-Network+Q2",
     None, "Cross-network", "Google"),
    ("paid-shopping-source", f"{P}/c2?utm_medium=cpc", "https://www.amazon.de/gp/x", "Paid Shopping",
     "Amazon"),
    ("paid-shopping-campaign", f"{P}/c3?utm_source=newsletter&utm_medium=ppc&utm_campaign=summer-shop",
     None, "Paid Shopping", "newsletter"),
    ("gclid", f"{P}/c4?gclid=EAIaIQobChMI", "https://www.google.com/", "Paid Search", "Google"),
    ("msclkid", f"{P}/c5?msclkid=7f3a", "https://www.bing.com/", "Paid Search", "Bing"),
    ("paid-search-medium", f"{P}/c6?utm_source=google&utm_medium=cpc", "https://www.google.co.uk/",
     "Paid Search", "Google"),
    ("paid-search-tag", f"{P}/c7?utm_source=adwords", None, "Paid Search", "Google"),
    ("paid-social", f"{P}/c8?utm_source=fb-ads", "https://l.facebook.com/", "Paid Social", "Facebook"),
    ("paid-social-medium", f"{P}/c9?utm_source=reddit&utm_medium=paid_social", None, "Paid Social",
     "Reddit"),
    ("paid-video", f"{P}/c10?utm_source=yt-ads", None, "Paid Video", "YouTube"),
    ("display", f"{P}/c11?utm_source=partner-network&utm_medium=banner", None, "Display",
     "partner-network"),
    ("paid-other", f"{P}/c12?utm_source=podcastads&utm_medium=paid", None, "Paid Other", "podcastads"),
    ("organic-shopping", f"{P}/c13", "https://www.etsy.com/listing/1", "Organic Shopping", "Etsy"),
    ("organic-social", f"{P}/c14", "https://old.reddit.com/r/python/", "Organic Social", "Reddit"),
    ("organic-social-tag", f"{P}/c15?utm_source=ig", None, "Organic Social", "Instagram"),
    ("organic-social-medium", f"{P}/c16?utm_source=forum&utm_medium=social", None, "Organic Social",
     "forum"),
    ("organic-video", f"{P}/c17", "https://m.youtube.com/watch?v=x", "Organic Video", "YouTube"),
    ("ai-chatgpt", f"{P}/c18?utm_source=chatgpt.com", "https://chatgpt.com/", "AI Assistants",
     "ChatGPT"),
    ("ai-perplexity-ref", f"{P}/c19?ref=perplexity.ai", None, "AI Assistants", "Perplexity"),
    ("ai-claude", f"{P}/c20", "https://claude.ai/chat/1", "AI Assistants", "Claude"),
    ("ai-gemini", f"{P}/c21", "https://gemini.google.com/app", "AI Assistants", "Gemini"),
    ("ai-copilot", f"{P}/c22", "https://copilot.microsoft.com/", "AI Assistants", "Copilot"),
    ("organic-search", f"{P}/c23", "https://duckduckgo.com/", "Organic Search", "DuckDuckGo"),
    ("organic-search-no-gclid-source", f"{P}/c24?gclid=x", "https://www.bing.com/", "Organic Search",
     "Bing"),  # gclid only counts for Google, msclkid only for Bing
    ("email-webmail", f"{P}/c25", "https://mail.google.com/mail/u/0/", "Email", "Gmail"),
    ("email-medium", f"{P}/c26?utm_source=weekly&utm_medium=e-mail", None, "Email", "weekly"),
    ("email-source-tag", f"{P}/c27?utm_source=Newsletter", None, "Email", "Newsletter"),
    ("affiliates", f"{P}/c28?utm_source=partner&utm_medium=affiliate", None, "Affiliates", "partner"),
    ("audio", f"{P}/c29?utm_source=spotify&utm_medium=audio", None, "Audio", "spotify"),
    ("sms", f"{P}/c30?utm_source=sms", None, "SMS", "sms"),
    ("push", f"{P}/c31?utm_source=app&utm_medium=web-push", None, "Mobile Push Notifications", "app"),
    ("push-firebase", f"{P}/c32?utm_source=firebase", None, "Mobile Push Notifications", "firebase"),
    ("referral", f"{P}/c33", "https://news.example.org/story", "Referral", "news.example.org"),
    ("referral-medium", f"{P}/c34?utm_medium=referral", None, "Referral", "(direct)"),
    ("referral-ref", f"{P}/c35?ref=producthunt-digest", None, "Referral", "producthunt-digest"),
    ("direct", f"{P}/c36", None, "Direct", "(direct)"),
    ("self-referral", f"{P}/c37", f"{P}/c1", "Direct", "(direct)"),
    ("self-referral-tag", f"{P}/c38?ref=hn", f"{P}/", "Organic Social", "Hacker News"),
    # a referrer wins over a tag (the tag stays the session's utm_source)
    ("referrer-wins", f"{P}/c39?utm_source=twitter", "https://duckduckgo.com/", "Organic Search",
     "DuckDuckGo"),
]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mallard.Mallard]:
    """A Mallard holding one pageview per case (one visitor each), flushed to the lake."""
    m = mallard.Mallard(data_dir=tmp_path_factory.mktemp("channels") / "data", clock=lambda: NOW)
    for i, (_, url, referrer, _, _) in enumerate(CASES):
        outcome = m.track("pageview", site=SITE, url=url, referrer=referrer, ip=f"198.51.100.{i + 1}",
                          user_agent=UA)
        assert outcome.accepted, outcome
    m.flush()
    yield m
    m.close()


def _by_entry_page(m: mallard.Mallard, dimension: str) -> dict[str, str]:
    rows = m.queries.query(SITE, metrics=["visits"], dimensions=["visit:entry_page", dimension],
                           start_date=DAY, end_date=DAY).rows
    assert all(r["visits"] == 1 for r in rows)
    return {r["visit:entry_page"]: r[dimension] for r in rows}


def test_every_channel_is_covered() -> None:
    assert {c[3] for c in CASES} == set(CHANNELS)


@pytest.mark.parametrize(("case", "url", "referrer", "channel", "source"), CASES,
                         ids=[c[0] for c in CASES])
def test_channel_of_a_tracked_visit(tracked: mallard.Mallard, case: str, url: str,
                                    referrer: str | None, channel: str, source: str) -> None:
    path = "/" + url.split("/", 3)[3].split("?")[0]
    assert _by_entry_page(tracked, "visit:channel")[path] == channel
    assert _by_entry_page(tracked, "visit:source")[path] == source


def test_click_id_keeps_the_parameter_name_only(tracked: mallard.Mallard) -> None:
    """The lake has which click-id parameter the URL had, never its value."""
    rows = tracked.queries.sql("SELECT pathname, click_id FROM events WHERE click_id IS NOT NULL "
                               "ORDER BY pathname", site=SITE).to_pylist()
    assert rows == [{"pathname": "/c24", "click_id": "gclid"}, {"pathname": "/c4", "click_id": "gclid"},
                    {"pathname": "/c5", "click_id": "msclkid"}]
    text = b"".join(p.read_bytes() for p in Path(tracked.settings.data_dir, "events").rglob("*.parquet"))
    assert b"EAIaIQobChMI" not in text and b"7f3a" not in text


def test_a_source_tag_is_redacted_like_utm_values(tmp_path: Path) -> None:
    """A tag that carries personal data is stored as the redaction marker, in the source too."""
    with mallard.Mallard(data_dir=tmp_path / "data", clock=lambda: NOW) as m:
        m.track("pageview", site=SITE, url=f"{P}/?ref=jane.doe@example.com", ip="192.0.2.1",
                user_agent=UA)
        m.flush()
        rows = m.queries.query(SITE, metrics=["visitors"], dimensions=["visit:source"],
                               start_date=DAY, end_date=DAY).rows
    assert rows == [{"visit:source": "[email]", "visitors": 1}]


def test_channel_of_files_written_before_schema_version_3(tmp_path: Path) -> None:
    """Files without ``channel`` and ``click_id`` (schema version 2) get a channel computed from their
    other columns when read."""
    data = tmp_path / "data"
    new = ("click_id", "channel")
    names = [c.name for c in COLUMNS if c.name not in new]
    schema = pa.schema([(c.name, pa.timestamp("us") if c.sql_type == "TIMESTAMP" else
                         pa.decimal128(12, 2) if c.sql_type.startswith("DECIMAL") else pa.string())
                        for c in COLUMNS if c.name not in new])
    base: dict[str, Any] = dict.fromkeys(names)
    rows = [{**base, "site_id": SITE, "visitor_id": f"{i:064x}", "timestamp": datetime(2024, 5, 1, 9, i),
             "event_name": "pageview", "pathname": f"/{i}", **extra}
            for i, extra in enumerate([
                {"referrer_source": "Google"}, {"referrer_source": "Google", "utm_medium": "cpc"},
                {"referrer_source": "(direct)"}, {"referrer_source": "ChatGPT"},
                {"referrer_source": "(direct)", "utm_source": "newsletter"}])]
    part = data / "events" / f"site_id={SITE}" / f"date={DAY}"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), part / "old.parquet")
    with mallard.Mallard(data_dir=data, clock=lambda: NOW) as m:
        got = _by_entry_page(m, "visit:channel")
    assert got == {"/0": "Organic Search", "/1": "Paid Search", "/2": "Direct", "/3": "AI Assistants",
                   "/4": "Email"}


def _v2(m: mallard.Mallard, body: dict[str, Any]) -> dict[str, Any]:
    api = Api.for_mallard(m)
    r = api.handle(Request("POST", "/api/v2/query", "", {"host": "127.0.0.1:8000",
                                                          "content-type": "application/json"},
                           orjson.dumps(body), client="127.0.0.1"))
    assert r.status == 200, r.body
    out: dict[str, Any] = orjson.loads(r.body)
    return out


def _parquet_sql(m: mallard.Mallard, where: str) -> int:
    """Visitors over the lake's Parquet, by hand-written conditions on stored columns."""
    files = str(Path(m.settings.data_dir) / "events" / "*" / "*" / "*.parquet")
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT count(DISTINCT visitor_id) FROM read_parquet('{files}', "
                      f"hive_partitioning=true, union_by_name=true) WHERE {where}").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_v2_body_with_channel_as_dimension_and_filter(tracked: mallard.Mallard) -> None:
    """The v2 query API answers ``visit:channel`` as a dimension and as a filter; the numbers equal
    SQL over the Parquet files written (each case is one single-pageview visitor)."""
    body = _v2(tracked, {"site_id": SITE, "metrics": ["visitors", "visits", "pageviews"],
                         "date_range": [DAY, DAY], "dimensions": ["visit:channel"]})
    got = {r["dimensions"][0]: r["metrics"] for r in body["results"]}
    expected: dict[str, int] = {}
    for case in CASES:
        expected[case[3]] = expected.get(case[3], 0) + 1
    assert got == {name: [n, n, n] for name, n in expected.items()}
    # the same figures from the stored columns the rules read
    assert got["Paid Search"][0] == _parquet_sql(
        tracked, "coalesce(utm_campaign, '') NOT ILIKE '%cross-network%' AND ("
                 "(referrer_source = 'Google' AND click_id = 'gclid') OR (referrer_source = 'Bing' "
                 "AND click_id = 'msclkid') OR (referrer_source IN ('Google', 'Bing') AND "
                 "(utm_medium = 'cpc' OR utm_source = 'adwords')))")
    assert got["AI Assistants"][0] == _parquet_sql(
        tracked, "referrer_source IN ('ChatGPT', 'Perplexity', 'Claude', 'Gemini', 'Copilot')")
    assert got["Direct"][0] == _parquet_sql(
        tracked, "referrer_source = '(direct)' AND utm_source IS NULL AND utm_medium IS NULL")

    body = _v2(tracked, {"site_id": SITE, "metrics": ["visitors", "bounce_rate"],
                         "date_range": [DAY, DAY], "dimensions": ["visit:source"],
                         "filters": [["is", "visit:channel", ["AI Assistants", "Paid Search"]]]})
    got = {r["dimensions"][0]: r["metrics"] for r in body["results"]}
    assert got == {"ChatGPT": [1, 100], "Perplexity": [1, 100], "Claude": [1, 100], "Gemini": [1, 100],
                   "Copilot": [1, 100], "Google": [3, 100], "Bing": [1, 100]}
    body = _v2(tracked, {"site_id": SITE, "metrics": ["visitors"], "date_range": [DAY, DAY],
                         "filters": [["is_not", "visit:channel", ["Direct", "Referral"]]]})
    others = len(CASES) - expected["Direct"] - expected["Referral"]
    assert body["results"] == [{"dimensions": [], "metrics": [others]}]
    assert others == _parquet_sql(
        tracked, "NOT (referrer_source = '(direct)' AND utm_source IS NULL AND utm_medium IS NULL) "
                 "AND referrer_source NOT IN ('news.example.org', 'producthunt-digest') "
                 "AND coalesce(utm_medium, '') <> 'referral'")


# -- entry and exit page hostnames ---------------------------------------------------------------
def test_entry_and_exit_page_hostnames(tmp_path: Path) -> None:
    """A visit that enters on the blog and leaves on the shop: its entry and exit page hostnames, as
    dimensions (session and event metrics) and as filters."""
    clock = [NOW]
    with mallard.Mallard(data_dir=tmp_path / "data", clock=lambda: clock[0]) as m:
        for ip, pages in (("192.0.2.1", ["https://blog.example/a", "https://shop.example/cart"]),
                          ("192.0.2.2", ["https://shop.example/"]),
                          ("192.0.2.3", ["https://blog.example/b", "https://blog.example/c"])):
            for minute, url in enumerate(pages):
                clock[0] = NOW.replace(minute=minute)
                assert m.track("pageview", site=SITE, url=url, ip=ip, user_agent=UA).accepted
        clock[0] = NOW.replace(minute=5)
        m.track("signup", site=SITE, url="https://account.example/join", ip="192.0.2.2", user_agent=UA)
        m.flush()
        q = m.queries

        def table(dim: str, metrics: list[str], filters: Any = None) -> dict[str, list[Any]]:
            rows = q.query(SITE, metrics=metrics, dimensions=[dim], filters=filters, start_date=DAY,
                           end_date=DAY).rows
            return {r[dim]: [r[k] for k in metrics] for r in rows}

        assert table("visit:entry_page_hostname", ["visits", "bounce_rate", "pageviews"]) == {
            "blog.example": [2, 0.0, 4], "shop.example": [1, 1.0, 1]}
        # the custom event on account.example is not a page: the exit page stays shop.example
        assert table("visit:exit_page_hostname", ["visits", "events"]) == {
            "shop.example": [2, 4], "blog.example": [1, 2]}
        assert table("event:hostname", ["pageviews"], [["is", "visit:entry_page_hostname",
                                                       ["blog.example"]]]) == {
            "blog.example": [3], "shop.example": [1]}
        assert table("visit:entry_page", ["visitors"], [["contains", "visit:exit_page_hostname",
                                                        ["shop"]]]) == {"/a": [1], "/": [1]}
