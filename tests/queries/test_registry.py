"""Every metric and every dimension of the registry, computed on the hand-made dataset of ``data.py``.

The expected numbers are worked out by hand from the session table in ``data.py``'s docstring:

    session  pageviews  duration  entry     exit       source      visitor ids
    A1       2          1800      /         /pricing   Google      a
    A2       1          0         /docs     /docs      (none)      a
    B        2          300       /pricing  /checkout  Bing        b
    C        0          600       (none)    (none)     DuckDuckGo  c
    D        3          1800      /         /pricing   Google      d1 d2
    E1       1          0         /         /          (none)      e
    E2       2          0         /x        /y         (none)      e
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from mallard._queries import Queries
from mallard._queries.registry import BREAKDOWNS, DIMENSIONS, METRICS, dimension, metric
from mallard._queries.revenue import Revenue

from .data import DAY1, DAY2, SITE, event

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}
EVENT_METRICS = ["visitors", "pageviews", "events"]
SESSION_METRICS = ["visits", "bounce_rate", "visit_duration", "views_per_visit"]
#: The metrics of this dataset (it has no engagement reports: scroll_depth and time_on_page, which need
#: an event:page, are checked in tests/test_engagement.py; percentage, which needs a dimension, in
#: tests/queries/test_goals.py).
ALL = [m for m in METRICS if METRICS[m].relation != "engagement" and m != "percentage"]


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


# -- metrics -------------------------------------------------------------------------------------
TOTALS: dict[str, dict[str, Any]] = {
    # all 14 events of both days
    "both": {
        "visitors": 6,  # a b c d1 d2 e
        "pageviews": 11,  # a:3 + b:2 + c:0 + d:3 + e:3
        "events": 14,  # 11 pageviews + signup, download, signup
        "views_per_visitor": approx(11 / 6),
        "total_revenue": Revenue(Decimal("59.90"), "EUR"),  # 49.90 + 10.00
        "average_revenue": Revenue(Decimal("29.95"), "EUR"),  # of the 2 events with revenue
        "conversion_rate": 1.0,  # no goal filter: every visitor (a fraction)
        "group_conversion_rate": 1.0,  # no dimensions: as conversion_rate
        "visits": 7,  # A1 A2 B C D E1 E2
        "bounce_rate": approx(2 / 7),  # A2 and E1 have exactly one pageview
        "visit_duration": approx(4500 / 7),  # 1800 + 0 + 300 + 600 + 1800 + 0 + 0
        "views_per_visit": approx(11 / 7),
    },
    # 2024-05-01 only: events a1-a3, b1-b3, c1-c2, d1; the sessions starting that day, each whole: D
    # (d1 d2 d3) starts at 05-01 23:50, so it is 05-01's with the events of 05-02 it goes on with
    "day1": {
        "visitors": 4,  # a b c d1
        "pageviews": 6,  # a:3 + b:2 + d1
        "events": 9,
        "views_per_visitor": approx(6 / 4),
        "total_revenue": Revenue(Decimal("59.90"), "EUR"),
        "average_revenue": Revenue(Decimal("29.95"), "EUR"),
        "conversion_rate": 1.0,
        "group_conversion_rate": 1.0,  # no dimensions: as conversion_rate
        "visits": 5,  # A1 A2 B C D
        "bounce_rate": approx(1 / 5),  # A2
        "visit_duration": approx(4500 / 5),  # 1800 + 0 + 300 + 600 + 1800
        "views_per_visit": approx(8 / 5),  # 2 + 1 + 2 + 0 + 3
    },
    # 2024-05-02 only: events d2 d3 e1-e3; sessions E1 and E2 (D started the day before)
    "day2": {
        "visitors": 2,  # d2 e
        "pageviews": 5,
        "events": 5,
        "views_per_visitor": approx(5 / 2),
        "total_revenue": None,  # no revenue that day: SUM of nothing
        "average_revenue": None,
        "conversion_rate": 1.0,
        "group_conversion_rate": 1.0,  # no dimensions: as conversion_rate
        "visits": 2,  # E1, E2
        "bounce_rate": approx(1 / 2),  # E1
        "visit_duration": 0.0,  # 0, 0
        "views_per_visit": approx(3 / 2),
    },
}
RANGES: dict[str, dict[str, Any]] = {"both": BOTH_DAYS, "day1": {"start_date": DAY1, "end_date": DAY1},
          "day2": {"start_date": DAY2, "end_date": DAY2}}


def test_totals_cover_every_metric() -> None:
    for expected in TOTALS.values():
        assert set(expected) == set(ALL)


@pytest.mark.parametrize("scope", list(TOTALS))
@pytest.mark.parametrize("name", ALL)
def test_metric(queries: Queries, name: str, scope: str) -> None:
    """Each metric alone, over both days and over each day."""
    rows = queries.query(SITE, metrics=[name], **RANGES[scope]).rows
    assert rows == [{name: TOTALS[scope][name]}]


def test_all_metrics_together(queries: Queries) -> None:
    """Event and session metrics in one query give the same numbers as one by one."""
    assert queries.query(SITE, metrics=ALL, **BOTH_DAYS).rows == [TOTALS["both"]]


def test_empty_range(queries: Queries) -> None:
    """No events in scope: counts are 0, rates 0.0, revenue None."""
    row = queries.query(SITE, metrics=ALL, start_date="2024-06-01", end_date="2024-06-01").rows[0]
    assert row == {"visitors": 0, "pageviews": 0, "events": 0, "views_per_visitor": 0, "total_revenue": None,
                   "average_revenue": None,
                   "conversion_rate": 0.0, "visits": 0, "bounce_rate": 0.0, "visit_duration": 0.0,
                   "group_conversion_rate": 0.0,  # no dimensions: as conversion_rate
                   "views_per_visit": 0.0}


def test_other_sites_and_days_are_never_counted(queries: Queries) -> None:
    """noise(): other.test on 05-01 and example.com on 04-30 23:59:59.999999."""
    assert queries.query("other.test", metrics=["visitors"], **BOTH_DAYS).rows == [{"visitors": 1}]
    rows = queries.query(SITE, metrics=["events"], start_date="2024-04-30", end_date=DAY1).rows
    assert rows == [{"events": 10}]  # 9 on 05-01 + /old


# -- dimensions ----------------------------------------------------------------------------------
# value → (visitors, pageviews, events) over both days; visit attribution comes from the session.
# Location names, as Plausible shows them (an unknown place is named "").
NAMES = [("country_name", ("Germany", "United States", "France")),
         ("region_name", ("Berlin", "California", "")), ("city_name", ("Berlin", "San Francisco", ""))]
FIREFOX_CHROME_SAFARI = ((3, 6, 6), (2, 5, 6), (1, 0, 2))  # a d1 d2 | b e | c
EVENT_TABLES: dict[str, dict[str, tuple[int, int, int]]] = {
    "event:page": {
        "/": (3, 3, 3),  # a1 d1 e1
        "/pricing": (3, 3, 3),  # a2 b1 d3 (visitor ids a b d2)
        "/a": (2, 0, 2),  # b2 c2 (custom events)
        "/about": (1, 1, 1), "/checkout": (1, 1, 1), "/docs": (1, 1, 1), "/files": (1, 0, 1),
        "/x": (1, 1, 1), "/y": (1, 1, 1),
    },
    "event:hostname": {"example.com": (6, 11, 14)},
    "event:name": {"pageview": (5, 11, 11), "signup": (2, 0, 2), "download": (1, 0, 1)},
    "event:props:plan": {"pro": (1, 0, 1), "free": (1, 0, 2), "(unknown)": (5, 11, 11)},
    "visit:entry_page": {
        "/": (4, 6, 6),  # A1 (a: 2 pv) + D (d1 d2: 3 pv) + E1 (e: 1 pv)
        "/docs": (1, 1, 1), "/pricing": (1, 2, 3), "/x": (1, 2, 2),
        "(unknown)": (1, 0, 2),  # C has no pageview
    },
    "visit:exit_page": {
        "/pricing": (3, 5, 5),  # A1 + D
        "/docs": (1, 1, 1), "/checkout": (1, 2, 3), "/": (1, 1, 1), "/y": (1, 2, 2), "(unknown)": (1, 0, 2),
    },
    # the session's first event: a2's Twitter and b2's AAA never count (b1 wins the 12:00 tie)
    "visit:source": {"Google": (3, 5, 5), "(unknown)": (2, 4, 4), "Bing": (1, 2, 3),
                     "DuckDuckGo": (1, 0, 2)},
    "visit:referrer": {"https://www.google.com/": (3, 5, 5), "(unknown)": (2, 4, 4),
                       "https://www.bing.com/": (1, 2, 3), "https://duckduckgo.com/": (1, 0, 2)},
    **{f"visit:utm_{key}": {value: (1, 2, 2), "(unknown)": (6, 9, 12)}  # only session A1 is tagged
       for key, value in [("source", "newsletter"), ("medium", "email"), ("campaign", "spring"),
                          ("content", "banner"), ("term", "ducks")]},
    **{f"visit:{key}": dict(zip(values, FIREFOX_CHROME_SAFARI, strict=True)) for key, values in [
        ("browser", ("Firefox", "Chrome", "Safari")), ("browser_version", ("125.0", "124.0", "17.4")),
        ("os", ("Linux", "Windows", "iOS")), ("screen", ("1920", "1280", "390")),
        ("country", ("DE", "US", "FR")), ("region", ("Berlin", "California", "(unknown)")),
        ("city", ("Berlin", "San Francisco", "(unknown)")), *NAMES]},
    "visit:os_version": {"6.1": (3, 6, 6), "10": (1, 2, 3), "11": (1, 3, 3), "17.4": (1, 0, 2)},
    "visit:device": {"desktop": (5, 11, 12), "mobile": (1, 0, 2)},
    # A1 B C D start with a search engine (A1's utm_medium=email comes after search); A2 E1 E2 direct
    "visit:channel": {"Organic Search": (5, 7, 10), "Direct": (2, 4, 4)},
    # every page is on example.com; C has no pageview
    **{f"visit:{end}_page_hostname": {"example.com": (5, 11, 12), "(unknown)": (1, 0, 2)}
       for end in ("entry", "exit")},
}

# value → (visits, bounce_rate, visit_duration, views_per_visit) for the visit dimensions.
FIREFOX_S = (3, 1 / 3, 3600 / 3, 6 / 3)  # A1 A2 D: bounce A2; 1800 + 0 + 1800; 2 + 1 + 3
CHROME_S = (3, 1 / 3, 300 / 3, 5 / 3)  # B E1 E2: bounce E1; 300 + 0 + 0; 2 + 1 + 2
SAFARI_S = (1, 0.0, 600.0, 0.0)  # C
UNTAGGED_S = (6, 2 / 6, 2700 / 6, 9 / 6)  # A2 B C D E1 E2: bounces A2 E1; 0+300+600+1800+0+0
SESSION_TABLES: dict[str, dict[str, tuple[float, ...]]] = {
    "visit:entry_page": {
        "/": (3, 1 / 3, 3600 / 3, 6 / 3),  # A1 D E1: bounce E1; 1800 + 1800 + 0; 2 + 3 + 1
        "/docs": (1, 1.0, 0.0, 1.0), "/pricing": (1, 0.0, 300.0, 2.0), "/x": (1, 0.0, 0.0, 2.0),
        "(unknown)": SAFARI_S,
    },
    "visit:exit_page": {
        "/pricing": (2, 0.0, 1800.0, 2.5),  # A1 D
        "/docs": (1, 1.0, 0.0, 1.0), "/checkout": (1, 0.0, 300.0, 2.0), "/": (1, 1.0, 0.0, 1.0),
        "/y": (1, 0.0, 0.0, 2.0), "(unknown)": SAFARI_S,
    },
    "visit:source": {"Google": (2, 0.0, 1800.0, 2.5), "(unknown)": (3, 2 / 3, 0.0, 4 / 3),
                     "Bing": (1, 0.0, 300.0, 2.0), "DuckDuckGo": SAFARI_S},
    "visit:referrer": {"https://www.google.com/": (2, 0.0, 1800.0, 2.5),
                       "(unknown)": (3, 2 / 3, 0.0, 4 / 3), "https://www.bing.com/": (1, 0.0, 300.0, 2.0),
                       "https://duckduckgo.com/": SAFARI_S},
    **{f"visit:utm_{key}": {value: (1, 0.0, 1800.0, 2.0), "(unknown)": UNTAGGED_S}
       for key, value in [("source", "newsletter"), ("medium", "email"), ("campaign", "spring"),
                          ("content", "banner"), ("term", "ducks")]},
    **{f"visit:{key}": dict(zip(values, (FIREFOX_S, CHROME_S, SAFARI_S), strict=True))
       for key, values in [
           ("browser", ("Firefox", "Chrome", "Safari")), ("browser_version", ("125.0", "124.0", "17.4")),
           ("os", ("Linux", "Windows", "iOS")), ("screen", ("1920", "1280", "390")),
           ("country", ("DE", "US", "FR")), ("region", ("Berlin", "California", "(unknown)")),
           ("city", ("Berlin", "San Francisco", "(unknown)")), *NAMES]},
    "visit:os_version": {"6.1": FIREFOX_S, "10": (1, 0.0, 300.0, 2.0), "11": (2, 0.5, 0.0, 1.5),
                         "17.4": SAFARI_S},
    "visit:device": {"desktop": (6, 2 / 6, 3900 / 6, 11 / 6), "mobile": SAFARI_S},
    "visit:channel": {"Organic Search": (4, 0.0, 4500 / 4, 7 / 4),  # A1 B C D
                      "Direct": (3, 2 / 3, 0.0, 4 / 3)},  # A2 E1 E2
    **{f"visit:{end}_page_hostname": {"example.com": (6, 2 / 6, 3900 / 6, 11 / 6),
                                      "(unknown)": SAFARI_S} for end in ("entry", "exit")},
}


def test_tables_cover_every_dimension() -> None:
    assert set(EVENT_TABLES) == {*DIMENSIONS, "event:props:plan"} - {"event:goal"}  # test_goals.py
    assert set(SESSION_TABLES) == {name for name, d in DIMENSIONS.items() if d.level == "visit"}


def _table(rows: list[dict[str, Any]], dim: str, metrics: list[str]) -> dict[str, tuple[Any, ...]]:
    table = {row[dim]: tuple(row[m] for m in metrics) for row in rows}
    assert len(table) == len(rows), "a dimension value appears twice"
    return table


@pytest.mark.parametrize("dim", list(EVENT_TABLES))
def test_dimension_with_event_metrics(queries: Queries, dim: str) -> None:
    rows = queries.query(SITE, metrics=EVENT_METRICS, dimensions=[dim], **BOTH_DAYS).rows
    assert _table(rows, dim, EVENT_METRICS) == EVENT_TABLES[dim]


@pytest.mark.parametrize("dim", list(SESSION_TABLES))
def test_dimension_with_session_metrics(queries: Queries, dim: str) -> None:
    rows = queries.query(SITE, metrics=SESSION_METRICS, dimensions=[dim], **BOTH_DAYS).rows
    expected = {value: tuple(approx(x) for x in numbers) for value, numbers in SESSION_TABLES[dim].items()}
    assert _table(rows, dim, SESSION_METRICS) == expected


@pytest.mark.parametrize("dim", list(SESSION_TABLES))
def test_dimension_with_event_and_session_metrics(queries: Queries, dim: str) -> None:
    """Both sides of the plan joined on the dimension value (NULL joins NULL)."""
    metrics = ["visitors", "visits"]
    rows = queries.query(SITE, metrics=metrics, dimensions=[dim], **BOTH_DAYS).rows
    expected = {value: (EVENT_TABLES[dim][value][0], SESSION_TABLES[dim][value][0])
                for value in EVENT_TABLES[dim]}
    assert _table(rows, dim, metrics) == expected


def test_session_metrics_refuse_event_dimensions(queries: Queries) -> None:
    from mallard._errors import InvalidQueryError

    with pytest.raises(InvalidQueryError, match="cannot be broken down by event:name") as info:
        queries.query(SITE, metrics=["bounce_rate"], dimensions=["event:name"], **BOTH_DAYS)
    assert info.value.code == "invalid_dimension"


def test_revenue_by_event_name_and_plan(queries: Queries) -> None:
    """Revenue sums per group; groups without revenue rows are None."""
    rows = queries.query(SITE, metrics=["total_revenue"], dimensions=["event:props:plan"], **BOTH_DAYS).rows
    assert _table(rows, "event:props:plan", ["total_revenue"]) == {
        "pro": (Revenue(Decimal("49.90"), "EUR"),), "free": (Revenue(Decimal("10.00"), "EUR"),),
        "(unknown)": (None,)}


def test_two_dimensions(queries: Queries) -> None:
    """visit:source × event:name: event rows grouped by both (session source, own name)."""
    rows = queries.query(SITE, metrics=["visitors", "events"], dimensions=["visit:source", "event:name"],
                         **BOTH_DAYS).rows
    table = {(r["visit:source"], r["event:name"]): (r["visitors"], r["events"]) for r in rows}
    assert table == {
        ("Google", "pageview"): (3, 5), ("(unknown)", "pageview"): (2, 4), ("Bing", "pageview"): (1, 2),
        ("Bing", "signup"): (1, 1), ("DuckDuckGo", "download"): (1, 1), ("DuckDuckGo", "signup"): (1, 1),
    }


def test_registry_lookups() -> None:
    """Slugs, their singular aliases and underscores all name the same dimension."""
    for slug, name in BREAKDOWNS.items():
        assert dimension(slug).name == name
        assert dimension(slug.replace("-", "_")).name == name
    for alias, name in [("page", "event:page"), ("browser", "visit:browser"), ("source", "visit:source"),
                        ("country", "visit:country"), ("utm_campaign", "visit:utm_campaign"),
                        ("entry-page", "visit:entry_page"), ("screen-size", "visit:screen")]:
        assert dimension(alias).name == name
    prop = dimension("event:props:plan")
    assert (prop.level, prop.prop_key, prop.column) == ("event", "plan", None)
    for name in METRICS:
        assert metric(name).name == name


# -- sessions ------------------------------------------------------------------------------------
def _visits(q: Queries, **kwargs: Any) -> dict[str, Any]:
    row = q.query(SITE, metrics=["visitors", *SESSION_METRICS], start_date="2024-05-01",
                  end_date="2024-05-02", **kwargs).rows[0]
    return {k: row[k] for k in ["visitors", "visits", "bounce_rate", "visit_duration"]}


def test_gap_of_exactly_the_window_stays_and_one_microsecond_more_splits(
        make_queries: Callable[..., Queries]) -> None:
    q = make_queries([
        event("v", "2024-05-01 10:00:00"),
        event("v", "2024-05-01 10:30:00"),  # + 30:00 → same session
        event("v", "2024-05-01 11:00:00.000001"),  # + 30:00.000001 → new session
        event("v", "2024-05-01 11:30:00.000001"),  # + 30:00 → same session
    ])
    # sessions [10:00, 10:30] and [11:00:00.000001, 11:30:00.000001]: 2 visits of 1800 s, no bounce
    assert _visits(q) == {"visitors": 1, "visits": 2, "bounce_rate": 0.0, "visit_duration": 1800.0}


def test_equal_timestamps_never_split(make_queries: Callable[..., Queries]) -> None:
    q = make_queries([
        event("v", "2024-05-01 10:00:00", path="/1"),
        event("v", "2024-05-01 11:00:00", path="/2"),  # gap 60 min: new session
        event("v", "2024-05-01 11:00:00", path="/3"),  # tie: same session as /2
        event("v", "2024-05-01 11:00:00", "click", path="/3"),
    ])
    # [10:00] (1 pageview: bounce) and [11:00 ×3] (2 pageviews, 0 s)
    assert _visits(q) == {"visitors": 1, "visits": 2, "bounce_rate": 0.5, "visit_duration": 0.0}


def test_custom_event_only_sessions_count_but_never_bounce(make_queries: Callable[..., Queries]) -> None:
    q = make_queries([
        event("v", "2024-05-01 10:00:00", "download"),  # 0 pageviews
        event("w", "2024-05-01 10:00:00", "pageview"),  # 1 pageview + 1 custom event: still a bounce
        event("w", "2024-05-01 10:01:00", "click"),
        event("x", "2024-05-01 10:00:00", "pageview"),  # 2 pageviews
        event("x", "2024-05-01 10:02:00", "pageview"),
    ])
    # 3 sessions, 1 bounce (w); durations 0, 60, 120
    assert _visits(q) == {"visitors": 3, "visits": 3, "bounce_rate": approx(1 / 3),
                          "visit_duration": 60.0}


def test_sessions_of_several_visitors_interleave(make_queries: Callable[..., Queries]) -> None:
    """Gaps are measured per visitor: another visitor's events do not keep a session open."""
    q = make_queries([
        event("v", "2024-05-01 10:00:00"), event("w", "2024-05-01 10:20:00"),
        event("w", "2024-05-01 10:40:00"), event("v", "2024-05-01 10:45:00"),  # v: 45 min gap
    ])
    # v: [10:00] [10:45] (two bounces); w: [10:20, 10:40] (1200 s)
    assert _visits(q) == {"visitors": 2, "visits": 3, "bounce_rate": approx(2 / 3),
                          "visit_duration": 400.0}


def test_midnight_crossing_is_one_session_only_with_visitor_id_prev(
        make_queries: Callable[..., Queries]) -> None:
    before = event("d1", "2024-05-01 23:50:00")
    after = [event("d2", "2024-05-02 00:10:00", path="/b", visitor_id_prev="d1"),
             event("d2", "2024-05-02 00:15:00", path="/c", visitor_id_prev="d1")]
    joined = make_queries([before, *after])
    # one session 23:50 → 00:15 (1500 s, 3 pageviews); visitor ids d1 and d2 are still two visitors
    assert _visits(joined) == {"visitors": 2, "visits": 1, "bounce_rate": 0.0, "visit_duration": 1500.0}
    rows = joined.query(SITE, metrics=["visits"], dimensions=["visit:entry_page"], start_date=DAY1,
                        end_date=DAY2).rows
    assert rows == [{"visit:entry_page": "/", "visits": 1}]
    split = make_queries([before, *(e._replace(visitor_id_prev=None) for e in after)])
    # without the link: [23:50] (bounce) and [00:10, 00:15] (300 s)
    assert _visits(split) == {"visitors": 2, "visits": 2, "bounce_rate": 0.5, "visit_duration": 150.0}


def test_session_window_setting(lake: Any, open_queries: Callable[..., Queries]) -> None:
    """session_window_minutes=10 on the shared dataset."""
    q = open_queries(lake, session_window_minutes=10)
    # A: a1 | a2 | a3 (gaps 30, 30) → 3; B: gaps 0, 5 → 1; C: gap exactly 10 → 1;
    # D: d1 | d2 d3 (gaps 20, 10) → 2; E: e1 | e2 e3 → 2.  Total 9.
    # bounces: a1, a2, a3, d1, e1 = 5; durations: B 300 + C 600 + D' 600 = 1500
    assert _visits(q) == {"visitors": 6, "visits": 9, "bounce_rate": approx(5 / 9),
                          "visit_duration": approx(1500 / 9)}
