"""The Stats API v2 documentation examples, sent to a real ``mallard serve`` over HTTP, answer 200 with the
numbers plain SQL (DuckDB) gives over the Parquet that ``track()`` wrote with real User-Agents
(tests/queries/plausible_traffic.py). The four that need goals and segments (behavioral-filters,
filtering-by-segment, revenue-metrics, revenue-warning) are in tests/queries/test_goals_plausible_examples.py.

The request bodies are those of Plausible's documentation; only ``site_id`` matters here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx
import pytest

from tests.queries.plausible_traffic import SITE, write_traffic

from .conftest import Live, served

pytestmark = pytest.mark.slow  # a real mallard serve

COUNTRY_NAMES = {"DE": "Germany", "US": "United States", "EE": "Estonia"}  # Plausible's names
EXAMPLES: dict[str, dict[str, Any]] = {
    "country-and-city": {
        "site_id": SITE, "metrics": ["visitors", "pageviews", "bounce_rate"], "date_range": "7d",
        "filters": [["is_not", "visit:country_name", [""]]],
        "dimensions": ["visit:country_name", "visit:city_name"]},
    "filtering-basics": {
        "site_id": SITE, "metrics": ["visitors"], "date_range": "7d",
        "filters": [["contains", "event:page", ["/docs", "/pricing"]],
                    ["or", [["not", ["is", "visit:utm_campaign", ["Referral"]]],
                            ["is", "visit:country_name", ["Estonia", "United States of America"]]]]]},
    "timeseries": {
        "site_id": SITE, "metrics": ["visitors", "events"], "date_range": "7d",
        "filters": [["is", "visit:os", ["GNU/Linux", "Mac"]]], "dimensions": ["time:day"]},
    "aggregate": {"site_id": SITE, "metrics": ["visitors", "events"], "date_range": "7d"},
    "custom-date-range": {"site_id": SITE, "metrics": ["visitors"],
                          "date_range": ["2024-08-01", "2024-08-15"]},
    "custom-properties": {
        "site_id": SITE, "metrics": ["visitors"], "date_range": "7d",
        "dimensions": ["time:day", "event:props:is_customer"],
        "order_by": [["time:day", "asc"], ["event:props:is_customer", "desc"]]},
    "filtering-case-insensitive": {
        "site_id": SITE, "metrics": ["visitors"], "date_range": "7d",
        "filters": [["contains", "event:page", ["blog"], {"case_sensitive": False}]]},
    "imports": {"site_id": SITE, "metrics": ["visitors"], "date_range": "all",
                "dimensions": ["visit:source"], "include": {"imports": True}},
    "imports-bad-filter": {"site_id": SITE, "metrics": ["visitors"], "date_range": "all",
                           "dimensions": ["visit:source"],
                           "filters": [["is", "visit:country_name", ["Estonia"]]],
                           "include": {"imports": True}},
    "pagination": {"site_id": SITE, "metrics": ["visitors", "events", "pageviews"], "date_range": "7d",
                   "dimensions": ["visit:utm_medium", "visit:utm_source"], "include": {"total_rows": True},
                   "pagination": {"limit": 3, "offset": 1}},
    "time-labels": {"site_id": SITE, "metrics": ["visitors"], "date_range": "day",
                    "dimensions": ["time:hour"], "include": {"time_labels": True}},
    "utm": {"site_id": SITE, "metrics": ["visitors", "events", "pageviews"], "date_range": "7d",
            "dimensions": ["visit:utm_medium", "visit:utm_source"]},
}

# Each visitor of this traffic has one session (one day, minutes apart): a visit attribute is the value
# on the visitor's first event.
FIRST = """
WITH ev AS (SELECT * FROM read_parquet(?, hive_partitioning = true)
            WHERE site_id = ? AND timestamp::DATE BETWEEN ?::DATE AND ?::DATE),
first AS (SELECT visitor_id, arg_min(utm_campaign, timestamp) AS campaign, count(*) FILTER (
            WHERE event_name = 'pageview') AS pageviews, arg_min(CASE referrer_source WHEN '(direct)'
            THEN 'Direct / None' ELSE referrer_source END, timestamp) AS source, arg_min(utm_medium,
            timestamp) AS medium, arg_min(utm_source, timestamp) AS utm_source FROM ev GROUP BY visitor_id)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("plausible-examples") / "data"
    write_traffic(data_dir, datetime.now(UTC))
    yield from served(data_dir)


def ask(live: Live, name: str) -> tuple[dict[str, Any], list[Any]]:
    """The answer to example ``name`` and the parameters of the SQL for its date range."""
    response = httpx.post(live.base + "/api/v2/query", json=EXAMPLES[name], timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    first, last = (value[:10] for value in body["query"]["date_range"])
    return body, [str(live.data_dir / "events/**/*.parquet"), SITE, first, last]


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(FIRST + sql, params).fetchall()


def test_country_and_city(server: Live) -> None:
    body, params = ask(server, "country-and-city")
    expected = {(COUNTRY_NAMES[code], city): (visitors, pageviews, bounce)
                for code, city, visitors, pageviews, bounce in rows(
                    "SELECT country_code, city, count(DISTINCT visitor_id), count(*) FILTER (WHERE "
                    "event_name = 'pageview'), 100 * avg((f.pageviews = 1)::INT) FROM ev JOIN first f "
                    "USING (visitor_id) WHERE country_code IS NOT NULL GROUP BY ALL", params)}
    assert len(expected) == 3
    got = {tuple(r["dimensions"]): tuple(r["metrics"]) for r in body["results"]}
    assert got == {k: (v, p, pytest.approx(b)) for k, (v, p, b) in expected.items()}


def test_filtering_basics(server: Live) -> None:
    body, params = ask(server, "filtering-basics")
    [(visitors,)] = rows(
        "SELECT count(DISTINCT visitor_id) FROM ev JOIN first f USING (visitor_id) "
        "WHERE (contains(pathname, '/docs') OR contains(pathname, '/pricing')) "
        "AND (f.campaign IS DISTINCT FROM 'Referral' OR country_code = 'EE')", params)
    assert visitors > 0
    assert body["results"] == [{"dimensions": [], "metrics": [visitors]}]


def test_timeseries_by_linux_and_mac(server: Live) -> None:
    body, params = ask(server, "timeseries")
    by_day = {day.isoformat(): [visitors, events] for day, visitors, events in rows(
        "SELECT timestamp::DATE, count(DISTINCT visitor_id), count(*) FROM ev "
        "WHERE os IN ('Linux', 'macOS') GROUP BY ALL", params)}  # what ua-parser says for them
    assert sum(v for v, _ in by_day.values()) == 2
    # as in Plausible's v2, days without data are left out (include.time_labels lists them all)
    assert body["results"] == [{"dimensions": [day], "metrics": by_day[day]} for day in sorted(by_day)]


def test_aggregate(server: Live) -> None:
    body, params = ask(server, "aggregate")
    [(visitors, events)] = rows("SELECT count(DISTINCT visitor_id), count(*) FROM ev", params)
    assert visitors > 0
    assert body["results"] == [{"dimensions": [], "metrics": [visitors, events]}]


def test_custom_date_range(server: Live) -> None:
    """The documentation's dates (August 2024) hold none of this traffic, and say so."""
    body, params = ask(server, "custom-date-range")
    assert params[2:] == ["2024-08-01", "2024-08-15"]
    [(visitors,)] = rows("SELECT count(DISTINCT visitor_id) FROM ev", params)
    assert body["results"] == [{"dimensions": [], "metrics": [visitors]}] and visitors == 0


def test_custom_properties(server: Live) -> None:
    """No event carries is_customer: every visitor of a day is in its '(none)' row."""
    body, params = ask(server, "custom-properties")
    expected = [{"dimensions": [day.isoformat(), "(none)"], "metrics": [visitors]}
                for day, visitors in rows("SELECT timestamp::DATE AS d, count(DISTINCT visitor_id) FROM ev "
                                          "WHERE json_extract_string(props, '$.is_customer') IS NULL "
                                          "GROUP BY d ORDER BY d", params)]
    assert len(expected) >= 3 and body["results"] == expected


def test_filtering_case_insensitive(server: Live) -> None:
    body, params = ask(server, "filtering-case-insensitive")
    [(visitors,)] = rows("SELECT count(DISTINCT visitor_id) FROM ev WHERE contains(lower(pathname), 'blog')",
                         params)
    assert body["results"] == [{"dimensions": [], "metrics": [visitors]}]
    # the same filter on a page this traffic has, written in capitals
    other = {**EXAMPLES["filtering-case-insensitive"],
             "filters": [["contains", "event:page", ["DOCS"], {"case_sensitive": False}]]}
    response = httpx.post(server.base + "/api/v2/query", json=other, timeout=30)
    [(docs,)] = rows("SELECT count(DISTINCT visitor_id) FROM ev WHERE contains(lower(pathname), 'docs')",
                     params)
    assert docs > 0 and response.json()["results"] == [{"dimensions": [], "metrics": [docs]}]


@pytest.mark.parametrize("name", ["imports", "imports-bad-filter"])
def test_imports(server: Live, name: str) -> None:
    """mallard has no imported data: the answer says so and counts its own events by source."""
    body, params = ask(server, name)
    assert body["meta"]["imports_included"] is False
    where = "WHERE country_code = 'EE'" if name == "imports-bad-filter" else ""
    expected = {source: visitors for source, visitors in rows(
        f"SELECT f.source, count(DISTINCT visitor_id) FROM ev JOIN first f USING (visitor_id) {where} "
        "GROUP BY 1", params)}
    assert expected and {r["dimensions"][0]: r["metrics"][0] for r in body["results"]} == expected


@pytest.mark.parametrize("name", ["utm", "pagination"])
def test_utm_and_pagination(server: Live, name: str) -> None:
    body, params = ask(server, name)
    groups = sorted(((medium or "(not set)", source or "(not set)"), [visitors, events, pageviews])
                    for medium, source, visitors, events, pageviews in rows(
                        "SELECT f.medium, f.utm_source, count(DISTINCT visitor_id), count(*), count(*) "
                        "FILTER (WHERE event_name = 'pageview') FROM ev JOIN first f USING (visitor_id) "
                        "GROUP BY 1, 2", params))
    got = [(tuple(r["dimensions"]), r["metrics"]) for r in body["results"]]
    if name == "pagination":
        assert body["meta"]["total_rows"] == len(groups)
        assert len(got) == max(0, min(3, len(groups) - 1))
        assert all(row in groups for row in got)
    else:
        assert sorted(got) == groups


def test_time_labels(server: Live) -> None:
    """Today in hours: 24 labels in meta, one row per hour, each with SQL's count (this traffic is older)."""
    body, params = ask(server, "time-labels")
    day = params[2]
    labels = [f"{day} {h:02d}:00:00" for h in range(24)]
    assert body["meta"]["time_labels"] == labels
    counts = dict(rows("SELECT strftime(date_trunc('hour', timestamp), '%Y-%m-%d %H:00:00'), "
                       "count(DISTINCT visitor_id) FROM ev GROUP BY 1", params))
    got = {r["dimensions"][0]: r["metrics"][0] for r in body["results"]}
    assert set(got) <= set(labels) and all(got[k] == counts.get(k, 0) for k in got)
