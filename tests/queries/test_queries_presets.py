"""The report presets: main, timeseries, breakdown and export (Mallard Metrics route shapes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from mallard._errors import InvalidQueryError
from mallard._events import COLUMN_NAMES
from mallard._queries import Queries, breakdown_names
from mallard._queries.registry import BREAKDOWNS

from .data import DAY1, DAY2, SITE, event
from .test_registry import EVENT_TABLES, approx

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}


# -- main ----------------------------------------------------------------------------------------
def test_main(queries: Queries) -> None:
    stats = queries.main(SITE, **BOTH_DAYS)
    assert stats.to_dict() == {
        "unique_visitors": 6, "total_pageviews": 11, "total_events": 14,
        "views_per_visitor": approx(11 / 6),
        "total_sessions": 7,
        "bounce_rate": approx(2 / 7),  # a fraction here, not a percentage
        "avg_visit_duration_secs": approx(4500 / 7),
        "pages_per_visit": approx(11 / 7), "views_per_visit": approx(11 / 7),
    }


def test_main_default_period_and_day(queries: Queries) -> None:
    """Default 30d (04-02..05-02) adds /old of 04-30; 'day' is 2024-05-02 alone."""
    stats = queries.main(SITE)
    # /old (visitor a, 04-30 23:59:59.999999) is its own session: a bounce
    assert (stats.unique_visitors, stats.total_pageviews, stats.total_sessions) == (6, 12, 8)
    assert stats.bounce_rate == approx(3 / 8)
    day = queries.main(SITE, period="day")
    # A session belongs to the range it starts in: d1-d3 (05-01 23:50 to 05-02 00:20) is 05-01's,
    # though its last two events are counted among 05-02's events; 05-02 starts e1 and e2+e3.
    assert (day.unique_visitors, day.total_events, day.total_sessions) == (2, 5, 2)
    assert day.avg_visit_duration_secs == approx(0.0)


def test_main_with_filters(queries: Queries) -> None:
    """country==DE keeps a and d: events a1-a3, d1-d3; sessions A1 A2 D."""
    stats = queries.main(SITE, filters="country==DE", **BOTH_DAYS)
    assert (stats.unique_visitors, stats.total_pageviews, stats.total_events) == (3, 6, 6)
    assert (stats.total_sessions, stats.bounce_rate) == (3, approx(1 / 3))
    assert stats.avg_visit_duration_secs == approx(1200.0)  # (1800 + 0 + 1800) / 3


def test_main_of_an_unknown_site_is_all_zeros(queries: Queries) -> None:
    stats = queries.main("nobody.example", **BOTH_DAYS)
    assert stats.to_dict() == {"unique_visitors": 0, "total_pageviews": 0, "total_events": 0,
                               "views_per_visitor": 0.0, "total_sessions": 0, "bounce_rate": 0.0,
                               "avg_visit_duration_secs": 0.0, "pages_per_visit": 0.0,
                               "views_per_visit": 0.0}


# -- timeseries ----------------------------------------------------------------------------------
def _nonzero(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {r["date"]: tuple(v for k, v in r.items() if k != "date") for r in rows if r["visitors"]}


def test_timeseries_is_hourly_for_two_days_and_zero_filled(queries: Queries) -> None:
    table = queries.timeseries(SITE, **BOTH_DAYS)
    assert table.columns == ("date", "visitors", "pageviews")
    assert table.meta == {"interval": "hour", "start_date": DAY1, "end_date": DAY2, "timezone": "UTC"}
    assert len(table.rows) == 48
    assert table.rows[0] == {"date": "2024-05-01 00:00", "visitors": 0, "pageviews": 0}
    assert table.rows[-1]["date"] == "2024-05-02 23:00"
    assert _nonzero(table.rows) == {
        "2024-05-01 10:00": (1, 2),  # a1 a2
        "2024-05-01 11:00": (1, 1),  # a3
        "2024-05-01 12:00": (1, 2),  # b1 b2 b3
        "2024-05-01 13:00": (1, 0),  # c1 c2 (custom events)
        "2024-05-01 23:00": (1, 1),  # d1
        "2024-05-02 00:00": (1, 2),  # d2 d3
        "2024-05-02 09:00": (1, 1),  # e1
        "2024-05-02 10:00": (1, 2),  # e2 e3
    }


def test_timeseries_is_daily_for_longer_ranges(queries: Queries) -> None:
    table = queries.timeseries(SITE, period="7d")  # 04-25 .. 05-02
    assert table.meta["interval"] == "day"
    assert [r["date"] for r in table.rows] == [f"2024-04-{d}" for d in range(25, 31)] + [DAY1, DAY2]
    assert _nonzero(table.rows) == {"2024-04-30": (1, 1), DAY1: (4, 6), DAY2: (2, 5)}


def test_timeseries_of_three_days_with_event_and_session_metrics(queries: Queries) -> None:
    """Three days are daily; visits are bucketed by session start (D, from 05-01 23:50, on 05-01)."""
    table = queries.timeseries(SITE, start_date="2024-04-30", end_date=DAY2, metrics=["visitors", "visits"])
    assert table.meta["interval"] == "day"
    assert table.rows == [{"date": "2024-04-30", "visitors": 1, "visits": 1},
                          {"date": DAY1, "visitors": 4, "visits": 5},
                          {"date": DAY2, "visitors": 2, "visits": 2}]
    empty = queries.timeseries(SITE, start_date="2024-06-01", end_date="2024-06-03",
                               metrics=["visitors", "total_revenue", "visit_duration"])
    assert empty.rows == [{"date": f"2024-06-0{d}", "visitors": 0, "total_revenue": None,
                           "visit_duration": 0.0} for d in (1, 2, 3)]


def test_timeseries_in_a_time_zone(queries: Queries) -> None:
    """Europe/Berlin (UTC+2 in May): local days 05-01 and 05-02 = 04-30 22:00 .. 05-02 22:00 UTC."""
    table = queries.timeseries(SITE, **BOTH_DAYS, timezone="Europe/Berlin")
    assert len(table.rows) == 48 and table.meta["timezone"] == "Europe/Berlin"
    assert _nonzero(table.rows) == {
        "2024-05-01 01:00": (1, 1),  # /old: 04-30 23:59:59.999999 UTC
        "2024-05-01 12:00": (1, 2), "2024-05-01 13:00": (1, 1), "2024-05-01 14:00": (1, 2),
        "2024-05-01 15:00": (1, 0), "2024-05-02 01:00": (1, 1), "2024-05-02 02:00": (1, 2),
        "2024-05-02 11:00": (1, 1), "2024-05-02 12:00": (1, 2),
    }
    daily = queries.timeseries(SITE, start_date="2024-04-30", end_date=DAY2, timezone="America/New_York")
    # New York is UTC−4: d1 (23:50 UTC) is 19:50 on 05-01; d2 d3 (00:10, 00:20 UTC) are 05-01 too
    assert _nonzero(daily.rows) == {"2024-04-30": (1, 1), DAY1: (5, 8), DAY2: (1, 3)}


def test_timeseries_on_a_spring_forward_day(make_queries: Callable[..., Queries]) -> None:
    """Europe/Berlin 2024-03-31 has 23 hours; 01:30 UTC is 03:30 CEST; there is no 02:00."""
    q = make_queries([event("v", "2024-03-31 01:30:00")])
    table = q.timeseries(SITE, start_date="2024-03-31", end_date="2024-03-31", timezone="Europe/Berlin")
    dates = [r["date"] for r in table.rows]
    assert len(dates) == 23 and "2024-03-31 02:00" not in dates
    assert _nonzero(table.rows) == {"2024-03-31 03:00": (1, 1)}


def test_timeseries_with_a_half_hour_offset(make_queries: Callable[..., Queries]) -> None:
    """Asia/Kolkata is UTC+5:30: 2024-05-01 18:45 UTC is 00:15 on 05-02; 'day' alone is hourly."""
    q = make_queries([event("v", "2024-05-01 18:45:00"), event("w", "2024-05-01 18:29:59")])
    table = q.timeseries(SITE, period="day", timezone="Asia/Kolkata")  # today 2024-05-02 in Kolkata
    assert len(table.rows) == 24 and table.meta["interval"] == "hour"
    assert _nonzero(table.rows) == {"2024-05-02 00:00": (1, 1)}  # 18:29:59 UTC is still 05-01 23:59


def test_timeseries_on_a_fall_back_day(make_queries: Callable[..., Queries]) -> None:
    """Hourly buckets are wall-clock hours: on Europe/Berlin's fall-back day 00:30 UTC (02:30 CEST) and
    01:30 UTC (02:30 CET) share the local hour 02:00, so the day has 24 buckets and that one holds both."""
    q = make_queries([event("v", "2024-10-27 00:30:00"), event("w", "2024-10-27 01:30:00")])
    table = q.timeseries(SITE, start_date="2024-10-27", end_date="2024-10-27", timezone="Europe/Berlin")
    assert len(table.rows) == 24
    assert [(r["date"], r["visitors"]) for r in table.rows if r["visitors"]] == [("2024-10-27 02:00", 2)]


def test_timeseries_intervals_and_metrics(queries: Queries) -> None:
    weekly = queries.timeseries(SITE, start_date="2024-04-22", end_date=DAY2, interval="week")
    # Mondays 04-22 (empty) and 04-29 (/old on Tuesday 04-30, then the dataset)
    assert [(r["date"], r["visitors"]) for r in weekly.rows] == [("2024-04-22", 0), ("2024-04-29", 6)]
    monthly = queries.timeseries(SITE, start_date="2024-04-01", end_date="2024-06-30", interval="month",
                                 metrics=["visits", "bounce_rate"])
    assert monthly.rows == [
        {"date": "2024-04-01", "visits": 1, "bounce_rate": 1.0},  # /old alone
        {"date": "2024-05-01", "visits": 7, "bounce_rate": approx(2 / 7)},
        {"date": "2024-06-01", "visits": 0, "bounce_rate": 0.0},
    ]
    daily = queries.timeseries(SITE, **BOTH_DAYS, interval="day", metrics=["visits", "visit_duration"])
    # sessions are bucketed by their start: D (started 05-01 23:50) belongs to 05-01
    assert daily.rows == [{"date": DAY1, "visits": 5, "visit_duration": approx(4500 / 5)},
                          {"date": DAY2, "visits": 2, "visit_duration": 0.0}]
    with pytest.raises(InvalidQueryError, match="interval must be hour, day, week or month"):
        queries.timeseries(SITE, interval="minute")


# -- breakdown -----------------------------------------------------------------------------------
REFERENCE_SLUGS = ["pages", "entry-pages", "exit-pages", "sources", "referrers", "browsers",
                   "browser-versions", "os", "os-versions", "devices", "screen-sizes", "countries", "regions",
                   "cities", "utm-sources", "utm-mediums", "utm-campaigns", "utm-contents", "utm-terms",
                   "events"]


def test_every_reference_slug_is_known() -> None:
    assert set(REFERENCE_SLUGS) <= set(breakdown_names())


def _check_order(rows: list[dict[str, Any]]) -> None:
    """Visitors, then pageviews descending, then value ascending (NULL placement is tested on its own)."""
    keys = [(-r["visitors"], -r["pageviews"], r["value"]) for r in rows]
    assert [k[:2] for k in keys] == sorted(k[:2] for k in keys)
    known = [k for k in keys if k[2] != "(unknown)"]
    assert known == sorted(known)


@pytest.mark.parametrize("slug", REFERENCE_SLUGS)
def test_breakdown_slug(queries: Queries, slug: str) -> None:
    table = queries.breakdown(SITE, slug, **BOTH_DAYS, limit=100)
    name = BREAKDOWNS[slug]
    expected = {value: (v, p) for value, (v, p, _) in EVENT_TABLES[name].items()}
    assert table.columns == ("value", "visitors", "pageviews")
    assert {r["value"]: (r["visitors"], r["pageviews"]) for r in table.rows} == expected
    assert len(table.rows) == len(expected)
    _check_order(table.rows)
    assert table.meta["dimension"] == name and table.meta["total_rows"] == len(expected)


def test_breakdown_pages_in_order_with_limit_and_offset(queries: Queries) -> None:
    """Ordered by visitors, then pageviews (both descending), then value: "/files" (0 pageviews) last."""
    full = queries.breakdown(SITE, "pages", **BOTH_DAYS)
    assert [(r["value"], r["visitors"], r["pageviews"]) for r in full.rows] == [
        ("/", 3, 3), ("/pricing", 3, 3), ("/a", 2, 0), ("/about", 1, 1), ("/checkout", 1, 1),
        ("/docs", 1, 1), ("/x", 1, 1), ("/y", 1, 1), ("/files", 1, 0)]
    top = queries.breakdown(SITE, "pages", **BOTH_DAYS, limit=3)
    assert [r["value"] for r in top.rows] == ["/", "/pricing", "/a"]
    assert top.meta["total_rows"] == 9
    page = queries.breakdown(SITE, "pages", **BOTH_DAYS, limit=2, offset=3)
    assert [r["value"] for r in page.rows] == ["/about", "/checkout"]
    assert queries.breakdown(SITE, "pages", **BOTH_DAYS, limit=5, offset=20).rows == []


def test_breakdown_sources_order(queries: Queries) -> None:
    rows = queries.breakdown(SITE, "sources", **BOTH_DAYS).rows
    assert rows == [{"value": "Google", "visitors": 3, "pageviews": 5},
                    {"value": "(unknown)", "visitors": 2, "pageviews": 4},
                    {"value": "Bing", "visitors": 1, "pageviews": 2},
                    {"value": "DuckDuckGo", "visitors": 1, "pageviews": 0}]


def test_breakdown_unknown_sorts_by_its_value(make_queries: Callable[..., Queries]) -> None:
    """Two browsers with 1 visitor and 1 pageview each: '(unknown)' < 'Chrome' in byte order."""
    q = make_queries([event("v", f"{DAY1} 10:00:00", browser="Chrome"), event("w", f"{DAY1} 10:00:00")])
    rows = q.breakdown(SITE, "browsers", start_date=DAY1, end_date=DAY1).rows
    assert [r["value"] for r in rows] == ["(unknown)", "Chrome"]


def test_query_order_by_and_offset(queries: Queries) -> None:
    rows = queries.query(SITE, metrics=["visitors", "visits"], dimensions=["visit:source"],
                         order_by=[["visit:source", "asc"]], **BOTH_DAYS).rows
    assert [r["visit:source"] for r in rows] == ["(unknown)", "Bing", "DuckDuckGo", "Google"]
    rows = queries.query(SITE, metrics=["visitors", "visits"], dimensions=["visit:source"],
                         order_by=[["visits", "asc"], ["visitors", "desc"]], **BOTH_DAYS).rows
    assert [r["visit:source"] for r in rows] == ["Bing", "DuckDuckGo", "Google", "(unknown)"]
    paged = queries.query(SITE, metrics=["visitors"], dimensions=["event:page"], limit=2, offset=7,
                          **BOTH_DAYS)
    assert [r["event:page"] for r in paged.rows] == ["/x", "/y"] and paged.meta == {"total_rows": 9}


def test_query_offset_without_limit(queries: Queries) -> None:
    rows = queries.query(SITE, metrics=["visitors"], dimensions=["event:page"], offset=7, **BOTH_DAYS).rows
    assert [r["event:page"] for r in rows] == ["/x", "/y"]


def test_breakdown_other_metrics_names_and_filters(queries: Queries) -> None:
    visits = queries.breakdown(SITE, "sources", **BOTH_DAYS, metrics=["visits", "bounce_rate"])
    assert visits.columns == ("value", "visits", "bounce_rate")
    assert visits.rows[0] == {"value": "(unknown)", "visits": 3, "bounce_rate": approx(2 / 3)}
    plan = queries.breakdown(SITE, "event:props:plan", **BOTH_DAYS, metrics=["visitors", "events"])
    assert plan.rows == [{"value": "(unknown)", "visitors": 5, "events": 11},
                         {"value": "free", "visitors": 1, "events": 2},
                         {"value": "pro", "visitors": 1, "events": 1}]
    # browsers of the sessions that entered on "/": A1 (Firefox), D (Firefox), E1 (Chrome)
    entered = queries.breakdown(SITE, "browsers", **BOTH_DAYS, filters="entry_page==/")
    assert entered.rows == [{"value": "Firefox", "visitors": 3, "pageviews": 5},
                            {"value": "Chrome", "visitors": 1, "pageviews": 1}]


def test_breakdown_unknown_slug_lists_valid_names(queries: Queries) -> None:
    with pytest.raises(InvalidQueryError) as info:
        queries.breakdown(SITE, "pagez", **BOTH_DAYS)
    assert info.value.code == "invalid_dimension"
    for slug in REFERENCE_SLUGS:
        assert slug in info.value.message


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_breakdown_limit_bounds(queries: Queries, limit: int) -> None:
    with pytest.raises(InvalidQueryError, match="limit must be between 1 and 10000"):
        queries.breakdown(SITE, "pages", limit=limit)


# -- export --------------------------------------------------------------------------------------
def test_export_daily(queries: Queries) -> None:
    table = queries.export(SITE, start_date=DAY1, end_date="2024-05-03")
    assert table.columns == ("date", "visitors", "pageviews", "top_page", "top_source")
    day1, day2, day3 = table.rows
    # 05-01 pages: "/" {a d1}, "/a" {b c}, "/pricing" {a b} tie at 2 → alphabetical "/";
    # sources: Google {a d1} = 2 beats Bing, DuckDuckGo, (unknown) with 1
    assert day1 == {"date": DAY1, "visitors": 4, "pageviews": 6, "top_page": "/", "top_source": "Google"}
    # 05-02 pages: "/", "/about", "/pricing", "/x", "/y" all 1 visitor → "/"
    assert (day2["date"], day2["visitors"], day2["pageviews"], day2["top_page"]) == (DAY2, 2, 5, "/")
    assert day3 == {"date": "2024-05-03", "visitors": 0, "pageviews": 0, "top_page": "(none)",
                    "top_source": "(direct)"}


def test_export_daily_uses_each_days_own_top(make_queries: Callable[..., Queries]) -> None:
    q = make_queries([
        event("v", f"{DAY1} 10:00:00", path="/b", referrer_source="Zeta"),
        event("w", f"{DAY1} 11:00:00", path="/a", referrer_source="Alpha"),  # tie → "/a", "Alpha"
        event("v", f"{DAY2} 10:00:00", path="/c", referrer_source="Zeta"),
        event("w", f"{DAY2} 10:00:00", path="/c", referrer_source="Zeta"),
        event("x", f"{DAY2} 11:00:00", path="/a", referrer_source="Alpha"),
    ])
    rows = q.export(SITE, start_date=DAY1, end_date=DAY2).rows
    assert [(r["top_page"], r["top_source"]) for r in rows] == [("/a", "Alpha"), ("/c", "Zeta")]


def test_export_daily_with_filters(queries: Queries) -> None:
    """country==FR is visitor c only (custom events on 05-01)."""
    rows = queries.export(SITE, **BOTH_DAYS, filters="country==FR").rows
    assert rows == [
        {"date": DAY1, "visitors": 1, "pageviews": 0, "top_page": "/a", "top_source": "DuckDuckGo"},
        {"date": DAY2, "visitors": 0, "pageviews": 0, "top_page": "(none)", "top_source": "(direct)"},
    ]


def test_export_raw(queries: Queries) -> None:
    table = queries.export(SITE, kind="raw", start_date=DAY1, end_date=DAY1)
    assert "site_id" not in table.columns and "visitor_id" not in table.columns
    assert "visitor_id_prev" not in table.columns
    assert "user_id" not in table.columns  # a stable pseudonym identifies more than visitor_id
    assert set(table.columns) == set(COLUMN_NAMES) - {"site_id", "visitor_id", "visitor_id_prev", "user_id",
                                                      "scroll_depth", "engagement_ms"}
    assert all(set(row) == set(table.columns) for row in table.rows)
    # ordered by timestamp (then pathname): b1 "/pricing" and b2 "/a" tie at 12:00 → "/a" first
    assert [r["pathname"] for r in table.rows] == ["/", "/pricing", "/docs", "/a", "/pricing", "/checkout",
                                                  "/files", "/a", "/"]
    first = table.rows[0]
    assert first["timestamp"] == datetime(2024, 5, 1, 10) and first["referrer_source"] == "Google"
    assert first["utm_campaign"] == "spring" and first["browser"] == "Firefox"
    limited = queries.export(SITE, kind="raw", start_date=DAY1, end_date=DAY1, limit=2)
    assert [r["pathname"] for r in limited.rows] == ["/", "/pricing"]
    signups = queries.export(SITE, kind="raw", **BOTH_DAYS, filters=[["is", "event:name", ["signup"]]])
    assert [(r["pathname"], str(r["revenue_amount"])) for r in signups.rows] == [("/a", "49.90"),
                                                                                ("/a", "10.00")]


@pytest.mark.parametrize("limit", [0, -5, 1_000_001, True, 2.0])
def test_export_raw_limit_bounds(queries: Queries, limit: Any) -> None:
    with pytest.raises(InvalidQueryError, match="limit must be between 1 and 1000000"):
        queries.export(SITE, kind="raw", limit=limit)


def test_export_refusals(queries: Queries) -> None:
    with pytest.raises(InvalidQueryError, match="Invalid kind: 'weekly'"):
        queries.export(SITE, kind="weekly")
    with pytest.raises(InvalidQueryError, match="Raw export cannot filter on visit:entry_page"):
        queries.export(SITE, kind="raw", filters="entry_page==/")
