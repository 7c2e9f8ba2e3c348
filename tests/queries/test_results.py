"""Result objects (rows, to_dict, pandas, polars, Arrow), raw SQL, and where queries read from:
mallard.open() over a closed Mallard's lake, and a running Mallard's not-yet-flushed events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import mallard
from mallard._errors import InvalidQueryError
from mallard._queries import Queries
from mallard._queries.revenue import Revenue
from mallard._settings import Settings

from .data import DAY1, DAY2, SITE
from .test_registry import approx

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}


# -- QueryResult and Table -----------------------------------------------------------------------
def test_query_result_rows_and_to_dict(queries: Queries) -> None:
    result = queries.query(SITE, metrics=["visitors", "pageviews"], dimensions=["visit:country"],
                           **BOTH_DAYS)
    assert result.columns == ("visit:country", "visitors", "pageviews")
    assert result.rows == [{"visit:country": "DE", "visitors": 3, "pageviews": 6},
                           {"visit:country": "US", "visitors": 2, "pageviews": 5},
                           {"visit:country": "FR", "visitors": 1, "pageviews": 0}]
    assert len(result) == 3
    body = result.to_dict()
    assert body["results"] == [{"dimensions": ["DE"], "metrics": [3, 6]},
                               {"dimensions": ["US"], "metrics": [2, 5]},
                               {"dimensions": ["FR"], "metrics": [1, 0]}]
    assert body["meta"] == {}  # Plausible's meta: total_rows only with include.total_rows
    assert result.meta == {"total_rows": 3}
    assert body["query"]["metrics"] == ["visitors", "pageviews"]
    assert body["query"]["date_range"] == [DAY1, DAY2]
    assert "<th>visit:country</th>" in result._repr_html_()


def test_query_result_without_dimensions(queries: Queries) -> None:
    body = queries.query(SITE, metrics=["visitors", "total_revenue"], **BOTH_DAYS).to_dict()
    assert body["results"] == [{"dimensions": [], "metrics": [6, {
        "value": 59.9, "currency": "EUR", "short": "€59.90", "long": "€59.90"}]}]


def test_dataframes(queries: Queries) -> None:
    result = queries.query(SITE, metrics=["visitors", "bounce_rate"], dimensions=["visit:source"],
                           **BOTH_DAYS)
    arrow = result.to_arrow()
    assert isinstance(arrow, pa.Table)
    assert arrow.column_names == ["visit:source", "visitors", "bounce_rate"]
    assert arrow.column("visit:source").to_pylist() == ["Google", "(unknown)", "Bing", "DuckDuckGo"]
    frame = result.df()
    assert list(frame.columns) == ["visit:source", "visitors", "bounce_rate"]
    assert frame["visitors"].tolist() == [3, 2, 1, 1]
    assert frame["bounce_rate"].tolist() == [0.0, approx(2 / 3), 0.0, 0.0]  # a fraction
    polars_frame = result.pl()
    assert polars_frame.columns == ["visit:source", "visitors", "bounce_rate"]
    assert polars_frame["visit:source"].to_list() == ["Google", "(unknown)", "Bing", "DuckDuckGo"]


def test_empty_results_keep_their_columns(queries: Queries) -> None:
    result = queries.query(SITE, metrics=["visitors"], dimensions=["event:page"], start_date="2024-06-01",
                           end_date="2024-06-01")
    assert result.rows == [] and result.to_dict()["results"] == []
    assert result.to_arrow().column_names == ["event:page", "visitors"]
    assert result.to_arrow().num_rows == 0
    assert list(result.df().columns) == ["event:page", "visitors"]
    assert result.pl().columns == ["event:page", "visitors"]


def test_tables_of_the_presets(queries: Queries) -> None:
    table = queries.breakdown(SITE, "countries", **BOTH_DAYS)
    assert table.to_json() == table.rows
    body = table.to_dict()
    assert body["results"][0] == {"value": "DE", "visitors": 3, "pageviews": 6}
    assert body["meta"]["dimension"] == "visit:country" and body["meta"]["start_date"] == DAY1
    assert table.df()["value"].tolist() == ["DE", "US", "FR"]
    assert table.pl()["pageviews"].to_list() == [6, 5, 0]
    series = queries.timeseries(SITE, **BOTH_DAYS, interval="day")
    assert series.to_arrow().to_pylist() == [{"date": DAY1, "visitors": 4, "pageviews": 6},
                                             {"date": DAY2, "visitors": 2, "pageviews": 5}]


def test_query_json(queries: Queries) -> None:
    result = queries.query_json({"site_id": SITE, "metrics": ["visitors", "visits"],
                                 "date_range": [DAY1, DAY2], "dimensions": ["visit:device"],
                                 "filters": [["is_not", "event:name", ["download"]]],
                                 "pagination": {"limit": 1}})
    # sessions containing an event other than download: all 7; c still has its signup
    assert result.to_dict()["results"] == [{"dimensions": ["Desktop"], "metrics": [5, 6]}]  # Plausible's word
    assert result.meta == {"total_rows": 2}
    assert queries.query_json({"site_id": SITE, "metrics": ["visitors"], "date_range": "all"}).rows \
        == [{"visitors": 6}]  # from 04-30 (/old, visitor a)
    with pytest.raises(InvalidQueryError, match="must not exceed 366 days"):
        queries.query_json({"site_id": SITE, "metrics": ["visitors"],
                            "date_range": ["2023-01-01", "2024-05-01"]}, max_days=366)


# -- raw SQL -------------------------------------------------------------------------------------
def test_sql_over_the_whole_lake_or_one_site(queries: Queries) -> None:
    assert queries.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 16}]  # 14 + 2 noise
    assert queries.sql("SELECT count(*) AS n FROM events", site=SITE).to_pylist() == [{"n": 15}]
    table = queries.sql("SELECT pathname, count(*) AS n FROM events WHERE event_name = ? GROUP BY ALL "
                        "ORDER BY n DESC, pathname LIMIT 2", ["signup"], site=SITE)
    assert table.to_pylist() == [{"pathname": "/a", "n": 2}]
    with pytest.raises(InvalidQueryError):
        queries.sql("SELECT 1", site="../etc")


def test_sql_with_its_own_cte(queries: Queries) -> None:
    table = queries.sql("WITH x AS (SELECT count(*) AS n FROM events) SELECT n FROM x", site=SITE)
    assert table.to_pylist() == [{"n": 15}]


def test_query_json_time_series_leaves_empty_buckets_out(queries: Queries) -> None:
    """Plausible's v2 reports only buckets with data (``include.time_labels`` lists them all); the Python
    query API zero-fills the series."""
    body = {"site_id": SITE, "metrics": ["visitors"], "dimensions": ["time:day"],
            "date_range": ["2024-04-28", DAY2]}
    result = queries.query_json(body)
    assert result.rows == [{"time:day": "2024-04-30", "visitors": 1},
                           {"time:day": DAY1, "visitors": 4}, {"time:day": DAY2, "visitors": 2}]
    assert result.meta["total_rows"] == 3
    labelled = queries.query_json({**body, "include": {"time_labels": True}}).to_dict()
    assert labelled["meta"]["time_labels"] == ["2024-04-28", "2024-04-29", "2024-04-30", DAY1, DAY2]
    paged = queries.query_json({**body, "pagination": {"limit": 1, "offset": 1}})
    assert paged.rows == [{"time:day": DAY1, "visitors": 4}] and paged.meta["total_rows"] == 3
    python = queries.query(SITE, metrics=["visitors"], dimensions=["time:day"], start_date="2024-04-28",
                           end_date=DAY2)
    assert python.rows == [{"time:day": "2024-04-28", "visitors": 0},
                           {"time:day": "2024-04-29", "visitors": 0},
                           {"time:day": "2024-04-30", "visitors": 1},
                           {"time:day": DAY1, "visitors": 4}, {"time:day": DAY2, "visitors": 2}]


def test_sites(queries: Queries) -> None:
    assert queries.sites() == ["example.com", "other.test"]


# -- where queries read from ---------------------------------------------------------------------
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _settings(data_dir: Path) -> Settings:
    # nothing is flushed until flush() or close()
    return Settings(data_dir=data_dir, flush_interval_secs=3600.0, flush_event_count=100_000,
                    compact_after_files=0)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[mallard.Mallard]:
    m = mallard.Mallard(_settings(tmp_path / "data"), clock=lambda: NOW)
    try:
        yield m
    finally:
        m.close()


def _track(m: mallard.Mallard) -> None:
    def at(hh_mm: str) -> datetime:
        return datetime.fromisoformat(f"{DAY1}T{hh_mm}:00+00:00")

    outcomes = [
        m.track("pageview", site=SITE, url="https://example.com/", ip="203.0.113.5", user_agent=FIREFOX_UA,
                referrer="https://www.google.com/search?q=duck", timestamp=at("10:00")),
        m.track("pageview", site=SITE, url="https://example.com/pricing?utm_source=news", ip="203.0.113.5",
                user_agent=FIREFOX_UA, timestamp=at("10:10")),
        m.track("signup", site=SITE, url="https://example.com/pricing", ip="203.0.113.5",
                user_agent=FIREFOX_UA, props={"plan": "pro"}, revenue="19.99", currency="EUR",
                timestamp=at("10:11")),
        m.track("pageview", site=SITE, url="https://example.com/", ip="198.51.100.7", user_agent=CHROME_UA,
                timestamp=at("11:00")),
    ]
    assert all(o.accepted for o in outcomes), outcomes


def _answers(q: Queries) -> dict[str, Any]:
    """Every preset over the tracked events: (visitor 1: two pageviews and a signup; visitor 2: one view)."""
    return {
        "main": q.main(SITE, start_date=DAY1, end_date=DAY1).to_dict(),
        "pages": q.breakdown(SITE, "pages", start_date=DAY1, end_date=DAY1).rows,
        "browsers": q.breakdown(SITE, "browsers", start_date=DAY1, end_date=DAY1).rows,
        "series": [r for r in q.timeseries(SITE, start_date=DAY1, end_date=DAY1).rows if r["visitors"]],
        "plan": q.query(SITE, metrics=["visitors", "total_revenue"], dimensions=["event:props:plan"],
                        start_date=DAY1, end_date=DAY1).rows,
        "sources": q.breakdown(SITE, "sources", start_date=DAY1, end_date=DAY1, metrics=["visits"]).rows,
        "raw": [r["pathname"] for r in q.export(SITE, kind="raw", start_date=DAY1, end_date=DAY1).rows],
        "sql": q.sql("SELECT count(*) AS n FROM events", site=SITE).to_pylist(),
    }


EXPECTED = {
    "main": {"unique_visitors": 2, "total_pageviews": 3, "total_events": 4, "views_per_visitor": 1.5,
             "total_sessions": 2, "bounce_rate": 0.5, "avg_visit_duration_secs": approx(660 / 2),
             "pages_per_visit": 1.5, "views_per_visit": 1.5},
    "pages": [{"value": "/", "visitors": 2, "pageviews": 2},
              {"value": "/pricing", "visitors": 1, "pageviews": 1}],
    "browsers": [{"value": "Firefox", "visitors": 1, "pageviews": 2},  # equal visitors: more pageviews first
                 {"value": "Chrome", "visitors": 1, "pageviews": 1}],
    "series": [{"date": f"{DAY1} 10:00", "visitors": 1, "pageviews": 2},
               {"date": f"{DAY1} 11:00", "visitors": 1, "pageviews": 1}],
    "plan": [{"event:props:plan": "(unknown)", "visitors": 2, "total_revenue": None},
             {"event:props:plan": "pro", "visitors": 1,
              "total_revenue": Revenue(Decimal("19.99"), "EUR")}],
    "sources": [{"value": "(direct)", "visits": 1}, {"value": "Google", "visits": 1}],
    "raw": ["/", "/pricing", "/pricing", "/"],
    "sql": [{"n": 4}],
}


def _parquet_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "events").rglob("*.parquet"))


def test_pending_events_flushed_events_and_restart(running: mallard.Mallard) -> None:
    data_dir = running.settings.data_dir
    _track(running)
    assert _parquet_files(data_dir) == []  # all four events are still in the buffer
    pending = _answers(running.queries)
    assert pending == EXPECTED
    assert running.queries.sites() == [SITE]
    assert running.flush() == 4 and _parquet_files(data_dir)
    assert _answers(running.queries) == EXPECTED  # nothing counted twice or lost
    assert running.close()
    restarted = mallard.Mallard(_settings(data_dir), clock=lambda: NOW)
    try:
        assert _answers(restarted.queries) == EXPECTED
    finally:
        restarted.close()


def test_open_reads_what_a_closed_mallard_wrote(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with mallard.Mallard(_settings(data_dir), clock=lambda: NOW) as m:
        _track(m)
    with mallard.open(data_dir) as q:
        assert _answers(q) == EXPECTED
        assert q.sites() == [SITE]


def test_open_sees_nothing_buffered_elsewhere(running: mallard.Mallard) -> None:
    """mallard.open reads the lake only: another process's buffer is invisible until flushed."""
    _track(running)
    with mallard.open(running.settings.data_dir) as q:
        assert q.main(SITE, start_date=DAY1, end_date=DAY1).unique_visitors == 0
        running.flush()
        assert q.main(SITE, start_date=DAY1, end_date=DAY1).unique_visitors == 2


def test_open_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(mallard.StorageError, match="not a mallard data directory"):
        mallard.open(tmp_path / "missing")
