"""Revenue is never added up across currencies (a defect: 100 USD + 50 EUR used to answer 150)."""

from __future__ import annotations

from collections.abc import Callable

from mallard._queries import Queries

from .data import DAY1, SITE, event


def test_total_revenue_is_never_summed_across_currencies(make_queries: Callable[..., Queries]) -> None:
    usd = event("a", f"{DAY1} 10:00:00", "Purchase", "/buy", revenue="100.00")
    usd = usd._replace(revenue_currency="USD")
    eur = event("b", f"{DAY1} 11:00:00", "Purchase", "/buy", revenue="50.00")
    q = make_queries([usd, eur])
    mixed = q.query(SITE, metrics=["total_revenue"], start_date=DAY1, end_date=DAY1)
    assert mixed.rows == [{"total_revenue": None}]
    assert mixed.meta["metric_warnings"]["total_revenue"]["code"] == "no_single_revenue_currency"
    by_visitor_day = q.query(SITE, metrics=["total_revenue"], dimensions=["time:hour"], start_date=DAY1,
                             end_date=DAY1).rows
    amounts = {r["time:hour"]: r["total_revenue"] for r in by_visitor_day if r["total_revenue"]}
    assert {(str(v.value), v.currency) for v in amounts.values()} == {("100.00", "USD"), ("50.00", "EUR")}
