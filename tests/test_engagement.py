"""Plausible's engagement events (``n: "engagement"``, ``sd``, ``e``) and non-interactive events.

An engagement event reports on the page view it follows: it is stored with its values and left out of
every analysis but ``scroll_depth`` and ``time_on_page`` (it is not an event, a session's event, a step or
an exit). Numbers are checked against plain SQL over the Parquet lake.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

import mallard
from mallard._errors import InvalidEventError
from mallard._http.api import Api, Request
from mallard._store import derived, spool

from .conftest import FrozenClock

SITE = "engage.example"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
T0 = datetime(2024, 5, 1, 9, 0)
DAY = {"start_date": "2024-05-01", "end_date": "2024-05-01"}


@pytest.fixture
def m(tmp_data_dir: Path, clock: FrozenClock) -> Iterator[mallard.Mallard]:
    with mallard.Mallard(data_dir=tmp_data_dir, cache_ttl_secs=0, strict=True, clock=clock) as instance:
        yield instance


def hit(m: mallard.Mallard, name: str, path: str, at: timedelta, ip: str = "203.0.113.7",
        **fields: Any) -> None:
    outcome = m.track(name, site=SITE, url=f"https://{SITE}{path}", ip=ip, user_agent=UA,
                      timestamp=T0 + at, **fields)
    assert outcome.accepted, outcome


def lake(m: mallard.Mallard, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` over a relation ``lake`` of every stored row (plain DuckDB over the Parquet files)."""
    m.flush()
    files = [str(p) for p in Path(m.settings.data_dir, "events").rglob("*.parquet")]
    return duckdb.connect().execute(
        f"WITH lake AS (SELECT * FROM read_parquet(?, union_by_name=true)) {sql}", [files]).fetchall()


def one_visit(m: mallard.Mallard) -> None:
    """A visit of one page, left after 40 s with an engagement report 30 min later (a tab left open)."""
    hit(m, "pageview", "/post", timedelta(0))
    hit(m, "engagement", "/post", timedelta(minutes=29), scroll_depth=80, engagement_ms=40_000)


# -- the defect: engagement reports became custom events ----------------------------------------------
def test_engagement_event_is_stored_with_its_values(m: mallard.Mallard) -> None:
    one_visit(m)
    assert lake(m, "SELECT event_name, scroll_depth, engagement_ms FROM lake ORDER BY timestamp") == [
        ("pageview", None, None), ("engagement", 80, 40_000)]


def test_engagement_event_is_not_counted_as_an_event(m: mallard.Mallard) -> None:
    """events, the event:name breakdown, visits, duration, funnels, sequences, flows and the raw export
    ignore the report."""
    one_visit(m)
    q = m.queries
    main = q.query(SITE, metrics=["visitors", "pageviews", "events", "visits", "visit_duration",
                                  "bounce_rate"], **DAY).rows[0]
    assert (main["visitors"], main["pageviews"], main["events"], main["visits"]) == (1, 1, 1, 1)
    assert (main["visit_duration"], main["bounce_rate"]) == (0, 1)
    names = q.query(SITE, metrics=["events"], dimensions=["event:name"], **DAY).rows
    assert [r["event:name"] for r in names] == ["pageview"]
    assert q.sessions(SITE, **DAY)["total_sessions"] == 1
    funnel = q.funnel(SITE, ["page:/post", "event:engagement"], **DAY)
    assert [s["visitors"] for s in funnel.to_dict()["steps"]] == [1, 0]
    assert q.sequences(SITE, ["page:/post", "event:engagement"], **DAY)["converting_visitors"] == 0
    assert q.flow(SITE, "/post", **DAY).to_dict()["exits"] == 1
    raw = q.export(SITE, kind="raw", **DAY)
    assert [r["event_name"] for r in raw.rows] == ["pageview"]
    assert "scroll_depth" not in raw.columns and "interactive" in raw.columns


# -- i: false -----------------------------------------------------------------------------------------
def test_non_interactive_flag_is_stored_and_custom_events_never_unbounce(m: mallard.Mallard) -> None:
    """mallard's bounce is one pageview, whatever custom events follow: `interactive` is stored only."""
    hit(m, "pageview", "/", timedelta(0), ip="203.0.113.1")
    hit(m, "Play", "/", timedelta(seconds=5), ip="203.0.113.1")
    hit(m, "pageview", "/", timedelta(0), ip="203.0.113.2")
    hit(m, "Autoplay", "/", timedelta(seconds=5), ip="203.0.113.2", interactive=False)
    assert sorted(lake(m, "SELECT event_name, interactive FROM lake WHERE event_name <> 'pageview'")) == [
        ("Autoplay", False), ("Play", None)]
    assert m.queries.query(SITE, metrics=["bounce_rate", "visits"], **DAY).rows[0] == {
        "bounce_rate": 1.0, "visits": 2}


def test_track_refuses_an_engagement_without_values(m: mallard.Mallard) -> None:
    with pytest.raises(InvalidEventError, match="'sd'"):
        m.track("engagement", site=SITE, url=f"https://{SITE}/", timestamp=T0)


# -- scroll_depth and time_on_page --------------------------------------------------------------------
A, B, C = "203.0.113.10", "203.0.113.11", "203.0.113.12"
READS = [  # (visitor ip, minutes after T0, page, sd, e): each after a pageview of the page
    (A, 1, "/blog", 40, 30_000), (A, 3, "/about", 100, 90_000), (A, 5, "/blog", 80, 20_000),
    (B, 2, "/blog", 25, 10_000), (B, 4, "/blog", 150, 5_000),  # 150 counts as 100
    (C, 1, "/blog", 60, 4_000), (C, 125, "/blog", 10, None),  # a second visit of C; no time reported
    (C, 126, "/blog", None, 1_000),
]


@pytest.fixture
def engaged(m: mallard.Mallard) -> mallard.Mallard:
    for ip, minutes, page, sd, e in READS:
        hit(m, "pageview", page, timedelta(minutes=minutes - 1), ip=ip)
        hit(m, "engagement", page, timedelta(minutes=minutes), ip=ip, scroll_depth=sd, engagement_ms=e)
    return m


def oracle(m: mallard.Mallard) -> dict[str, tuple[int, int]]:
    """(scroll_depth, time_on_page) per page from plain SQL over the Parquet files: a visit is a visitor's
    run of reports at most 30 minutes apart; per visit and page the deepest scroll and the time summed;
    then the mean depth over visits that reported one, and the seconds over the visits (half to even)."""
    rows = lake(m, "SELECT visitor_id, timestamp, pathname, scroll_depth, engagement_ms FROM lake "
                   "WHERE event_name = 'engagement' ORDER BY visitor_id, timestamp")
    visits: dict[tuple[str, str, int], list[tuple[int | None, int | None]]] = {}
    last: dict[str, tuple[datetime, int]] = {}
    for vid, ts, page, sd, ms in rows:
        prev = last.get(vid)
        n = prev[1] + (ts - prev[0] > timedelta(minutes=30)) if prev else 0
        last[vid] = (ts, n)
        visits.setdefault((page, vid, n), []).append((sd, ms))
    out: dict[str, tuple[int, int]] = {}
    for page in sorted({k[0] for k in visits}):
        mine = [v for k, v in visits.items() if k[0] == page]
        deepest = [[sd for sd, _ in v if sd is not None] for v in mine]
        depths = [max(d) for d in deepest if d]
        seconds = sum(ms or 0 for v in mine for _, ms in v) / 1000 / len(mine)
        out[page] = (round(sum(depths) / len(depths)), round(seconds))
    return out


def test_scroll_depth_and_time_on_page_by_page_match_sql_over_the_parquet(engaged: mallard.Mallard) -> None:
    rows = engaged.queries.query(SITE, metrics=["visitors", "scroll_depth", "time_on_page"],
                                 dimensions=["event:page"], **DAY).rows
    got = {r["event:page"]: (r["scroll_depth"], r["time_on_page"]) for r in rows}
    # /blog: visits A (80, 50 s), B (100, 15 s), C1 (60, 4 s), C2 (10, 1 s) -> 62.5 -> 62, 17.5 -> 18
    assert got == oracle(engaged) == {"/about": (100, 90), "/blog": (62, 18)}
    assert {r["event:page"]: r["visitors"] for r in rows} == {"/about": 1, "/blog": 3}


def test_engagement_metrics_with_an_event_page_filter(engaged: mallard.Mallard) -> None:
    q = engaged.queries
    total = q.query(SITE, metrics=["scroll_depth", "time_on_page", "pageviews", "visits"],
                    filters=[["is", "event:page", ["/blog"]]], **DAY).rows
    # visits: A, B and C's two (its pageviews two hours apart); the reports never extend a visit
    assert total == [{"scroll_depth": 62, "time_on_page": 18, "pageviews": 7, "visits": 4}]
    series = q.query(SITE, metrics=["scroll_depth"], dimensions=["time:day"],
                     filters=[["is", "event:page", ["/about"]]], start_date="2024-04-30",
                     end_date="2024-05-01").rows
    assert series == [{"time:day": "2024-04-30", "scroll_depth": None},
                      {"time:day": "2024-05-01", "scroll_depth": 100}]


def test_engagement_metrics_over_the_v2_api(engaged: mallard.Mallard) -> None:
    body = {"site_id": SITE, "metrics": ["scroll_depth", "time_on_page"],
            "date_range": ["2024-05-01", "2024-05-01"], "dimensions": ["event:page"],
            "order_by": [["scroll_depth", "desc"]]}
    assert engaged.queries.query_json(body).to_dict()["results"] == [
        {"dimensions": ["/about"], "metrics": [100, 90]}, {"dimensions": ["/blog"], "metrics": [62, 18]}]


@pytest.mark.parametrize(("extra", "words"), [
    ({}, "event:page dimension or filter"),
    ({"dimensions": ["event:page", "visit:source"]}, "visit:source"),
], ids=["no-page", "with-source"])
def test_engagement_metrics_need_a_page_and_no_attribution(m: mallard.Mallard, extra: dict[str, Any],
                                                           words: str) -> None:
    with pytest.raises(mallard.InvalidQueryError, match=words):
        m.queries.query(SITE, metrics=["scroll_depth"], **DAY, **extra)


def test_v1_time_on_page_reads_the_engagement_reports(engaged: mallard.Mallard) -> None:
    """Plausible's v1 aggregate and breakdown answer time_on_page by page (it was a 400)."""
    api = Api.for_mallard(engaged)

    def get(path: str, query: str) -> tuple[int, Any]:
        r = api.handle(Request("GET", f"/api/v1/stats/{path}", f"site_id={SITE}&period=day&date=2024-05-01&"
                               + query, {"host": "127.0.0.1:8000"}, client="127.0.0.1"))
        return r.status, orjson.loads(r.body)

    assert get("aggregate", "metrics=time_on_page&filters=event:page==/blog") == (
        200, {"results": {"time_on_page": {"value": 18}}})
    status, body = get("breakdown", "property=event:page&metrics=visitors,time_on_page")
    assert status == 200 and body["results"] == [{"page": "/blog", "visitors": 3, "time_on_page": 18},
                                                 {"page": "/about", "visitors": 1, "time_on_page": 90}]
    assert get("aggregate", "metrics=time_on_page")[0] == 400


def test_partitions_derived_before_engagement_was_left_out_are_stale() -> None:
    """Stored sessions and rollups built when engagement reports still counted as events no longer match
    their event files: maintenance builds them again, queries compute from events until then."""
    names = ["/d/events/site_id=s/date=2024-05-01/a.parquet"]
    before = hashlib.blake2b(digest_size=16)
    before.update(b"gap=1800\0")
    before.update(b"date=2024-05-01/a.parquet\0")  # the formula of schema version 2
    assert derived.fingerprint(names, 1800) != before.hexdigest()


def test_the_spool_journal_keeps_the_engagement_columns() -> None:
    """An accepted engagement report survives a crash: the journal line holds its values."""
    event = mallard.Event(SITE, "v" * 64, T0, "engagement", "/post", scroll_depth=80, engagement_ms=40_000,
                          interactive=False)
    assert spool.decode(spool.encode(event)) == event
