"""The Stats API v2 documentation examples about goals (behavioral-filters, filtering-by-segment,
revenue-metrics, revenue-warning): their request bodies, as Plausible's documentation writes them,
answered over a lake written here, every number checked against SQL over its Parquet files; plus
has_done / has_not_done on session and event metrics, and their errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from mallard._errors import InvalidQueryError
from mallard._events import Event
from mallard._queries import Queries
from mallard._queries.revenue import Revenue, finish

from .data import event

SITE = "dummy.site"
DAY = "2024-05-01"
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


def ev(vid: str, clock: str, name: str = "pageview", path: str = "/", *, source: str | None = None,
       amount: str | None = None, currency: str = "USD") -> Event:
    row = event(vid, f"{DAY} {clock}", name, path, site=SITE, revenue=amount, referrer_source=source)
    return row._replace(revenue_currency=currency if amount else None)


EVENTS = [
    ev("v1", "10:00:00", path="/pricing"), ev("v1", "10:05:00", "Signup", "/join"),
    ev("v1", "13:00:00", "Signup", "/join"),  # a second session of v1, without /pricing
    ev("v2", "10:00:00"), ev("v2", "10:10:00", "Signup", "/join"),
    ev("v3", "11:00:00", path="/pricing", source="opensource.com"),
    ev("v4", "12:00:00", source="opensource.com"),
    ev("v4", "12:01:00", path="/docs", source="opensource.com"),
    ev("v5", "09:00:00", "Purchase", "/buy", amount="200.00"),
    ev("v5", "09:01:00", "Purchase", "/buy", amount="300.50"),
    ev("v6", "09:00:00", "PurchaseUSD", "/buy", amount="100.00"),
    ev("v7", "09:00:00", "PurchaseEUR", "/buy", amount="50.00", currency="EUR"),
]
# The lake through SQL, sessions by a 30-minute gap (no session here crosses midnight or has two ids)
ORACLE = f"""
CREATE VIEW ev AS SELECT *, visitor_id || '#' || sum(gap) OVER (PARTITION BY visitor_id ORDER BY timestamp)
    AS session FROM (SELECT *, CASE WHEN timestamp - lag(timestamp) OVER (PARTITION BY visitor_id
    ORDER BY timestamp) <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END AS gap FROM read_parquet(
    '{{lake}}/events/**/*.parquet', hive_partitioning = true) WHERE site_id = '{SITE}')
"""


@pytest.fixture()
def q(make_queries: Callable[..., Queries]) -> Queries:
    queries = make_queries(EVENTS, now=NOW)
    goals = queries.goals
    goals.add(SITE, event_name="Signup")  # id 1
    goals.add_segment(SITE, "No signup from opensource.com", [  # id 2, as in the example
        ["has_not_done", ["is", "event:goal", ["Signup"]]], ["is", "visit:source", ["opensource.com"]]])
    goals.add(SITE, event_name="Purchase", display_name="North America Purchases", currency="USD")
    goals.add(SITE, page_path="/")
    goals.add(SITE, event_name="PurchaseUSD", currency="USD")
    goals.add(SITE, event_name="PurchaseEUR", currency="EUR")
    return queries


def sql(q: Queries, text: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute(ORACLE.replace("{lake}", str(q._store.data_dir)))
        return con.execute(text).fetchall()
    finally:
        con.close()


def test_behavioral_filters_example(q: Queries) -> None:
    """Signups by visitors in sessions that also visited /pricing."""
    body = q.query_json({"site_id": SITE, "metrics": ["visitors"], "date_range": "all", "filters": [
        ["is", "event:goal", ["Signup"]], ["has_done", ["is", "event:page", ["/pricing"]]]]}).to_dict()
    expected = sql(q, "SELECT count(DISTINCT visitor_id) FROM ev WHERE event_name = 'Signup' AND session IN "
                      "(SELECT session FROM ev WHERE pathname = '/pricing')")[0][0]
    assert body["results"] == [{"dimensions": [], "metrics": [expected]}]
    assert expected == 1  # v1's first session; not its second, not v2
    assert body["query"]["filters"] == [["and", [["is", "event:goal", ["Signup"]],  # as given
                                                 ["has_done", ["is", "event:page", ["/pricing"]]]]]]


def test_filtering_by_segment_example(q: Queries) -> None:
    """Segment 2: sessions from opensource.com without a signup."""
    body = q.query_json({"site_id": SITE, "metrics": ["visitors", "events"],
                         "filters": [["is", "segment", [2]]], "date_range": "7d"}).to_dict()
    expected = sql(q, "SELECT count(DISTINCT visitor_id), count(*) FROM ev WHERE referrer_source = "
                      "'opensource.com' AND session NOT IN (SELECT session FROM ev WHERE "
                      "event_name = 'Signup')")
    assert body["results"] == [{"dimensions": [], "metrics": list(expected[0])}]
    assert expected[0] == (2, 3)


def test_revenue_metrics_example(q: Queries) -> None:
    body = q.query_json({"site_id": SITE, "metrics": ["total_revenue"], "date_range": "all",
                         "dimensions": ["event:goal"]}).to_dict()
    got = {tuple(r["dimensions"]): r["metrics"] for r in body["results"]}
    (usd,), = sql(q, "SELECT sum(revenue_amount) FROM ev WHERE event_name = 'Purchase'")
    assert usd == Decimal("500.50")
    assert got[("North America Purchases",)] == [{"value": 500.5, "currency": "USD", "short": "$500.50",
                                                  "long": "$500.50"}]
    assert got[("Visit /",)] == [None]  # a goal without revenue
    assert got[("PurchaseEUR",)] == [{"value": 50.0, "currency": "EUR", "short": "€50.00", "long": "€50.00"}]
    assert got[("Signup",)] == [None]
    assert "metric_warnings" not in body["meta"]


def test_revenue_warning_example(q: Queries) -> None:
    """Two goals in two currencies: the sum is not made; a warning says why."""
    result = q.query_json({"site_id": SITE, "metrics": ["total_revenue"], "date_range": "all",
                           "filters": [["is", "event:goal", ["PurchaseUSD", "PurchaseEUR"]]]})
    body = result.to_dict()
    assert body["results"] == [{"dimensions": [], "metrics": [None]}]
    assert body["meta"]["metric_warnings"] == {"total_revenue": {
        "code": "no_single_revenue_currency", "warning": body["meta"]["metric_warnings"]["total_revenue"][
            "warning"]}}
    assert sql(q, "SELECT count(DISTINCT revenue_currency) FROM ev WHERE event_name IN "
                  "('PurchaseUSD', 'PurchaseEUR')")[0][0] == 2
    # one currency: the sum, as a typed value in Python
    one = q.query(SITE, metrics=["total_revenue", "average_revenue"], period="all",
                  filters=[["is", "event:goal", ["North America Purchases"]]]).rows[0]
    assert one["total_revenue"].value == Decimal("500.50") and one["total_revenue"].currency == "USD"
    assert one["average_revenue"].value == Decimal("250.25")


def test_reporting_currency_names_the_currency_of_empty_revenue(q: Queries) -> None:
    assert q.query(SITE, metrics=["total_revenue"], period="all",
                   filters=[["is", "event:goal", ["Signup"]]]).rows[0]["total_revenue"] is None
    q.goals.set_currency(SITE, "USD")
    row = q.query(SITE, metrics=["total_revenue"], period="all",
                  filters=[["is", "event:goal", ["Signup"]]]).rows[0]
    assert (row["total_revenue"].value, row["total_revenue"].currency) == (Decimal("0.00"), "USD")


@pytest.mark.parametrize("metrics", [["visitors", "events"], ["visits", "bounce_rate"]],
                         ids=["event-metrics", "session-metrics"])
def test_has_done_and_has_not_done_split_sessions(q: Queries, metrics: list[str]) -> None:
    """has_done keeps the sessions with a matching event; has_not_done the others; together, all."""
    oracle = {
        "visitors": "count(DISTINCT visitor_id)", "events": "count(*)",
        "visits": "count(DISTINCT session)",
        "bounce_rate": "avg(CASE WHEN pv = 1 THEN 1.0 ELSE 0.0 END)",
    }
    per_session = ("(SELECT session, any_value(visitor_id) AS visitor_id, count(*) FILTER (WHERE "
                   "event_name = 'pageview') AS pv FROM ev GROUP BY session)")
    for op, test in (("has_done", "IN"), ("has_not_done", "NOT IN")):
        row = q.query(SITE, metrics=metrics, period="all",
                      filters=[[op, ["is", "event:page", ["/pricing", "/join"]]]]).rows[0]
        where = f"session {test} (SELECT session FROM ev WHERE pathname IN ('/pricing', '/join'))"
        source = "ev" if metrics[0] == "visitors" else per_session
        expected = sql(q, f"SELECT {', '.join(oracle[m] for m in metrics)} FROM {source} s WHERE {where}")[0]
        assert tuple(row[m] for m in metrics) == pytest.approx(expected), (op, row, expected)


@pytest.mark.parametrize(("filters", "message"), [
    ([["has_done", ["is", "visit:source", ["x"]]]], "takes a filter on event dimensions"),
    ([["has_done", ["has_done", ["is", "event:page", ["/"]]]]], "takes a filter on event dimensions"),
    ([["has_done"]], "takes exactly one filter"),
    ([["has_done", ["is", "event:goal", ["Nope"]]]], "The goal 'Nope' is not configured"),
], ids=["visit-dimension", "nested", "no-filter", "unknown-goal"])
def test_bad_behavioural_filters_are_refused(q: Queries, filters: Any, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        q.query(SITE, metrics=["visitors"], period="all", filters=filters)


def test_behavioural_analyses_read_has_done_as_its_condition(q: Queries) -> None:
    """A funnel keeps the visitors with a session matching its filters, so ``has_done(X)`` there is
    ``X`` itself (docs/queries.md), not a refusal."""
    did = q.funnel(SITE, ["page:/", "event:Signup"], period="all",
                   filters=[["has_done", ["is", "event:page", ["/pricing"]]]])
    plain = q.funnel(SITE, ["page:/", "event:Signup"], period="all",
                     filters=[["is", "event:page", ["/pricing"]]])
    assert did.rows == plain.rows


@pytest.mark.parametrize(("currencies", "known", "expected"), [
    ([""], None, Revenue(Decimal("5.00"), "XXX")),
    ([""], "EUR", Revenue(Decimal("5.00"), "EUR")),
    (["", "USD"], "USD", Revenue(Decimal("5.00"), "USD")),
    (["", "USD"], None, None),
    (["EUR", "USD"], "EUR", None),
], ids=["no-currency", "known-currency", "same-as-known", "mixed-with-none", "mixed"])
def test_amounts_without_a_currency(currencies: list[str], known: str | None,
                                    expected: Revenue | None) -> None:
    rows: list[dict[str, Any]] = [{"total_revenue": {"value": Decimal("5"), "currencies": currencies}}]
    warnings = finish(rows, ["total_revenue"], lambda row: known)
    assert rows[0]["total_revenue"] == expected
    assert bool(warnings) == (expected is None)
