"""Session metrics broken down by event dimensions, as Plausible allows them, against plain SQL over the
Parquet that ``track()`` wrote (tests/queries/plausible_traffic.py):

* ``visits`` by ``event:page``, ``event:name`` or ``event:props:<key>``: the sessions with an event of
  the group (Plausible counts visits from its events table then);
* ``bounce_rate``, ``visit_duration`` and ``views_per_visit`` by ``event:page``: those of the sessions
  entering on the page (Plausible reads event:page as visit:entry_page for them), 0 for a page no session
  entered on;
* other session metrics by ``event:name`` or a property are refused, as Plausible refuses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from mallard._errors import InvalidQueryError
from mallard._queries import Queries
from mallard._settings import Settings
from mallard._store import Store

from .plausible_traffic import SITE, write_traffic

NOW = datetime(2024, 9, 11, 12, 0, tzinfo=UTC)
RANGE = ["2024-09-01", "2024-09-10"]
GAP_US = 30 * 60 * 1_000_000

# Sessions by plain SQL: a visitor's events split where the gap exceeds 30 minutes (this traffic never
# crosses midnight, so the daily visitor id is the visitor).
SESSIONS = f"""
WITH ev AS (
  SELECT *, epoch_us(timestamp) AS us FROM read_parquet(?, hive_partitioning = true)
  WHERE site_id = '{SITE}'),
marked AS (
  SELECT *, CASE WHEN us - lag(us) OVER (PARTITION BY visitor_id ORDER BY us) <= {GAP_US} THEN 0 ELSE 1
  END AS new FROM ev),
numbered AS (
  SELECT *, visitor_id || '#' || sum(new) OVER (PARTITION BY visitor_id ORDER BY us) AS session FROM marked),
per_session AS (
  SELECT session, arg_min(pathname, us) FILTER (WHERE event_name = 'pageview') AS entry,
         count(*) FILTER (WHERE event_name = 'pageview') AS pageviews, (max(us) - min(us)) / 1e6 AS duration
  FROM numbered GROUP BY session)
"""


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Queries, str]]:
    data_dir = tmp_path_factory.mktemp("event-breakdowns") / "data"
    write_traffic(data_dir, NOW)
    store = Store(data_dir, read_only=True)
    files = str(data_dir / "events/**/*.parquet")
    yield Queries(store, Settings(data_dir=data_dir), clock=lambda: NOW), files
    store.close()


def sql(files: str, select: str) -> dict[str, tuple[Any, ...]]:
    rows = duckdb.connect().execute(SESSIONS + select, [files]).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def v2(queries: Queries, metrics: list[str], dimension: str) -> dict[str, tuple[Any, ...]]:
    body = queries.query_json({"site_id": SITE, "metrics": metrics, "date_range": RANGE,
                               "dimensions": [dimension]}).to_dict()
    return {r["dimensions"][0]: tuple(r["metrics"]) for r in body["results"]}


@pytest.mark.parametrize(("dimension", "value"), [
    ("event:page", "pathname"), ("event:name", "event_name"),
    ("event:props:plan", "coalesce(json_extract_string(props, '$.plan'), '(none)')"),
], ids=["page", "name", "property"])
def test_visits_by_event_dimension_are_the_sessions_with_such_events(
        lake: tuple[Queries, str], dimension: str, value: str) -> None:
    queries, files = lake
    expected = sql(files, f"SELECT {value}, count(DISTINCT session) FROM numbered GROUP BY ALL")
    assert len(expected) >= 2
    assert v2(queries, ["visits"], dimension) == expected


def test_bounce_rate_and_visit_duration_by_page_are_those_of_the_sessions_entering_on_it(
        lake: tuple[Queries, str]) -> None:
    queries, files = lake
    by_entry = sql(files, "SELECT entry, round(100 * avg((pageviews = 1)::INT)), avg(duration), "
                          "avg(pageviews) FROM per_session GROUP BY entry")
    visits = sql(files, "SELECT pathname, count(DISTINCT session) FROM numbered GROUP BY ALL")
    expected = {page: (n, *by_entry.get(page, (0.0, 0.0, 0.0))) for page, (n,) in visits.items()}
    assert any(page not in by_entry for page in visits)  # a page no session entered on
    got = v2(queries, ["visits", "bounce_rate", "visit_duration", "views_per_visit"], "event:page")
    assert {page: (n, pytest.approx(b), pytest.approx(d), pytest.approx(p))
            for page, (n, b, d, p) in got.items()} == expected


@pytest.mark.parametrize("dimension", ["event:name", "event:props:plan", "event:hostname"])
@pytest.mark.parametrize("metric", ["bounce_rate", "visit_duration", "views_per_visit"])
def test_other_session_metrics_by_other_event_dimensions_are_refused(
        lake: tuple[Queries, str], dimension: str, metric: str) -> None:
    with pytest.raises(InvalidQueryError, match=f"cannot be broken down by {dimension}") as info:
        v2(lake[0], ["visits", metric], dimension)
    assert info.value.code == "invalid_dimension"


def test_python_api_answers_the_same(lake: tuple[Queries, str]) -> None:
    queries = lake[0]
    rows = queries.query(SITE, metrics=["visits", "bounce_rate"], dimensions=["event:page"],
                         start_date=RANGE[0], end_date=RANGE[1]).rows
    got = {r["event:page"]: (r["visits"], r["bounce_rate"] * 100) for r in rows}
    assert got == {page: (n, pytest.approx(b)) for page, (n, b, *_rest) in v2(
        queries, ["visits", "bounce_rate"], "event:page").items()}


def test_page_filter_with_page_dimension_tests_the_entry_page(lake: tuple[Queries, str]) -> None:
    """An event:page filter with an event:page dimension filters the entry page of the session part."""
    queries, files = lake
    expected = sql(files, "SELECT entry, round(100 * avg((pageviews = 1)::INT)) FROM per_session "
                          "WHERE entry = '/docs/start' GROUP BY entry")
    body = queries.query_json({"site_id": SITE, "metrics": ["bounce_rate"], "date_range": RANGE,
                               "dimensions": ["event:page"],
                               "filters": [["is", "event:page", ["/docs/start"]]]}).to_dict()
    assert {r["dimensions"][0]: tuple(r["metrics"]) for r in body["results"]} == expected


def test_bounce_rate_with_a_page_filter_is_that_of_the_sessions_entering_on_it(
        lake: tuple[Queries, str]) -> None:
    """Plausible: with a top-level event:page filter, bounce_rate counts the sessions entering on a
    matching page; visits and visit_duration still count every session with a matching pageview."""
    queries, files = lake
    pages = ["/pricing", "/"]
    [(bounce,)] = sql(files, "SELECT 'all', round(100 * avg((pageviews = 1)::INT)) FROM per_session "
                             "WHERE entry IN ('/pricing', '/')").values()
    [(visits, duration)] = sql(files, "SELECT 'all', count(*), avg(duration) FROM per_session WHERE "
                                      "session IN (SELECT session FROM numbered WHERE pathname IN "
                                      "('/pricing', '/'))").values()
    body = queries.query_json({"site_id": SITE, "metrics": ["visits", "bounce_rate", "visit_duration"],
                               "date_range": RANGE, "filters": [["is", "event:page", pages]]}).to_dict()
    [row] = body["results"]
    assert row["metrics"] == [visits, pytest.approx(bounce), pytest.approx(duration)]
    assert bounce == 100.0  # every session entering on / bounced; those reaching /pricing entered elsewhere
    python = queries.query(SITE, metrics=["bounce_rate"], filters=[["is", "event:page", pages]],
                           start_date=RANGE[0], end_date=RANGE[1]).rows[0]["bounce_rate"]
    assert python < 1.0  # the Python API keeps mallard's reading: every session with such a pageview


def test_missing_property_is_none_in_filters_too(lake: tuple[Queries, str]) -> None:
    """Plausible names a missing property "(none)" in results and in filters."""
    queries, files = lake
    expected = sql(files, "SELECT 'all', count(DISTINCT visitor_id), count(DISTINCT session) FROM numbered "
                          "WHERE json_extract_string(props, '$.plan') IS NULL")
    body = queries.query_json({"site_id": SITE, "metrics": ["visitors", "visits"], "date_range": RANGE,
                               "filters": [["is", "event:props:plan", ["(none)"]]]}).to_dict()
    assert body["results"] == [{"dimensions": [], "metrics": list(expected["all"])}]
