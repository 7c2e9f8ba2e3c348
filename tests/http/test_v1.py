"""Plausible's Stats API v1 and realtime.

Through every adapter (real servers on 127.0.0.1, conftest.py), with an API key: every v1 endpoint and
documented parameter, numbers checked against SQL over the stored Parquet; bad input answers 400 JSON.
In-process with an injected clock: the realtime window's edges and which unflushed events it sees.
And a v1 client from PyPI (plausible-mcp) run in a subprocess against ``mallard serve``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mallard
from mallard._errors import InvalidQueryError
from mallard._http import Api, Request
from mallard._http.v1 import parse_filters
from mallard._queries import Queries
from mallard._queries.filters import Condition, Logic
from mallard._queries.model import build
from mallard._queries.periods import DateRange, v1_period
from mallard._store import Store

from ..conftest import FrozenClock
from .conftest import Live, eventually, start, stop

PASSWORD = "correct horse battery staple"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Safari/605.1.15")
_sites = itertools.count()


def site() -> str:
    return f"v1-{next(_sites)}.example"


# -- helpers: a keyed server, seeded events, SQL over the lake ---------------------------------------
@pytest.fixture(scope="module")
def keyed(live: Live) -> tuple[Live, str]:
    """The module's server with a password set and a ReadOnly API key (Plausible's Bearer auth)."""
    with live.client() as c:
        r = c.post("/api/auth/setup", content=orjson.dumps({"password": PASSWORD}),
                   headers={"Content-Type": "application/json", "User-Agent": FIREFOX})
        assert r.status_code == 200, r.text
        r = c.post("/api/keys", content=b'{"name":"v1","scope":"ReadOnly"}',
                   headers={"Content-Type": "application/json", "Origin": live.host})
        assert r.status_code == 201, r.text
        return live, str(r.json()["key"])


def seed(c: httpx.Client, d: str) -> None:
    """Three visitors: Firefox (/ from Google, /blog/a, a Signup with plan=pro), Chrome (/blog/b from
    Hacker News), Safari (/pricing)."""
    sent = [
        (FIREFOX, {"n": "pageview", "u": f"https://{d}/", "r": "https://www.google.com/"}),
        (FIREFOX, {"n": "pageview", "u": f"https://{d}/blog/a"}),
        (FIREFOX, {"n": "Signup", "u": f"https://{d}/blog/a", "p": {"plan": "pro"}}),
        (CHROME, {"n": "pageview", "u": f"https://{d}/blog/b", "r": "https://news.ycombinator.com/"}),
        (SAFARI, {"n": "pageview", "u": f"https://{d}/pricing"}),
    ]
    for ua, body in sent:
        r = c.post("/api/event", content=orjson.dumps({"d": d, **body}),
                   headers={"Content-Type": "application/json", "User-Agent": ua})
        assert r.status_code == 202, r.text


def lake(data_dir: Path, d: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` over a relation ``events``: the site's stored Parquet rows."""
    files = sorted((data_dir / "events" / f"site_id={d}").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    con = duckdb.connect()
    try:
        if table is None:
            return []
        con.register("events", table)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def stored(data_dir: Path, d: str, count: int) -> None:
    """Wait (polling, bounded) until ``count`` events of ``d`` are in the Parquet files."""
    def done() -> bool:
        try:
            return lake(data_dir, d, "SELECT count(*) FROM events") == [(count,)]
        except (OSError, pa.ArrowInvalid):  # a file being replaced by compaction
            return False
    eventually(done, timeout=30)


#: Visitors and pageviews per source, a visit's source being that of its first event (one visit per
#: visitor here: the events of a test are seconds apart).
# Stored values (the dashboard's realtime answer), and Plausible's (v1: a direct visit is 'Direct / None').
STORED_SOURCES = ("WITH v AS (SELECT visitor_id, arg_min(referrer_source, timestamp) AS source "
                  "FROM events GROUP BY 1) SELECT v.source, count(DISTINCT visitor_id), count(*) FILTER "
                  "(WHERE event_name = 'pageview') FROM events JOIN v USING (visitor_id) GROUP BY 1 "
                  "ORDER BY 2 DESC, 1")
SOURCES = STORED_SOURCES.replace(
    "SELECT v.source,", "SELECT CASE WHEN v.source = '(direct)' THEN 'Direct / None' ELSE v.source END,")


def v1(c: httpx.Client, key: str, path: str, **params: str) -> Any:
    r = c.get(f"/api/v1/stats/{path}", params=params, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def today() -> date:
    return datetime.now(UTC).date()


# -- through every adapter -------------------------------------------------------------------------
@pytest.mark.slow
def test_aggregate_matches_sql(keyed: tuple[Live, str]) -> None:
    """aggregate: each metric as {value}, with compare=previous_period {value, comparison_value,
    change}; the figures are those of SQL over the Parquet; without a key the answer is 401."""
    live, key = keyed
    d = site()
    with live.client() as c:
        seed(c, d)
        stored(live.data_dir, d, 5)
        [(visitors, pageviews, events)] = lake(live.data_dir, d, "SELECT count(DISTINCT visitor_id), "
                                               "count(*) FILTER (WHERE event_name = 'pageview'), "
                                               "count(*) FROM events")
        [(duration,)] = lake(live.data_dir, d, "SELECT avg(s) FROM (SELECT epoch(max(timestamp)) - "
                             "epoch(min(timestamp)) AS s FROM events GROUP BY visitor_id)")
        metrics = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events"
        body = v1(c, key, "aggregate", site_id=d, period="day", metrics=metrics)
        assert body == {"results": {
            "visitors": {"value": visitors}, "visits": {"value": 3}, "pageviews": {"value": pageviews},
            "views_per_visit": {"value": round(pageviews / 3, 2)},
            "bounce_rate": {"value": 67},  # Chrome and Safari saw one page each
            "visit_duration": {"value": int(duration + 0.5)}, "events": {"value": events}}}
        assert (visitors, pageviews, events) == (3, 4, 5)
        assert v1(c, key, "aggregate", site_id=d) == {"results": {"visitors": {"value": 3}}}  # 30d
        for period in ("7d", "30d", "month", "6mo", "12mo"):
            assert v1(c, key, "aggregate", site_id=d, period=period, date=str(today())
                      ) == {"results": {"visitors": {"value": 3}}}, period
        yesterday = str(today() - timedelta(days=1))
        assert v1(c, key, "aggregate", site_id=d, period="day", date=yesterday, metrics="visitors,events"
                  ) == {"results": {"visitors": {"value": 0}, "events": {"value": 0}}}
        body = v1(c, key, "aggregate", site_id=d, period="7d", metrics="visitors,bounce_rate",
                  compare="previous_period")
        assert body == {"results": {
            "visitors": {"value": 3, "comparison_value": 0, "change": 100},
            "bounce_rate": {"value": 67, "comparison_value": 0, "change": None}}}
        body = v1(c, key, "aggregate", site_id=d, period="custom", date=f"{today()},{today()}",
                  filters="event:page==/blog/a|/blog/b", metrics="visitors,pageviews",
                  with_imported="true")
        assert body == {"results": {"visitors": {"value": 2}, "pageviews": {"value": 2}}}
        r = c.get("/api/v1/stats/aggregate", params={"site_id": d})
        assert r.status_code == 401 and "error" in r.json()


def test_timeseries_buckets_and_intervals(keyed: tuple[Live, str]) -> None:
    """timeseries: every bucket of the period (zero-filled), [{date, metrics...}]; hours for day
    (Plausible's 'YYYY-MM-DD HH:00:00'), months for 6mo/12mo or interval=month, interval=date as day."""
    live, key = keyed
    d = site()
    with live.client() as c:
        seed(c, d)
        stored(live.data_dir, d, 5)
        body = v1(c, key, "timeseries", site_id=d, period="7d", metrics="visitors,pageviews,events")
        assert [r["date"] for r in body["results"]] == [str(today() - timedelta(days=6 - i))
                                                        for i in range(7)]
        assert body["results"][-1] == {"date": str(today()), "visitors": 3, "pageviews": 4, "events": 5}
        assert all(r["visitors"] == 0 for r in body["results"][:-1])
        hours = v1(c, key, "timeseries", site_id=d, period="day")["results"]
        assert len(hours) == 24 and hours[0]["date"] == f"{today()} 00:00:00"
        [(hour, visitors)] = lake(live.data_dir, d, "SELECT strftime(date_trunc('hour', timestamp), "
                                  "'%Y-%m-%d %H:%M:%S'), count(DISTINCT visitor_id) FROM events GROUP BY 1")
        # the events' hour holds the 3 visitors and every other hour none (whichever hour the test runs in)
        assert visitors == 3
        assert {r["date"]: r["visitors"] for r in hours} == {r["date"]: 3 if r["date"] == hour else 0
                                                             for r in hours}
        months = v1(c, key, "timeseries", site_id=d, period="12mo")["results"]
        assert len(months) == 12 and months[-1] == {"date": str(today().replace(day=1)), "visitors": 3}
        by_day = v1(c, key, "timeseries", site_id=d, period="month", interval="date",
                    filters="visit:browser==Chrome")["results"]
        assert by_day[0]["date"] == str(today().replace(day=1))
        assert {r["date"]: r["visitors"] for r in by_day}[str(today())] == 1
        monthly = v1(c, key, "timeseries", site_id=d, period="30d", interval="month")["results"]
        assert monthly[-1] == {"date": str(today().replace(day=1)), "visitors": 3}


def test_breakdown_properties_filters_and_pages(keyed: tuple[Live, str]) -> None:
    """breakdown: rows keyed by the property's name, ordered by the first metric then value, limit and
    page, event:props:<key>, version properties with their parent, and v1's filter operators."""
    live, key = keyed
    d = site()
    with live.client() as c:
        seed(c, d)
        stored(live.data_dir, d, 5)
        expected = lake(live.data_dir, d, SOURCES)
        body = v1(c, key, "breakdown", site_id=d, period="day", property="visit:source",
                  metrics="visitors,pageviews")
        assert [(r["source"], r["visitors"], r["pageviews"]) for r in body["results"]] == expected
        pages = v1(c, key, "breakdown", site_id=d, property="event:page")["results"]
        assert pages == [{"page": p, "visitors": 1} for p in ("/", "/blog/a", "/blog/b", "/pricing")]
        second = v1(c, key, "breakdown", site_id=d, property="event:page", limit="2", page="2")
        assert [r["page"] for r in second["results"]] == ["/blog/b", "/pricing"]
        props = v1(c, key, "breakdown", site_id=d, property="event:props:plan",
                   filters="event:name==Signup", metrics="visitors,events")
        assert props == {"results": [{"plan": "pro", "visitors": 1, "events": 1}]}
        versions = v1(c, key, "breakdown", site_id=d, property="visit:browser_version")["results"]
        assert {(r["browser"], r["browser_version"]) for r in versions} == {
            ("Firefox", "120.0"), ("Chrome", "120.0"), ("Safari", "17.1")}
        for filters, pages_seen in [
            ("event:page==/blog/*", ["/blog/a", "/blog/b"]),
            ("event:page!=/blog/*", ["/", "/pricing"]),
            ("event:page==/|/pricing", ["/", "/pricing"]),
            ("event:page!=/pricing", ["/", "/blog/a", "/blog/b"]),
            ("event:page~blog;visit:browser!=Chrome", ["/blog/a"]),
            ("visit:browser==Chrome|Safari", ["/blog/b", "/pricing"]),
        ]:
            rows = v1(c, key, "breakdown", site_id=d, property="event:page", filters=filters)["results"]
            assert sorted(r["page"] for r in rows) == pages_seen, filters
        bounce = v1(c, key, "breakdown", site_id=d, property="visit:browser",
                    metrics="bounce_rate,visitors")["results"]
        assert {r["browser"]: r["bounce_rate"] for r in bounce} == {"Firefox": 0, "Chrome": 100,
                                                                    "Safari": 100}
        assert v1(c, key, "breakdown", site_id=d, property="visit:utm_source")["results"] == []


def test_realtime_counts_the_events_just_sent(keyed: tuple[Live, str]) -> None:
    """realtime/visitors answers a bare number; /api/stats/realtime the visitors, pages and sources;
    both count events accepted a moment ago (before or after their flush)."""
    live, key = keyed
    d = site()
    auth = {"Authorization": f"Bearer {key}"}
    with live.client() as c:
        seed(c, d)
        r = c.get("/api/v1/stats/realtime/visitors", params={"site_id": d}, headers=auth)
        assert r.status_code == 200 and r.json() == 3
        stored(live.data_dir, d, 5)
        assert c.get("/api/v1/stats/realtime/visitors", params={"site_id": d}, headers=auth).json() == 3
        body = c.get("/api/stats/realtime", params={"site_id": d, "limit": "2"}, headers=auth).json()
        assert body["visitors"] == 3 and body["minutes"] == 5
        assert body["pages"] == [{"value": "/", "visitors": 1}, {"value": "/blog/a", "visitors": 1}]
        sources = lake(live.data_dir, d, STORED_SOURCES)[:2]  # all have one visitor: by name
        assert body["sources"] == [{"value": s, "visitors": n} for s, n, _ in sources]


BAD = [
    ("aggregate", "period=5y"),
    ("aggregate", "period=custom"),
    ("aggregate", "period=custom&date=2024-01-01"),
    ("aggregate", "period=custom&date=2024-02-01,2024-01-01"),
    ("aggregate", "period=day&date=yesterday"),
    ("aggregate", "period=month&date=9999-12-31"),
    ("aggregate", "period=12mo&date=0001-06-01"),
    ("aggregate", "period=day&date=0001-01-01&compare=previous_period"),
    ("aggregate", "metrics=visitors,visitors"),
    ("aggregate", "metrics=sessions"),
    ("aggregate", "metrics=time_on_page"),  # needs event:page
    ("aggregate", "metrics=conversion_rate"),
    ("aggregate", "metrics=bounce_rate&filters=event:name==Signup"),
    ("aggregate", "metrics=views_per_visit&filters=event:page==/"),
    ("aggregate", "compare=year_ago"),
    ("aggregate", "filters=visit:browser"),
    ("aggregate", "filters=visit:nope==x"),
    ("aggregate", "filters=visit:country==Germany"),
    ("aggregate", "filters==="),
    ("aggregate", "with_imported=maybe"),
    ("timeseries", "interval=week"),
    ("timeseries", "metrics=visitors,nope"),
    ("breakdown", ""),
    ("breakdown", "property=event:hostname"),
    ("breakdown", "property=time:day"),
    ("breakdown", "property=visit:nope"),
    ("breakdown", "property=event:page&limit=0"),
    ("breakdown", "property=event:page&limit=1001"),
    ("breakdown", "property=event:page&limit=ten"),
    ("breakdown", "property=event:page&page=0"),
    ("breakdown", "property=event:page&metrics=views_per_visit"),
    ("breakdown", "property=event:props:plan&metrics=visits"),
]


def test_bad_input_answers_400_json(keyed: tuple[Live, str]) -> None:
    """Every malformed or unsupported v1 request answers 400 with Plausible's {"error": "..."} (and
    mallard's code)."""
    live, key = keyed
    auth = {"Authorization": f"Bearer {key}"}
    with live.client() as c:
        for path, query in [*((p, f"site_id=a.example&{q}") for p, q in BAD),
                            ("aggregate", ""), ("realtime/visitors", ""), ("timeseries", "site_id=..")]:
            r = c.get(f"/api/v1/stats/{path}?{query}", headers=auth)
            assert r.status_code == 400, (path, query, r.text)
            body = r.json()
            assert list(body) == ["error", "code"] and isinstance(body["error"], str) and body["error"], body
            assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]), body
        r = c.get("/api/stats/realtime", params={"site_id": "a.example", "limit": "0"}, headers=auth)
        assert r.status_code == 400 and "error" in r.json()


# -- in-process: the realtime window with an injected clock ------------------------------------------
@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[mallard.Mallard, FrozenClock]]:
    clock = FrozenClock()
    m = mallard.Mallard(data_dir=tmp_path / "data", clock=clock)
    try:
        yield m, clock
    finally:
        m.close()


def _visit(m: mallard.Mallard, ip: str, when: datetime, name: str = "pageview", path: str = "/",
           **fields: Any) -> None:
    assert m.track(name, site="rt.example", url=f"https://rt.example{path}", ip=ip, user_agent=FIREFOX,
                   timestamp=when, **fields).accepted


def _get(m: mallard.Mallard, path: str, query: str) -> tuple[int, Any]:
    r = Api.for_mallard(m).handle(Request("GET", path, query, {"host": "127.0.0.1:8000"}, client="127.0.0.1"))
    return r.status, orjson.loads(r.body)


def test_realtime_window_edges(clocked: tuple[mallard.Mallard, FrozenClock]) -> None:
    """A current visitor has an event (not engagement) at most 5 minutes old: one 5 min old counts, one
    5 min 1 s old does not, an engagement event never does; the window moves with the clock."""
    m, clock = clocked
    now = clock()
    _visit(m, "192.0.2.1", now - timedelta(minutes=5))
    _visit(m, "192.0.2.2", now - timedelta(minutes=5, seconds=1))
    _visit(m, "192.0.2.3", now - timedelta(seconds=30), name="engagement", scroll_depth=40)
    _visit(m, "192.0.2.4", now, path="/live")
    assert m.queries.current_visitors("rt.example") == 2
    assert _get(m, "/api/v1/stats/realtime/visitors", "site_id=rt.example") == (200, 2)
    status, body = _get(m, "/api/stats/realtime", "site_id=rt.example")
    assert status == 200 and body["visitors"] == 2
    assert body["from"] == "2024-05-01T11:55:00Z" and body["to"] == "2024-05-01T12:00:05Z"
    assert body["pages"] == [{"value": "/", "visitors": 1}, {"value": "/live", "visitors": 1}]
    clock.advance(seconds=1)
    assert m.queries.current_visitors("rt.example") == 1
    clock.advance(minutes=5)
    assert m.queries.current_visitors("rt.example") == 0


def test_realtime_window_follows_the_setting(tmp_path: Path) -> None:
    """``realtime_window_minutes`` sets how far back the realtime figures count."""
    clock = FrozenClock()
    m = mallard.Mallard(data_dir=tmp_path / "data", clock=clock, realtime_window_minutes=30)
    try:
        now = clock()
        _visit(m, "192.0.2.1", now - timedelta(minutes=29))
        _visit(m, "192.0.2.2", now - timedelta(minutes=31))
        assert m.queries.current_visitors("rt.example") == 1
        status, body = _get(m, "/api/stats/realtime", "site_id=rt.example")
        assert status == 200 and body["visitors"] == 1 and body["minutes"] == 30
        assert body["from"] == "2024-05-01T11:30:00Z"
    finally:
        m.close()


def test_realtime_window_across_midnight(clocked: tuple[mallard.Mallard, FrozenClock]) -> None:
    """At 00:02 the window reaches into yesterday's partition."""
    m, clock = clocked
    clock.set(datetime(2024, 5, 2, 0, 2, tzinfo=UTC))
    _visit(m, "192.0.2.1", datetime(2024, 5, 1, 23, 58, tzinfo=UTC))
    _visit(m, "192.0.2.2", datetime(2024, 5, 2, 0, 1, tzinfo=UTC))
    m.flush()
    assert m.queries.current_visitors("rt.example") == 2


def test_realtime_sees_unflushed_events_of_its_own_process_only(
        clocked: tuple[mallard.Mallard, FrozenClock]) -> None:
    """The decision documented in mallard/_queries/realtime.py: the process that accepted an event counts
    it at once, from its buffer; another process (here a read-only Queries on the same directory) counts
    it once it is flushed."""
    m, clock = clocked
    m.start()
    _visit(m, "192.0.2.1", clock())
    other = Queries(Store(m.settings.data_dir, read_only=True), m.settings, clock=clock)
    try:
        assert m.queries.current_visitors("rt.example") == 1
        assert other.current_visitors("rt.example") == 0
        m.flush()
        assert other.current_visitors("rt.example") == 1
        assert m.queries.current_visitors("rt.example") == 1  # not counted twice
    finally:
        other.close()


def test_a_window_is_never_answered_from_daily_rollups() -> None:
    """A range of instants (the realtime window) reads the events of the window, never the per-day
    rollups (their rows cover whole UTC days), even without filters."""
    from mallard._queries.planner import plan_query

    days = DateRange(date(2024, 5, 1), date(2024, 5, 1))
    query = build("rt.example", days, metrics=["visitors", "pageviews"], dimensions=["event:page"])
    assert [p.reads for p in plan_query(query).parts] == ["rollups"]  # whole days may
    window = (datetime(2024, 5, 1, 11, 55), datetime(2024, 5, 1, 12, 0, 5))
    narrowed = DateRange(date(2024, 5, 1), date(2024, 5, 1), instants=window)
    plan = plan_query(build("rt.example", narrowed, metrics=["visitors", "pageviews"],
                            dimensions=["event:page"]))
    assert [p.reads for p in plan.parts] == ["events"] and plan.bounds == window


def test_realtime_warns_when_timestamps_are_rounded(tmp_path: Path) -> None:
    """With round_timestamps the stored time is the hour's start: the dashboard answer says so."""
    clock = FrozenClock(datetime(2024, 5, 1, 12, 30, tzinfo=UTC))
    m = mallard.Mallard(data_dir=tmp_path / "data", clock=clock, round_timestamps=True)
    try:
        _visit(m, "192.0.2.1", clock())
        body = m.queries.realtime("rt.example").to_dict()
        assert body["visitors"] == 0 and "round_timestamps" in body["warning"]
    finally:
        m.close()


def test_compare_previous_period_change(clocked: tuple[mallard.Mallard, FrozenClock]) -> None:
    """compare=previous_period with figures on both days: change is the percent change rounded half away
    from zero, percentage points for bounce_rate."""
    m, clock = clocked
    yesterday = clock() - timedelta(days=1)
    for ip, pages in (("192.0.2.1", 2), ("192.0.2.2", 1)):  # 2 visitors, 3 pageviews, bounce 50
        for i in range(pages):
            _visit(m, ip, yesterday + timedelta(minutes=i), path=f"/{i}")
    for ip, pages in (("192.0.2.3", 1), ("192.0.2.4", 1), ("192.0.2.5", 2)):  # 3, 4, bounce 67
        for i in range(pages):
            _visit(m, ip, clock() - timedelta(hours=1, minutes=-i), path=f"/{i}")
    status, body = _get(m, "/api/v1/stats/aggregate", "site_id=rt.example&period=day&compare=previous_period"
                        "&metrics=visitors,pageviews,bounce_rate,views_per_visit")
    assert status == 200
    assert body == {"results": {
        "visitors": {"value": 3, "comparison_value": 2, "change": 50},
        "pageviews": {"value": 4, "comparison_value": 3, "change": 33},
        "bounce_rate": {"value": 67, "comparison_value": 50, "change": 17},
        "views_per_visit": {"value": 1.33, "comparison_value": 1.5, "change": -11}}}


# -- the v1 parameter grammar ----------------------------------------------------------------------
TODAY = date(2024, 5, 15)
NOON = datetime(2024, 5, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(("period", "date_text", "expected"), [
    ("day", None, (TODAY, TODAY)),
    ("day", "2024-02-29", (date(2024, 2, 29), date(2024, 2, 29))),
    ("7d", None, (date(2024, 5, 9), TODAY)),
    ("30d", "2024-03-31", (date(2024, 3, 1), date(2024, 3, 31))),  # 31 days, as Plausible
    ("month", None, (date(2024, 5, 1), date(2024, 5, 31))),
    ("6mo", None, (date(2023, 12, 1), date(2024, 5, 31))),
    ("12mo", "2024-01-10", (date(2023, 2, 1), date(2024, 1, 31))),
    ("custom", "2024-01-01,2024-01-31", (date(2024, 1, 1), date(2024, 1, 31))),
    ("custom", "2024-01-01, 2024-01-31", (date(2024, 1, 1), date(2024, 1, 31))),
])
def test_v1_periods(period: str, date_text: str | None, expected: tuple[date, date]) -> None:
    rng = v1_period(period, date_text, now=NOON)
    assert (rng.start, rng.end) == expected


@pytest.mark.parametrize(("period", "date_text"), [
    ("week", None), ("custom", None), ("custom", "2024-01-01"), ("custom", "a,b"), ("day", "2024-13-01"),
    ("6mo", "0001-03-01"), ("7d", "0001-01-03")])
def test_v1_period_errors(period: str, date_text: str | None) -> None:
    with pytest.raises(InvalidQueryError):
        v1_period(period, date_text, now=NOON)


def test_v1_filter_grammar() -> None:
    """';' joins (and), '|' lists (any of; '\\|' is a literal pipe), '*' is a wildcard, '!=' excludes,
    '~' contains."""
    tree = parse_filters(r"visit:browser==Chrome;event:page==/a|/b;visit:utm_campaign==x\|y;"
                         "event:page!=/blog/**;event:page~pricing;visit:country!=FR")
    assert isinstance(tree, Logic) and tree.op == "and"
    got = [(c.op, c.dimension.name, c.values) for c in tree.children if isinstance(c, Condition)]
    assert got == [("is", "visit:browser", ("Chrome",)), ("is", "event:page", ("/a", "/b")),
                   ("is", "visit:utm_campaign", ("x|y",)), ("matches_not", "event:page", ("^/blog/.*$",)),
                   ("contains", "event:page", ("pricing",)), ("is_not", "visit:country", ("FR",))]
    assert parse_filters("") is None and parse_filters(" ; ") is None
    wild = parse_filters("event:page==/a(1)*.html")
    assert isinstance(wild, Condition) and wild.values == (r"^/a\(1\).*\.html$",)


# -- a v1 client from PyPI -------------------------------------------------------------------------
CLIENT = """
import json, sys
from plausible_mcp import server
site, today = sys.argv[1], sys.argv[2]
out = {
    "aggregate": json.loads(server.get_aggregate_stats(site, date_range="day")),
    "pages": json.loads(server.get_breakdown(site, property_name="page", date_range="30d")),
    "sources": json.loads(server.get_breakdown(site, property_name="visit:source", date_range="7d")),
    "series": json.loads(server.get_timeseries(site, date_range=today + "," + today)),
    "realtime": json.loads(server.get_realtime_visitors(site)),
}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_plausible_mcp_client_against_mallard_serve(tmp_path: Path) -> None:
    """plausible-mcp (PyPI), pointed at ``mallard serve`` with a ReadOnly key, reads the same numbers as
    SQL over the Parquet. Its telemetry is off (DO_NOT_TRACK) and any request it would make elsewhere
    goes to a closed port on 127.0.0.1 (HTTP(S)_PROXY)."""
    import importlib.util

    if importlib.util.find_spec("plausible_mcp") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("plausible-mcp is not installed (pip install -e '.[test]')")
        pytest.skip("plausible-mcp is not installed (pip install -e '.[test]')")
    server = start("serve", tmp_path / "data")
    try:
        with server.client() as c:
            r = c.post("/api/auth/setup", content=orjson.dumps({"password": PASSWORD}),
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            key = c.post("/api/keys", content=b'{"name":"mcp","scope":"ReadOnly"}',
                         headers={"Content-Type": "application/json", "Origin": server.host}).json()["key"]
            d = site()
            seed(c, d)
        stored(server.data_dir, d, 5)
        home = tmp_path / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLARD_", "PLAUSIBLE_"))}
        env.update(PLAUSIBLE_BASE_URL=server.host, PLAUSIBLE_API_KEY=key, DO_NOT_TRACK="1",
                   HOME=str(home), HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                   NO_PROXY="127.0.0.1,localhost")
        done = subprocess.run([sys.executable, "-c", CLIENT, d, str(today())], env=env,
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()
        got = json.loads(done.stdout)
    finally:
        stop(server)
    [(visitors, pageviews)] = lake(server.data_dir, d, "SELECT count(DISTINCT visitor_id), "
                                   "count(*) FILTER (WHERE event_name = 'pageview') FROM events")
    totals = got["aggregate"]["totals"]
    assert (totals["visitors"], totals["pageviews"], totals["bounce_rate"]) == (visitors, pageviews, 67)
    pages = lake(server.data_dir, d, "SELECT pathname, count(DISTINCT visitor_id) FROM events "
                 "GROUP BY 1 ORDER BY 2 DESC, 1")
    assert [(r["page"], r["visitors"]) for r in got["pages"]["results"]] == pages
    sources = lake(server.data_dir, d, SOURCES)
    assert [(r["source"], r["visitors"]) for r in got["sources"]["results"]] == [s[:2] for s in sources]
    assert got["series"]["timeseries"] == [{"date": str(today()), "visitors": visitors}]
    assert got["realtime"]["realtime_visitors"] == visitors
