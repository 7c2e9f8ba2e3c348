"""parse_query: Plausible Stats API v2 request bodies → Query, or InvalidQueryError with a useful message."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from mallard._errors import InvalidQueryError
from mallard._queries.filters import Condition, Logic, Not
from mallard._queries.model import MAX_LIMIT, Query, build, parse_query
from mallard._queries.periods import DateRange
from mallard._queries.registry import DIMENSIONS, METRICS

TODAY = date(2024, 5, 2)


def parse(body: dict[str, Any], **kwargs: Any) -> Query:
    options: dict[str, Any] = {"today": TODAY, "tz": "UTC", "first_day": date(2024, 1, 15), **kwargs}
    return parse_query(body, **options)


def check_ok(body: dict[str, Any], expected: dict[str, Any], **kwargs: Any) -> Query:
    """Parse ``{"site_id": "example.com", **body}`` and compare the named fields of the Query."""
    query = parse({"site_id": "example.com", **body}, **kwargs)
    for name, value in expected.items():
        assert getattr(query, name) == value, name
    return query


def check_error(body: dict[str, Any], message: str, code: str | None = None, **kwargs: Any) -> str:
    """Parsing ``{"site_id": "example.com", "metrics": ["visitors"], **body}`` fails with ``message``."""
    with pytest.raises(InvalidQueryError) as info:
        parse({"site_id": "example.com", "metrics": ["visitors"], **body}, **kwargs)
    assert message in info.value.message
    if code is not None:
        assert info.value.code == code
    return info.value.message


# -- accepted ------------------------------------------------------------------------------------
def test_minimal_body_defaults() -> None:
    """Only site and metrics: the 30 days before today, no dimensions, no filters, limit 10,000, offset 0."""
    check_ok({"metrics": ["visitors"]}, {
        "site_id": "example.com", "metrics": ("visitors",), "dimensions": (), "filters": None,
        "date_range": DateRange(date(2024, 4, 2), date(2024, 5, 1), "UTC"), "order_by": (),
        "limit": 10_000, "offset": 0,
    })


@pytest.mark.parametrize(("date_range", "start", "end"), [
    ("day", TODAY, TODAY),
    ("7d", date(2024, 4, 25), date(2024, 5, 1)),  # Plausible: the 7 days before today
    ("30d", date(2024, 4, 2), date(2024, 5, 1)),
    ("12mo", date(2023, 5, 1), date(2024, 4, 30)),  # the 12 calendar months before this one
    ("month", date(2024, 5, 1), date(2024, 5, 31)),  # the whole calendar month
    ("year", date(2024, 1, 1), date(2024, 12, 31)),
    ("all", date(2024, 1, 15), TODAY),
    (["2024-02-01", "2024-02-29"], date(2024, 2, 1), date(2024, 2, 29)),
])
def test_date_ranges(date_range: Any, start: date, end: date) -> None:
    """Period names as Plausible counts them and explicit [start, end] dates."""
    check_ok({"metrics": ["visitors"], "date_range": date_range},
             {"date_range": DateRange(start, end, "UTC")})


def test_datetime_range_is_exact() -> None:
    """A [datetime, datetime] pair is an exact span (its end second included), not the dates around it."""
    check_ok({"metrics": ["visitors"], "date_range": ["2024-02-01T00:00:00Z", "2024-02-29T23:59:59+01:00"]},
             {"date_range": DateRange(date(2024, 2, 1), date(2024, 2, 29), "UTC",
                                      (datetime(2024, 2, 1), datetime(2024, 2, 29, 23)))})


def test_timezone_from_body_overrides_default() -> None:
    """The body's timezone wins over the site default and is carried in the date range."""
    query = check_ok({"metrics": ["visitors"], "date_range": "day", "timezone": "Europe/Berlin"}, {},
                     tz="America/New_York")
    assert query.date_range == DateRange(TODAY, TODAY, "Europe/Berlin")


def test_every_metric_and_dimension_is_accepted() -> None:
    """All registry names in one query (session metrics need visit dimensions only)."""
    visit_dims = [d for d, dim in DIMENSIONS.items() if dim.level == "visit"]
    check_ok({"metrics": list(METRICS), "dimensions": visit_dims[:3]},
             {"metrics": tuple(METRICS), "dimensions": tuple(visit_dims[:3])})


def test_breakdown_slugs_and_time_are_normalised() -> None:
    """Slugs resolve to query-model names; ``time`` is hourly for ≤ 2 days, daily otherwise."""
    check_ok({"metrics": ["visitors"], "dimensions": ["pages", "utm_sources", "time"], "date_range": "day"},
             {"dimensions": ("event:page", "visit:utm_source", "time:hour")})
    check_ok({"metrics": ["visitors"], "dimensions": ["time"], "date_range": "7d"},
             {"dimensions": ("time:day",)})


def test_filters_order_and_pagination() -> None:
    """A filter list becomes an ``and``; order_by and pagination are kept."""
    query = check_ok({
        "metrics": ["visitors", "pageviews"], "dimensions": ["event:page"],
        "filters": [["is", "visit:country", ["DE"]], ["not", ["contains", "event:page", ["/blog"],
                                                               {"case_sensitive": False}]]],
        "order_by": [["pageviews", "asc"], ["event:page", "desc"]],
        "pagination": {"limit": 5, "offset": 10},
    }, {"order_by": (("pageviews", "asc"), ("event:page", "desc")), "limit": 5, "offset": 10})
    assert isinstance(query.filters, Logic) and query.filters.op == "and"
    first, second = query.filters.children
    assert isinstance(first, Condition) and first.values == ("DE",)
    assert isinstance(second, Not) and isinstance(second.child, Condition)
    assert second.child.case_sensitive is False


def test_to_json_round_trips() -> None:
    """Query.to_json() is a body that parses back to the same Query."""
    query = check_ok({
        "metrics": ["visitors", "bounce_rate"], "dimensions": ["visit:source"],
        "date_range": ["2024-04-01", "2024-04-30"], "timezone": "Europe/Berlin",
        "filters": [["or", [["is", "visit:country", ["DE", "AT"]], ["matches", "visit:city", ["^B"]]]]],
        "order_by": [["visitors", "desc"]], "pagination": {"limit": 3, "offset": 1},
    }, {})
    assert parse(query.to_json()) == query


def test_build_accepts_a_filter_tree_and_string() -> None:
    """build() takes parsed trees and Mallard strings as well as the v2 list."""
    rng = DateRange(TODAY, TODAY)
    tree = Condition("is", DIMENSIONS["event:page"], ("/",))
    assert build("example.com", rng, filters=tree).filters == tree
    assert build("example.com", rng, filters="pages==/").filters == tree


# -- rejected ------------------------------------------------------------------------------------
def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidQueryError, match="JSON object"):
        parse_query(["visitors"], today=TODAY, tz="UTC", first_day=None)


def test_unknown_metric_lists_valid_names() -> None:
    message = check_error({"metrics": ["vistors"]}, "Unknown metric 'vistors'", "invalid_metric")
    for name in METRICS:
        assert name in message


def test_unknown_dimension_lists_valid_names() -> None:
    message = check_error({"dimensions": ["visit:sorce"]}, "Unknown dimension 'visit:sorce'",
                          "invalid_dimension")
    for name in [*DIMENSIONS, "pages", "entry-pages", "utm-campaigns", "time:day"]:
        assert name in message


@pytest.mark.parametrize(("body", "message", "code"), [
    ({"metrics": []}, "non-empty list of metric names", "invalid_metric"),
    ({"metrics": "visitors"}, "non-empty list of metric names", "invalid_metric"),
    ({"metrics": ["visitors", 1]}, "non-empty list of metric names", "invalid_metric"),
    ({"metrics": ["visitors", "visitors"]}, "must not repeat", "invalid_metric"),
    ({"dimensions": "event:page"}, "list of dimension names", "invalid_dimension"),
    ({"dimensions": ["pages", "event:page"]}, "must not repeat", "invalid_dimension"),
    ({"dimensions": ["time:day", "time:hour"]}, "At most one time dimension", "invalid_dimension"),
    ({"dimensions": ["time:minute"]}, "Unknown dimension", "invalid_dimension"),
    ({"dimensions": ["event:props:"]}, "Custom property keys", "invalid_dimension"),
    ({"dimensions": ["event:props:a\"b"]}, "Custom property keys", "invalid_dimension"),
    ({"site_id": ""}, "site_id must not be empty", "invalid_site_id"),
    ({"site_id": "../etc"}, "site_id may only contain", "invalid_site_id"),
    ({"site_id": None}, "site_id must not be empty", "invalid_site_id"),
    ({"colour": "red", "metric": ["visitors"]}, "Unknown query key(s): colour, metric. Valid keys:",
     "invalid_query"),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'", "invalid_timezone"),
    ({"timezone": "../../etc/passwd"}, "Unknown time zone", "invalid_timezone"),
    ({"timezone": 1}, "timezone must be a string", "invalid_query"),
])
def test_rejected_bodies(body: dict[str, Any], message: str, code: str) -> None:
    check_error(body, message, code)


@pytest.mark.parametrize(("date_range", "message", "code"), [
    ("fortnight", "Invalid period: fortnight", "invalid_period"),
    ("", "period name or [start_date, end_date]", "invalid_period"),
    (7, "period name or [start_date, end_date]", "invalid_period"),
    (["2024-05-01"], "period name or [start_date, end_date]", "invalid_period"),
    (["2024-05-01", "2024-05-02", "2024-05-03"], "period name or [start_date, end_date]",
     "invalid_period"),
    (["2024-05-01", None], "period name or [start_date, end_date]", "invalid_period"),
    (["2024-5-1", "2024-05-02"], "Invalid start_date format", "invalid_date"),
    (["2024-05-01", "2024-02-30"], "Invalid end_date format", "invalid_date"),
    (["yesterday", "today"], "Invalid start_date format", "invalid_date"),
    (["2024-05-01garbage", "2024-05-02"], "Invalid start_date", "invalid_date"),
    (["2024-05-01", "2024-05-02 or so"], "Invalid end_date", "invalid_date"),
    (["2024-05-02", "2024-05-01"], "end_date must be on or after start_date", "invalid_range"),
])
def test_bad_date_range(date_range: Any, message: str, code: str) -> None:
    check_error({"date_range": date_range}, message, code)


def test_max_days_bounds_explicit_ranges() -> None:
    """With max_days=366: end − start may be 366 days (a leap year, inclusive), not 367."""
    ok = ["2024-01-01", "2025-01-01"]  # 366 days apart
    check_ok({"metrics": ["visitors"], "date_range": ok}, {}, max_days=366)
    check_error({"date_range": ["2024-01-01", "2025-01-02"]}, "must not exceed 366 days",
                "range_too_long", max_days=366)
    check_ok({"metrics": ["visitors"], "date_range": ["2020-01-01", "2025-01-02"]}, {})  # no bound


@pytest.mark.parametrize(("pagination", "message"), [
    ({"limit": 0}, f"limit must be between 1 and {MAX_LIMIT}"),
    ({"limit": MAX_LIMIT + 1}, f"limit must be between 1 and {MAX_LIMIT}"),
    ({"limit": -1}, "limit must be between"),
    ({"limit": "10"}, "limit must be between"),
    ({"limit": True}, "limit must be between"),
    ({"limit": 2.5}, "limit must be between"),
    ({"offset": -1}, "offset must be a non-negative integer"),
    ({"offset": "1"}, "offset must be a non-negative integer"),
    ({"offset": False}, "offset must be a non-negative integer"),
])
def test_bad_pagination(pagination: dict[str, Any], message: str) -> None:
    check_error({"pagination": pagination}, message, "invalid_limit")


def test_pagination_must_be_an_object() -> None:
    check_error({"pagination": [10, 0]}, "pagination must be an object", "invalid_limit")


@pytest.mark.parametrize("pagination", [[], 0, False, ""], ids=["empty list", "zero", "false", "empty"])
def test_empty_non_object_pagination_is_refused(pagination: Any) -> None:
    """Regression (schemathesis): a falsy pagination that is not an object was taken as absent."""
    check_error({"pagination": pagination}, "pagination must be an object", "invalid_limit")


@pytest.mark.parametrize("zone", [{}, [], 0, False], ids=["empty object", "empty list", "zero", "false"])
def test_empty_non_string_timezone_is_refused(zone: Any) -> None:
    """Regression (schemathesis): a falsy timezone that is not a string was taken as absent."""
    check_error({"timezone": zone}, "timezone must be a string", "invalid_query")


def test_null_or_empty_timezone_and_null_pagination_are_defaults() -> None:
    check_ok({"metrics": ["visitors"], "timezone": None, "pagination": None},
             {"limit": 10_000, "offset": 0})
    assert parse({"site_id": "example.com", "metrics": ["visitors"], "timezone": ""}).date_range.tz == "UTC"


@pytest.mark.parametrize(("order_by", "message"), [
    ("visitors", "order_by must be a list"),
    ([["visitors"]], "order_by entries are [name, 'asc'|'desc']"),
    ([["visitors", "up"]], "order_by entries are"),
    (["visitors"], "order_by entries are"),
    ([["pageviews", "desc"]], "Cannot order by 'pageviews'"),
    ([["event:page", "asc"]], "Cannot order by 'event:page'"),
])
def test_bad_order_by(order_by: Any, message: str) -> None:
    check_error({"order_by": order_by}, message, "invalid_order")


@pytest.mark.parametrize(("filters", "message"), [
    ([["equals", "event:page", ["/"]]], "Unknown filter operator 'equals'"),
    ([["is", "event:page", []]], "A filter needs 1 to 100 values"),
    ([["is", "event:page", ["/"] * 101]], "A filter needs 1 to 100 values"),
    ([["is", "event:page", [None]]], "Filter values must be strings or numbers"),
    ([["is", "event:page", [True]]], "Filter values must be strings or numbers"),
    ([["is", "event:page", ["x" * 2049]]], "at most 2048 characters"),
    ([["is", "event:page"]], "expected [operator, dimension, [values]]"),
    ([["is", 1, ["/"]]], "expected [operator, dimension, [values]]"),
    ([["is", "event:page", ["/"], {"case": False}]], "case_sensitive"),
    ([["is", "event:page", ["/"], {"case_sensitive": "no"}]], "case_sensitive"),
    ([["matches", "event:page", ["(unclosed"]]], "Invalid regular expression '(unclosed'"),
    ([["matches_not", "event:page", ["a", "(?<=x)y"]]], "Invalid regular expression '(?<=x)y'"),
    ([["and", []]], "'and' takes a non-empty list of filters"),
    ([["or", ["is", "event:page", ["/"]]]], "Invalid filter"),
    ([["not", ["is", "event:page", ["/"]], ["is", "event:page", ["/"]]]], "'not' takes exactly one"),
    ([[]], "Invalid filter"),
    ("pages", "Invalid filter 'pages'"),
])
def test_bad_filters(filters: Any, message: str) -> None:
    check_error({"filters": filters}, message, "invalid_filter")


def _nested(depth: int) -> list[Any]:
    node: list[Any] = ["is", "event:page", ["/"]]
    for _ in range(depth - 1):
        node = ["not", node]
    return node


def test_filter_on_unknown_dimension() -> None:
    check_error({"filters": [["is", "event:pgae", ["/"]]]}, "Unknown dimension 'event:pgae'",
                "invalid_dimension")


def test_filter_depth_limit() -> None:
    """Eight levels of nesting are accepted, nine are not."""
    check_ok({"metrics": ["visitors"], "filters": [_nested(8)]}, {})
    check_error({"filters": [_nested(9)]}, "nested at most 8 deep")


def test_filter_count_limit() -> None:
    """Fifty conditions are accepted, fifty-one are not (in the v2 list and in Mallard strings)."""
    fifty = [["is", "event:page", [f"/{i}"]] for i in range(50)]
    check_ok({"metrics": ["visitors"], "filters": fifty}, {})
    check_error({"filters": [*fifty, ["is", "event:page", ["/x"]]]}, "At most 50 filter conditions")
    check_error({"filters": ";".join(f"pages==/{i}" for i in range(51))}, "At most 50 filter conditions")
