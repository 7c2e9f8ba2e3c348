"""The Stats API v2 documentation examples that use Plausible's value vocabulary (country-and-city,
filtering-basics, timeseries by ``["GNU/Linux", "Mac"]``), sent to a real ``mallard serve`` over HTTP,
answer 200 with the numbers plain SQL (DuckDB) gives over the Parquet that ``track()`` wrote with real
User-Agents (tests/queries/plausible_traffic.py).

The request bodies are those of Plausible's documentation; only ``site_id`` matters here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import httpx
import pytest

from tests.queries.plausible_traffic import SITE, write_traffic

from .conftest import Live, start, stop

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
}

# Each visitor of this traffic has one session (one day, minutes apart): a visit attribute is the value
# on the visitor's first event.
FIRST = """
WITH ev AS (SELECT * FROM read_parquet(?, hive_partitioning = true)
            WHERE site_id = ? AND timestamp::DATE BETWEEN ?::DATE AND ?::DATE),
first AS (SELECT visitor_id, arg_min(utm_campaign, timestamp) AS campaign, count(*) FILTER (
            WHERE event_name = 'pageview') AS pageviews FROM ev GROUP BY visitor_id)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("plausible-examples") / "data"
    write_traffic(data_dir, datetime.now(UTC))
    live = start("serve", data_dir)
    try:
        yield live
    finally:
        stop(live)
        assert "Traceback" not in live.logs(), live.logs()


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
    first, last = date.fromisoformat(params[2]), date.fromisoformat(params[3])
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    assert body["results"] == [{"dimensions": [day], "metrics": by_day.get(day, [0, 0])} for day in days]
