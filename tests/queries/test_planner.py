"""The planner: each pure decision of Query → Plan, and the plan of representative queries.

The SQL written from plans is pinned by test_golden_sql.py; the answers by the other query tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from mallard._errors import InvalidQueryError
from mallard._queries import Queries
from mallard._queries.filters import Condition, Logic
from mallard._queries.model import Query, build
from mallard._queries.periods import DateRange
from mallard._queries.planner import (
    check_session_dimensions,
    conversion,
    event_reads,
    is_session_wide,
    is_zero_filled,
    needs_session,
    order_keys,
    plan_query,
    scan_columns,
    session_attributes,
    session_flags,
    session_pages,
    session_valued,
    sessions_relation,
    split_metrics,
)
from mallard._queries.plans import Conversion, without
from mallard._queries.registry import Dimension, dimension

from .data import DAY1, DAY2, SITE, event

RANGE = DateRange(date(2024, 5, 1), date(2024, 5, 2), "UTC")


def q(**kwargs: Any) -> Query:
    return build(SITE, RANGE, **kwargs)


def dims(*names: str) -> list[Dimension]:
    return [dimension(n) for n in names]


def cond(dim: str, *values: str) -> Condition:
    return Condition("is", dimension(dim), values)


# -- small decisions ------------------------------------------------------------------------------
def test_split_metrics_keeps_query_order() -> None:
    assert split_metrics(["visits", "visitors", "bounce_rate", "pageviews"]) == (
        ("visitors", "pageviews"), ("visits", "bounce_rate"))


@pytest.mark.parametrize(("name", "needs", "wide"), [
    ("event:page", False, False),
    ("event:props:plan", False, False),
    ("visit:source", True, True),  # attribution: an event's source is its session's
    ("visit:utm_campaign", True, True),
    ("visit:entry_page", True, True),
    ("visit:browser", False, True),  # the same on every event of a session
    ("visit:country", False, True),
    ("visit:device", False, False),  # may differ between the events of one session
    ("visit:screen", False, False),
], ids=str)
def test_needs_session_and_is_session_wide(name: str, needs: bool, wide: bool) -> None:
    assert needs_session(dimension(name)) is needs
    assert is_session_wide(dimension(name)) is wide


def test_session_metrics_by_an_event_dimension_are_rejected() -> None:
    check_session_dimensions(dims("event:page"), ())
    check_session_dimensions(dims("visit:source", "visit:exit_page"), ("visits",))
    with pytest.raises(InvalidQueryError, match="cannot be broken down by event:page") as info:
        check_session_dimensions(dims("visit:source", "event:page"), ("visits", "bounce_rate"))
    assert info.value.code == "invalid_dimension"


@pytest.mark.parametrize(("metrics", "names", "bucket", "reads"), [
    ((), ["visit:source"], None, None),
    (("visitors",), [], None, "events"),
    (("visitors", "pageviews"), ["event:page", "visit:browser"], None, "events"),
    (("visitors", "pageviews"), ["visit:source"], None, "sessions"),
    (("visitors", "events"), ["visit:entry_page", "visit:browser"], None, "sessions"),
    # the sessions' revenue has no currency: revenue is summed from events, per currency
    (("visitors", "total_revenue"), ["visit:entry_page", "visit:browser"], None, "events_with_session"),
    (("visitors",), ["visit:source"], "day", "events_with_session"),  # buckets need event times
    (("views_per_visitor",), ["visit:source"], None, "events_with_session"),  # not summable
    (("visitors",), ["visit:source", "event:page"], None, "events_with_session"),
    (("visitors",), ["visit:source", "visit:device"], None, "events_with_session"),
], ids=["no-event-metrics", "totals", "event-dims", "attribution", "entry-and-browser", "revenue",
        "time-bucket", "not-summable", "event-dim-too", "device-varies"])
def test_event_reads(metrics: tuple[str, ...], names: list[str], bucket: Any, reads: str | None) -> None:
    assert event_reads(metrics, dims(*names), bucket) == reads


def test_session_valued() -> None:
    used = dims("event:page", "visit:source", "visit:browser", "visit:exit_page")
    assert session_valued("events", used) == frozenset()
    assert session_valued("events_with_session", used) == {"visit:source", "visit:exit_page"}
    assert session_valued("sessions", used) == {"visit:source", "visit:browser", "visit:exit_page"}


def test_session_attributes() -> None:
    conds = [cond("visit:country", "DE"), cond("event:page", "/a"), cond("visit:utm_term", "x")]
    # events joined to sessions take only attribution columns from the session
    assert session_attributes("events_with_session", (), dims("visit:source", "visit:browser"), []) == (
        "referrer_source",)
    # the session-sums shortcut takes every visit column from the session
    assert session_attributes("sessions", (), dims("visit:source", "visit:browser"), []) == (
        "browser", "referrer_source")
    # the session part takes its dimensions and visit filters; event filters become flags
    assert session_attributes(None, ("visits",), dims("visit:os"), conds) == (
        "country_code", "os", "utm_term")
    assert session_attributes("events", (), dims("event:page"), conds) == ()


def test_session_flags_are_the_event_leaves_in_tree_order() -> None:
    """One flag per leaf, repeats included: the SQL text must not depend on the filter values."""
    a, b = cond("event:page", "/a"), cond("event:name", "signup")
    assert session_flags([a, cond("visit:source", "x"), b, a]) == (a, b, a)


def test_session_pages() -> None:
    assert session_pages(dims("visit:exit_page", "visit:source", "visit:entry_page", "event:page")) == (
        "entry_page", "exit_page")
    assert session_pages(dims("visit:source")) == ()


def test_sessions_relation_only_when_something_reads_sessions() -> None:
    source, page = dims("visit:source", "event:page")
    assert sessions_relation("events", (), [page], []) is None
    assert sessions_relation(None, (), [], []) is None
    shortcut = sessions_relation("sessions", (), [source], [])
    assert shortcut is not None and shortcut.flags == () and not shortcut.overlap
    goal = cond("event:name", "signup")
    visits = sessions_relation(None, ("visits",), [source], [goal])
    assert visits is not None and visits.flags == (goal,) and visits.attributes == ("referrer_source",)
    assert visits.overlap  # events are matched to sessions: those reaching into the range count
    joined = sessions_relation("events_with_session", (), [source, page], [])
    assert joined is not None and joined.overlap and joined.flags == ()


def test_scan_columns() -> None:
    base = ("event_name", "pathname", "timestamp", "visitor_id")
    assert scan_columns(q(), []) == base
    assert scan_columns(q(metrics=["total_revenue"]), dims("visit:os", "event:props:k")) == tuple(
        sorted((*base, "os", "props", "revenue_amount", "revenue_currency")))


def test_conversion_drops_goal_filters_from_the_denominator() -> None:
    query = q(metrics=["visitors", "conversion_rate"], filters=[
        ["is", "event:name", ["signup"]], ["is", "event:props:plan", ["pro"]],
        ["is", "visit:country", ["DE"]], ["is", "event:page", ["/a"]]])
    ev = plan_query(query).parts[0]
    total = conversion(query, ev)
    assert total == Conversion("events", Logic("and", (cond("visit:country", "DE"),
                                                       cond("event:page", "/a"))), frozenset())
    assert conversion(q(metrics=["visitors"]), ev) is None
    goal_only = q(metrics=["conversion_rate"], filters=[["is", "event:name", ["signup"]]])
    assert conversion(goal_only, ev) == Conversion("events", None, frozenset())


@pytest.mark.parametrize(("kwargs", "keys"), [
    ({}, ()),
    ({"dimensions": ["event:page"]}, (("m_visitors", "DESC"), ("d0", "ASC"))),
    ({"dimensions": ["time:day"]}, (("d0", "ASC"), ("d0", "ASC"))),
    ({"dimensions": ["visit:source", "time:day"]},
     (("d1", "ASC"), ("m_visitors", "DESC"), ("d0", "ASC"), ("d1", "ASC"))),
    ({"metrics": ["visitors", "visits"], "dimensions": ["visit:source"],
      "order_by": [["visits", "asc"], ["visit:source", "desc"]]},
     (("m_visits", "ASC"), ("d0", "DESC"), ("d0", "ASC"))),
], ids=["totals", "breakdown", "series", "time-and-dimension", "explicit"])
def test_order_keys(kwargs: dict[str, Any], keys: tuple[tuple[str, str], ...]) -> None:
    assert order_keys(q(**kwargs)) == keys


def test_only_a_lone_time_dimension_is_zero_filled() -> None:
    assert is_zero_filled(q(dimensions=["time:day"]))
    assert not is_zero_filled(q(dimensions=["time:day", "event:page"]))
    assert not is_zero_filled(q(dimensions=["event:page"]))


# -- whole plans ----------------------------------------------------------------------------------
def test_event_metrics_by_event_dimensions_are_not_sessionised() -> None:
    plan = plan_query(q(metrics=["visitors", "pageviews"], dimensions=["event:page"],
                        filters=[["is", "event:name", ["pageview"]]]))
    assert plan.sessions is None
    assert [(p.name, p.reads) for p in plan.parts] == [("ev", "events")]
    assert plan.join == "none" and not plan.shared_scan and plan.conversion is None
    assert "visitor_id_prev" not in plan.columns


@pytest.mark.parametrize("args", [
    {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]},
    {"metrics": ["visitors", "events", "views_per_visitor"]},
    {"metrics": ["visitors"], "dimensions": ["visit:country"]},
    {"metrics": ["visitors", "pageviews"], "dimensions": ["time:day"]},
    {"metrics": ["visitors"], "dimensions": ["time:month", "event:name"]},
    # days of another time zone, no bucket: the end days' parts are computed from events
    {"metrics": ["visitors"], "dimensions": ["event:page"],
     "range": DateRange(date(2024, 5, 1), date(2024, 5, 2), "Asia/Tokyo")},
])
def test_unfiltered_event_metrics_read_the_rollups(args: dict[str, Any]) -> None:
    rng = args.pop("range", RANGE)
    plan = plan_query(build(SITE, rng, **args))
    assert [(p.name, p.reads) for p in plan.parts] == [("ev", "rollups")]
    assert [(p.name, p.reads) for p in without(plan, "rollups").parts] == [("ev", "events")]


@pytest.mark.parametrize("args", [
    {"metrics": ["visitors"], "filters": [["is", "event:page", ["/"]]]},  # a filter
    {"metrics": ["visitors"], "dimensions": ["event:page", "event:name"]},  # two dimensions
    {"metrics": ["visitors"], "dimensions": ["event:props:plan"]},  # not rolled
    {"metrics": ["visitors"], "dimensions": ["time:hour"]},  # finer than a day
    {"metrics": ["visitors"], "dimensions": ["time:day"],  # days of another time zone
     "range": DateRange(date(2024, 5, 1), date(2024, 5, 2), "Europe/Berlin")},
    {"metrics": ["visitors", "conversion_rate"]},  # not a sum over days
    {"metrics": ["visitors", "total_revenue"]},  # the rollups' revenue has no currency
])
def test_other_event_metrics_read_the_events(args: dict[str, Any]) -> None:
    rng = args.pop("range", RANGE)
    plan = plan_query(build(SITE, rng, **args))
    assert all(p.reads != "rollups" for p in plan.parts), plan.parts


def test_mixed_metrics_read_both_relations_joined_on_the_dimensions() -> None:
    plan = plan_query(q(metrics=["visitors", "visits"], dimensions=["visit:source"],
                        filters=[["is", "event:page", ["/a"]]]))
    assert [(p.name, p.reads, p.metrics) for p in plan.parts] == [
        ("ev", "events_with_session", ("visitors",)), ("se", "sessions", ("visits",))]
    assert plan.join == "full_outer_on_dimensions" and plan.shared_scan
    assert plan.sessions is not None and plan.sessions.overlap
    assert plan.sessions.attributes == ("referrer_source",)
    assert plan.sessions.flags == (cond("event:page", "/a"),)


def test_time_series_plan() -> None:
    plan = plan_query(build(SITE, DateRange(date(2024, 5, 1), date(2024, 5, 7), "Europe/Berlin"),
                            metrics=["visits"], dimensions=["time:week"], limit=3, offset=1))
    assert (plan.bucket, plan.tz, plan.zero_fill, plan.dimensions) == ("week", "Europe/Berlin", True,
                                                                       (None,))
    assert (plan.limit, plan.offset) == (3, 1)
    assert plan.parts[0].time_column == "start"


def test_plan_is_frozen() -> None:
    plan = plan_query(q())
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.limit = 5  # type: ignore[misc]


def test_repeated_event_condition_gives_the_same_visits(queries: Queries) -> None:
    """A repeated event condition under a session metric gets its own flag and answers the same."""
    once = [["is", "event:page", ["/"]]]
    twice = [["or", [["is", "event:page", ["/"]], ["is", "event:page", ["/"]]]],
             ["is", "event:page", ["/"]]]
    plan = plan_query(q(metrics=["visits"], filters=twice))
    assert plan.sessions is not None and len(plan.sessions.flags) == 3
    answers = [queries.query(SITE, metrics=["visits", "bounce_rate"], filters=f, start_date=DAY1,
                             end_date=DAY2).rows for f in (once, twice)]
    assert answers[0] == answers[1] and answers[0][0]["visits"] > 0


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_has_done_under_session_metrics_by_page(make_queries: Callable[..., Queries], engine: str) -> None:
    """Session metrics by event:page read the entry page, but a has_done's own event:page stays the
    page of the event done (the planner kept the has_done node as it was; rebuilt, its statement
    could not find it: a KeyError on both engines)."""
    if engine == "clickhouse":
        pytest.importorskip("chdb")
    events = [event("a", f"{DAY1} 10:00:00", path="/"), event("a", f"{DAY1} 10:05:00", path="/pricing"),
              event("a", f"{DAY1} 10:06:00", "signup", "/pricing"),
              event("b", f"{DAY1} 11:00:00", path="/pricing"),
              event("c", f"{DAY1} 12:00:00", path="/pricing"), event("c", f"{DAY1} 12:10:00", path="/docs"),
              event("c", f"{DAY1} 12:11:00", "signup", "/docs")]
    q = make_queries(events, engine=engine)

    def pages(*filters: Any) -> dict[str, tuple[int, float]]:
        rows = q.breakdown(SITE, "pages", metrics=["visitors", "bounce_rate"], filters=list(filters),
                           start_date=DAY1, end_date=DAY1).rows
        return {r["value"]: (r["visitors"], r["bounce_rate"]) for r in rows}

    assert pages() == {"/pricing": (3, 0.5), "/": (1, 0), "/docs": (1, 0)}
    assert pages(["has_done", ["is", "event:name", ["signup"]]]) == {
        "/pricing": (2, 0), "/": (1, 0), "/docs": (1, 0)}
    assert pages(["has_done", ["is", "event:page", ["/docs"]]]) == {"/pricing": (1, 0), "/docs": (1, 0)}
    assert pages(["has_not_done", ["is", "event:page", ["/docs"]]]) == {
        "/pricing": (2, 1.0), "/": (1, 0)}
