"""Filters: every operator, several values, negation, '(unknown)', case, nesting, event vs visit level,
Mallard strings, conversion rate; and Hypothesis: values are always bound, never SQL text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import duckdb
import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._errors import InvalidQueryError
from mallard._queries import Queries
from mallard._queries.builder import compile_query
from mallard._queries.filters import Condition, Logic, Not, compile_condition, parse, parse_string
from mallard._queries.model import build
from mallard._queries.periods import DateRange
from mallard._queries.registry import dimension
from mallard._queries.sessions import relation
from mallard._queries.sql import Sql
from mallard._store.lake import to_table

from . import strategies as s
from .data import DAY1, DAY2, SITE, event
from .test_registry import approx

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}


def counts(q: Queries, filters: Any, metrics: tuple[str, ...] = ("visitors", "events")) -> tuple[Any, ...]:
    row = q.query(SITE, metrics=list(metrics), filters=filters, **BOTH_DAYS).rows[0]
    return tuple(row[m] for m in metrics)


# -- operators on the shared dataset (visitors, events) -----------------------------------------
@pytest.mark.parametrize(("condition", "expected"), [
    (["is", "event:page", ["/pricing"]], (3, 3)),  # a2 b1 d3 (ids a b d2)
    (["is", "event:page", ["/pricing", "/docs"]], (3, 4)),  # + a3
    (["is", "event:page", ["/nowhere"]], (0, 0)),
    (["is_not", "event:page", ["/"]], (5, 11)),  # all but a1 d1 e1; visitor d1 had only "/"
    (["is_not", "event:page", ["/", "/pricing", "/a"]], (5, 6)),  # a3 b3 c1 d2 e2 e3
    (["contains", "event:page", ["pri"]], (3, 3)),
    (["contains", "event:page", ["/x", "/y"]], (1, 2)),
    (["contains_not", "event:page", ["/"]], (0, 0)),
    (["contains_not", "event:page", ["a"]], (6, 11)),  # drops /a (b2 c2) and /about (d2)
    (["matches", "event:page", ["^/(x|y)$"]], (1, 2)),
    (["matches", "event:page", ["^/a"]], (3, 3)),  # /a (b2 c2), /about (d2)
    (["matches", "event:page", ["^/d", "^/f"]], (2, 2)),  # /docs, /files
    (["matches_not", "event:page", ["^/"]], (0, 0)),
    (["matches_not", "event:page", ["s$"]], (6, 12)),  # drops /docs (a3) and /files (c1)
    (["is", "event:name", ["signup", "download"]], (2, 3)),
    (["is", "event:props:plan", ["free"]], (1, 2)),
    (["is", "event:props:plan", ["(unknown)"]], (5, 11)),
    (["is_not", "event:props:plan", ["(unknown)"]], (2, 3)),
    (["is", "visit:region", ["(unknown)"]], (1, 2)),  # c
    (["is", "visit:region", ["(none)"]], (1, 2)),  # the other spelling
    (["is", "visit:region", ["Berlin", "(unknown)"]], (4, 8)),  # a d1 d2 c
    (["is_not", "visit:region", ["(unknown)"]], (5, 12)),
    (["is_not", "visit:region", ["Berlin"]], (3, 8)),  # NULL region (c) is "not Berlin"
    (["contains", "visit:region", ["(unknown)"]], (0, 0)),  # only is/is_not read it as NULL
    (["contains_not", "visit:region", ["erl"]], (3, 8)),  # California and NULL
    (["matches_not", "visit:region", ["^B"]], (3, 8)),
    (["is", "visit:screen", [1920, 390]], (4, 8)),  # numbers are compared as text: a d1 d2 c
])
def test_operator(queries: Queries, condition: list[Any], expected: tuple[int, int]) -> None:
    assert counts(queries, [condition]) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    (["is", "visit:browser", ["firefox"]], (0, 0)),
    (["is", "visit:browser", ["firefox"], {"case_sensitive": False}], (3, 6)),
    (["is", "visit:browser", ["FIREFOX", "safari"], {"case_sensitive": False}], (4, 8)),
    (["is_not", "visit:browser", ["FIREFOX"], {"case_sensitive": False}], (3, 8)),
    (["contains", "visit:browser", ["FIRE"], {"case_sensitive": False}], (3, 6)),
    (["contains_not", "visit:browser", ["FIRE"], {"case_sensitive": False}], (3, 8)),
    (["matches", "visit:browser", ["^fire"], {"case_sensitive": False}], (3, 6)),
    (["matches", "visit:browser", ["^fire"]], (0, 0)),
    (["matches_not", "visit:browser", ["^FIRE"], {"case_sensitive": False}], (3, 8)),
    (["is", "visit:region", ["(UNKNOWN)"], {"case_sensitive": False}], (0, 0)),  # a value, not NULL
    (["is", "visit:browser", ["(unknown)"], {"case_sensitive": False}], (0, 0)),
])
def test_case_sensitivity(queries: Queries, condition: list[Any], expected: tuple[int, int]) -> None:
    assert counts(queries, [condition]) == expected


@pytest.mark.parametrize("city", ["İstanbul", "ΑΘΗΝΑΣ", "STRASSE", "Straße", "ǅemal"])
def test_case_insensitive_is_agrees_with_the_column_folding(make_queries: Callable[..., Queries],
                                                             city: str) -> None:
    """A value matches itself case-insensitively, whatever Python's and DuckDB's lower() make of it."""
    q = make_queries([event("v", f"{DAY1} 10:00:00", city=city)])
    for op in ("is", "contains"):
        assert counts(q, [[op, "visit:city", [city], {"case_sensitive": False}]]) == (1, 1), op
        if len(city.upper()) == len(city):  # not "STRASSE"
            assert counts(q, [[op, "visit:city", [city.upper()], {"case_sensitive": False}]]) == (1, 1), op
    assert counts(q, [["is_not", "visit:city", [city], {"case_sensitive": False}]]) == (0, 0)


def test_nested_and_or_not(queries: Queries) -> None:
    # FR (c1 c2) or (Chrome and not "/"): b1 b2 b3 e2 e3
    tree = ["or", [["is", "visit:country", ["FR"]],
                   ["and", [["is", "visit:browser", ["Chrome"]], ["not", ["is", "event:page", ["/"]]]]]]]
    assert counts(queries, [tree]) == (3, 7)
    # a top-level list is an "and": Firefox and not (pricing or docs): a1 d1 d2
    assert counts(queries, [["is", "visit:browser", ["Firefox"]],
                            ["not", ["or", [["is", "event:page", ["/pricing"]],
                                            ["contains", "event:page", ["doc"]]]]]]) == (3, 3)
    assert counts(queries, [["not", ["not", ["is", "event:page", ["/x"]]]]]) == (1, 1)


# -- event level vs visit level ------------------------------------------------------------------
SESSION_METRICS = ("visits", "bounce_rate", "visit_duration")


@pytest.mark.parametrize(("filters", "expected"), [
    # sessions containing a signup: B (300 s) and C (600 s)
    ([["is", "event:name", ["signup"]]], (2, 0.0, 450.0)),
    # sessions containing a page other than "/": all but E1
    ([["is_not", "event:page", ["/"]]], (6, approx(1 / 6), 750.0)),
    # sessions without any "/" pageview: A2 B C E2
    ([["not", ["is", "event:page", ["/"]]]], (4, 0.25, 225.0)),
    # plan=free only on c's events: C
    ([["is", "event:props:plan", ["free"]]], (1, 0.0, 600.0)),
    # visit level: source of the first event; a2's "Twitter" is not a session source
    ([["is", "visit:source", ["Google"]]], (2, 0.0, 1800.0)),
    ([["is", "visit:source", ["Twitter"]]], (0, 0.0, 0.0)),
    ([["is", "visit:source", ["(unknown)"]]], (3, approx(2 / 3), 0.0)),
    ([["is", "visit:entry_page", ["/"]]], (3, approx(1 / 3), 1200.0)),
    ([["is", "visit:exit_page", ["/pricing"]], ["is", "visit:browser", ["Firefox"]]], (2, 0.0, 1800.0)),
    # mixed: Google sessions that contain /about: D
    ([["is", "visit:source", ["Google"]], ["is", "event:page", ["/about"]]], (1, 0.0, 1800.0)),
    ([["or", [["is", "visit:source", ["Bing"]], ["is", "event:page", ["/y"]]]]], (2, 0.0, 150.0)),
])
def test_filters_on_session_metrics(queries: Queries, filters: Any, expected: tuple[Any, ...]) -> None:
    assert counts(queries, filters, SESSION_METRICS) == expected


@pytest.mark.parametrize(("filters", "expected"), [
    # events of sessions whose source is Google: A1 (a1 a2) and D (d1 d2 d3)
    ([["is", "visit:source", ["Google"]]], (3, 5, 5)),
    ([["not", ["is", "visit:source", ["Google"]]]], (4, 6, 9)),  # a(A2) b c e
    ([["is", "visit:utm_source", ["newsletter"]]], (1, 2, 2)),  # a2 has utm_source tw, counted via A1
    ([["is", "visit:utm_source", ["tw"]]], (0, 0, 0)),
    ([["is", "visit:referrer", ["https://www.bing.com/"]]], (1, 2, 3)),  # b1 b2 b3 (b2's own is a.example)
    ([["is", "visit:entry_page", ["/"]]], (4, 6, 6)),
    ([["is", "visit:exit_page", ["(unknown)"]]], (1, 0, 2)),  # C
    ([["is", "visit:source", ["Google"]], ["is", "event:page", ["/pricing"]]], (2, 2, 2)),  # a2 d3
])
def test_visit_filters_on_event_metrics(queries: Queries, filters: Any, expected: tuple[int, ...]) -> None:
    assert counts(queries, filters, ("visitors", "pageviews", "events")) == expected


# -- Mallard-style strings -----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("page==/a;browser!=Chrome", (1, 1)),  # c2
    ("pages==/a;browsers!=Chrome", (1, 1)),
    (" page == /pricing ; ", (3, 3)),
    ("page~=pric", (3, 3)),
    ("country==DE;page!=/", (2, 4)),  # a2 a3 d2 d3 (ids a d2)
    ("region==(unknown)", (1, 2)),
    ("region!=(unknown)", (5, 12)),
    ("source==Google", (3, 5)),
    ("utm_source==newsletter", (1, 2)),
    ("entry_page==/docs", (1, 1)),
    ("event==signup", (2, 2)),
    ("visit:device==mobile", (1, 2)),
    ("event:props:plan==pro", (1, 1)),
    ("page==a==b", (0, 0)),  # the value is "a==b"
    ("", (6, 14)),
])
def test_mallard_filter_strings(queries: Queries, text: str, expected: tuple[int, int]) -> None:
    assert counts(queries, text) == expected


def test_mallard_strings_on_session_metrics(queries: Queries) -> None:
    """Event conditions keep sessions containing a matching event: C holds /a and is not Chrome."""
    assert counts(queries, "page==/a;browser!=Chrome", ("visits",)) == (1,)


def test_mallard_string_parsing() -> None:
    parsed = parse_string("page==/a;browser!=Chrome;source~=Goo")
    assert isinstance(parsed, Logic) and parsed.op == "and"
    assert [(c.op, c.dimension.name, c.values) for c in parsed.children if isinstance(c, Condition)] == [
        ("is", "event:page", ("/a",)), ("is_not", "visit:browser", ("Chrome",)),
        ("contains", "visit:source", ("Goo",))]
    assert parse_string(" ; ;") is None
    single = parse_string("page!=x==y")  # '!=' is found before '=='
    assert isinstance(single, Condition) and (single.op, single.values) == ("is_not", ("x==y",))


@pytest.mark.parametrize(("text", "message"), [
    ("page", "Invalid filter 'page': use dimension==value"),
    ("page=/a", "Invalid filter"),
    ("nope==1", "Unknown dimension 'nope'"),
    ("==x", "Unknown dimension ''"),
])
def test_bad_mallard_strings(text: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        parse_string(text)


def test_filter_json_round_trip() -> None:
    body = ["and", [["is", "visit:country", ["DE", "(unknown)"]],
                    ["not", ["matches", "event:page", ["^/b"], {"case_sensitive": False}]]]]
    tree = parse(body)
    assert tree is not None and tree.to_json() == body
    assert parse([]) is None and parse(None) is None


# -- conversion rate -----------------------------------------------------------------------------
@pytest.mark.parametrize(("filters", "dims", "expected"), [
    # signup visitors b c of 6
    ([["is", "event:name", ["signup"]]], [], [(2, approx(2 / 6))]),
    # plan=pro: b of 6
    ([["is", "event:props:plan", ["pro"]]], [], [(1, approx(1 / 6))]),
    # US visitors b e; signup among them: b → 1 of 2
    ([["is", "event:name", ["signup"]], ["is", "visit:country", ["US"]]], [], [(1, 0.5)]),
    # not-signup: the goal filter is dropped from the total
    ([["not", ["is", "event:name", ["signup"]]]], [], [(6, 1.0)]),
    # per event name, against all 6 visitors
    (None, ["event:name"], [(5, approx(5 / 6)), (2, approx(2 / 6)), (1, approx(1 / 6))]),
    # by session source: b's signup came in through Bing, c's through DuckDuckGo
    ([["is", "event:name", ["signup"]]], ["visit:source"], [(1, approx(1 / 6)), (1, approx(1 / 6))]),
])
def test_conversion_rate(queries: Queries, filters: Any, dims: list[str],
                         expected: list[tuple[int, Any]]) -> None:
    rows = queries.query(SITE, metrics=["visitors", "conversion_rate"], dimensions=dims, filters=filters,
                         **BOTH_DAYS).rows
    assert [(r["visitors"], r["conversion_rate"]) for r in rows] == expected


# -- values are bound, never SQL -----------------------------------------------------------------
RANGE = DateRange(date(2024, 5, 1), date(2024, 5, 1))


def _compile(filters: Any, metrics: list[str]) -> Sql:
    query = build(SITE, RANGE, metrics=metrics, filters=filters)
    return compile_query(query, source=Sql("SELECT * FROM t"),
                         sessions=relation(1800, Sql("SELECT * FROM t"))).sql


def test_injection_is_a_value(make_queries: Callable[..., Queries]) -> None:
    nasty = "'; DROP TABLE events; --"
    sql = _compile([["is", "event:page", [nasty]], ["contains", "visit:source", [nasty]],
                    ["matches", "event:props:plan", [re2.escape(nasty)]]], ["visitors", "visits"])
    assert "DROP" not in sql.text and nasty in sql.params
    q = make_queries([event("v", f"{DAY1} 10:00:00", path=nasty, referrer_source=nasty,
                            props={"plan": nasty}), event("w", f"{DAY1} 10:00:00", path="/")])
    assert counts(q, [["is", "event:page", [nasty]]]) == (1, 1)
    assert counts(q, [["contains", "visit:source", ["DROP TABLE"]]]) == (1, 1)
    assert counts(q, [["is", "event:props:plan", [nasty]]]) == (1, 1)
    assert counts(q, [["is_not", "event:page", [nasty]]]) == (1, 1)


def test_compile_condition_binds_every_value() -> None:
    cond = Condition("is", dimension("event:page"), ("a", "(unknown)", "b"), case_sensitive=False)
    sql = compile_condition(cond, Sql("pathname"))
    assert sql.params == ("a", "b") and "'" not in sql.text
    assert "IS NULL" in sql.text


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


def _run(con: duckdb.DuckDBPyConnection, rows: list[s.Row], filters: Any, metrics: list[str]) -> list[Any]:
    sql = _compile(filters, metrics)
    con.register("t", to_table([r.event() for r in rows]))
    try:
        result = con.execute(sql.text, list(sql.params)).fetchall()
    finally:
        con.unregister("t")
    assert len(result) == 1
    return list(result[0][:-1])  # without total_rows


@st.composite
def rows_and_filter(draw: st.DrawFn) -> tuple[list[s.Row], Any]:
    rows = draw(s.rows())
    return rows, draw(s.filters(s.pool_of(rows)))


def _check_sql_text(node: Any, metrics: list[str]) -> None:
    sql = _compile([node], metrics)
    assert sql.text == _compile([s.placeholders(node)], metrics).text  # the text never depends on values
    for value in s.values_of(node):
        if value not in s.NULL_VALUES:
            assert value in sql.params


HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@HYPOTHESIS
@given(rows_and_filter())
def test_event_filters_match_the_reference(duck: duckdb.DuckDBPyConnection,
                                           case: tuple[list[s.Row], Any]) -> None:
    rows, filters = case
    metrics = ["visitors", "events", "pageviews"]
    _check_sql_text(filters, metrics)
    expected = s.reference_event_metrics(rows, filters)
    assert _run(duck, rows, [filters], metrics) == [expected[m] for m in metrics]


@pytest.mark.slow
@HYPOTHESIS
@given(rows_and_filter())
def test_session_filters_match_the_reference(duck: duckdb.DuckDBPyConnection,
                                             case: tuple[list[s.Row], Any]) -> None:
    rows, filters = case
    _check_sql_text(filters, ["visits"])
    assert _run(duck, rows, [filters], ["visits"]) == [s.reference_visits(rows, filters)]


def test_reference_sessions_agree_with_sql(duck: duckdb.DuckDBPyConnection) -> None:
    """The reference's own sessionisation, checked once on hand-made gaps (exactly 30 min, +1 µs)."""
    rows = [s.Row("v", s.BASE, "pageview", "/", None, None),
            s.Row("v", s.BASE.replace(minute=30), "pageview", "/", None, None),
            s.Row("v", s.BASE.replace(hour=1, microsecond=1), "pageview", "/", None, None)]
    always = ["is_not", "event:page", ["-"]]
    assert len(s.sessions(rows)) == 2 == _run(duck, rows, [always], ["visits"])[0]


def test_not_is_different_from_is_not_on_sessions(queries: Queries) -> None:
    """is_not: some event differs; not(is): no event matches."""
    assert counts(queries, [["is_not", "event:page", ["/"]]], ("visits",)) == (6,)
    assert counts(queries, [["not", ["is", "event:page", ["/"]]]], ("visits",)) == (4,)
    assert isinstance(parse(["not", ["is", "event:page", ["/"]]]), Not)
