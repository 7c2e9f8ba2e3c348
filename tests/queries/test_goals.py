"""event:goal (filter and dimension), conversion_rate, group_conversion_rate and saved segments, with
every number checked against SQL written here over the Parquet files the test wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mallard._errors import InvalidQueryError
from mallard._queries import Queries

from .data import DAY1, DAY2, SITE, dataset, event

RANGE: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}
# Regular expressions of the SQL oracle below (written out, not taken from mallard)
GOALS_SQL = {
    "signup": "event_name = 'signup'",
    "Visit /pri*": "event_name = 'pageview' AND regexp_matches(pathname, '^/pri.*$')",
    "Visit /": "event_name = 'pageview' AND pathname = '/'",
    "Docs or about": "event_name = 'pageview' AND regexp_matches(pathname, '^/docs.*$|^/about.*$')",
}


@pytest.fixture()
def lake_queries(make_queries: Callable[..., Queries]) -> Queries:
    events = [*dataset(), event("f", f"{DAY2} 11:00:00", "pageview", "/pricing/team"),
              event("f", f"{DAY2} 11:01:00", "signup", "/pricing/team")]
    q = make_queries(events)
    q.goals.add(SITE, event_name="signup")
    q.goals.add(SITE, page_path="/pri*")
    q.goals.add(SITE, page_path="/")
    q.goals.add(SITE, page_path="/docs*|/about*", display_name="Docs or about")
    q.goals.add("other.test", event_name="download")  # another site's goal: never used here
    return q


def sql(q: Queries, text: str) -> list[tuple[Any, ...]]:
    """``text`` over the lake's Parquet files as view ``ev`` (the test's date range and site)."""
    data_dir: Path = q._store.data_dir
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{data_dir}/events/**/*.parquet', "
                    f"hive_partitioning = true) WHERE site_id = '{SITE}' AND timestamp >= '{DAY1}' "
                    f"AND timestamp < DATE '{DAY2}' + 1")
        return con.execute(text).fetchall()
    finally:
        con.close()


def test_goal_dimension_counts_each_goal_and_its_conversion_rate(lake_queries: Queries) -> None:
    rows = lake_queries.query(SITE, metrics=["visitors", "events", "conversion_rate"],
                              dimensions=["event:goal"], **RANGE).rows
    (total,), = sql(lake_queries, "SELECT count(DISTINCT visitor_id) FROM ev")
    expected = {}
    for name, cond in GOALS_SQL.items():
        (visitors, events), = sql(lake_queries, f"SELECT count(DISTINCT visitor_id), count(*) FROM ev "
                                                f"WHERE {cond}")
        if events:
            expected[name] = (visitors, events, visitors / total)
    assert {r["event:goal"]: (r["visitors"], r["events"], r["conversion_rate"]) for r in rows} == expected
    assert len(expected) == 4 and expected["Visit /pri*"][1] == 4  # /pricing ×3, /pricing/team


def test_goal_filter_keeps_events_that_completed_a_selected_goal(lake_queries: Queries) -> None:
    both = f"({GOALS_SQL['signup']}) OR ({GOALS_SQL['Visit /']})"
    for filters, where in [
        ([["is", "event:goal", ["signup", "Visit /"]]], both),
        ([["is_not", "event:goal", ["signup", "Visit /"]]], f"NOT ({both})"),
        ([["contains", "event:goal", ["VISIT"], {"case_sensitive": False}]],
         f"({GOALS_SQL['Visit /pri*']}) OR ({GOALS_SQL['Visit /']}) OR false"),
        ([["matches", "event:goal", ["^Docs"]], ["is", "visit:browser", ["Firefox"]]],
         f"({GOALS_SQL['Docs or about']}) AND browser = 'Firefox'"),
    ]:
        row = lake_queries.query(SITE, metrics=["visitors", "events"], filters=filters, **RANGE).rows[0]
        assert (row["visitors"], row["events"]) == sql(
            lake_queries, f"SELECT count(DISTINCT visitor_id), count(*) FROM ev WHERE {where}")[0], filters


def test_group_conversion_rate_divides_by_the_rows_group(lake_queries: Queries) -> None:
    rows = lake_queries.query(SITE, metrics=["visitors", "conversion_rate", "group_conversion_rate"],
                              dimensions=["visit:browser", "event:goal"],
                              filters=[["is", "event:goal", ["signup"]]], **RANGE).rows
    (total,), = sql(lake_queries, "SELECT count(DISTINCT visitor_id) FROM ev")
    by_browser = dict(sql(lake_queries, "SELECT coalesce(browser, '(unknown)'), count(DISTINCT visitor_id) "
                                        "FROM ev GROUP BY 1"))
    converted = sql(lake_queries, "SELECT coalesce(browser, '(unknown)'), count(DISTINCT visitor_id) FROM ev "
                                  f"WHERE {GOALS_SQL['signup']} GROUP BY 1")
    assert {(r["visit:browser"], r["event:goal"]): (r["visitors"], r["conversion_rate"],
                                                    r["group_conversion_rate"]) for r in rows} == {
        (b, "signup"): (n, n / total, n / by_browser[b]) for b, n in converted}


def test_session_metrics_with_a_goal_filter_count_converting_sessions(lake_queries: Queries) -> None:
    row = lake_queries.query(SITE, metrics=["visits", "visitors"],
                             filters=[["is", "event:goal", ["signup"]]], **RANGE).rows[0]
    # signup events: b (one session), c (one session), f (one session)
    assert row == {"visits": 3, "visitors": 3}


@pytest.mark.parametrize("op", ["has_done", "has_not_done"])
def test_goal_filters_work_in_the_analyses_that_compile_filters_themselves(lake_queries: Queries,
                                                                           op: str) -> None:
    """has_done / has_not_done an event goal in the property list, flow and retention (their selection
    reads the columns the goals' predicates read; it failed on a missing column) answers as the same
    filter on the event name the goal stands for."""
    for name in ("properties", "flow", "retention"):
        answers = []
        for child in (["is", "event:goal", ["signup"]], ["is", "event:name", ["signup"]]):
            filters = [[op, child]]
            if name == "properties":
                answers.append(lake_queries.properties(SITE, filters=filters, **RANGE).rows)
            elif name == "flow":
                answers.append(lake_queries.flow(SITE, "/", filters=filters, **RANGE).rows)
            else:
                answers.append(lake_queries.retention(SITE, weeks=1, filters=filters, **RANGE).rows)
        assert answers[0] == answers[1], name


def test_segments_stand_for_their_filters(lake_queries: Queries) -> None:
    de = lake_queries.goals.add_segment(SITE, "Firefox", [["is", "visit:browser", ["Firefox"]]])
    signup = lake_queries.goals.add_segment(SITE, "Signups", [["is", "event:goal", ["signup"]]])
    one = lake_queries.query(SITE, metrics=["visitors"], filters=[["is", "segment", [de.id]]], **RANGE)
    assert one.rows[0]["visitors"] == sql(
        lake_queries, "SELECT count(DISTINCT visitor_id) FROM ev WHERE browser = 'Firefox'")[0][0]
    assert one.to_dict()["query"]["filters"] == [["is", "segment", [str(de.id)]]]
    either = lake_queries.query(SITE, metrics=["visitors"],
                                filters=[["is", "segment", [de.id, signup.id]]], **RANGE)
    assert either.rows[0]["visitors"] == sql(
        lake_queries, "SELECT count(DISTINCT visitor_id) FROM ev WHERE browser = 'Firefox' OR "
                      f"{GOALS_SQL['signup']}")[0][0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"filters": [["is", "event:goal", ["Nope"]]]}, "The goal 'Nope' is not configured"),
    ({"filters": [["is", "event:goal", ["download"]]]}, "The goal 'download' is not configured"),
    ({"filters": [["is", "segment", [999]]]}, "Segment '999' does not exist"),
    ({"filters": [["is", "segment", ["x"]]]}, "Segment 'x' does not exist"),
    ({"filters": [["contains", "segment", ["1"]]]}, "Segments are filtered with 'is' only"),
    ({"filters": [["or", [["is", "event:goal", ["signup"]], ["is", "event:page", ["/"]]]]]},
     "can only be filtered at the top level"),
    ({"filters": [["not", ["is", "event:goal", ["signup"]]]]}, "can only be filtered at the top level"),
    ({"dimensions": ["event:goal"], "metrics": ["bounce_rate"]}, "describe visits"),
], ids=["unknown-goal", "other-sites-goal", "unknown-segment", "non-numeric-segment",
        "segment-operator", "goal-under-or", "goal-under-not", "session-metric-by-goal"])
def test_bad_goal_and_segment_queries_are_refused(lake_queries: Queries, kwargs: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        lake_queries.query(SITE, **{"metrics": ["visitors"], **kwargs}, **RANGE)


def test_a_site_without_goals_has_no_goal_rows(make_queries: Callable[..., Queries]) -> None:
    q = make_queries(dataset())
    assert q.query(SITE, metrics=["visitors"], dimensions=["event:goal"], **RANGE).rows == []


@pytest.mark.parametrize("filters", [None, [["is", "event:page", ["/pricing", "/"]]]], ids=["all", "pages"])
def test_percentage_is_each_rows_share_of_the_querys_visitors(lake_queries: Queries,
                                                              filters: Any) -> None:
    """Plausible's ``percentage``: a row's visitors over all the query's visitors, its filters applied
    (percent in the v2 body, a fraction in Python); a query without a dimension is refused."""
    where = "" if filters is None else "WHERE pathname IN ('/pricing', '/')"
    (total,), = sql(lake_queries, f"SELECT count(DISTINCT visitor_id) FROM ev {where}")
    expected = {page: visitors / total for page, visitors in sql(
        lake_queries, f"SELECT pathname, count(DISTINCT visitor_id) FROM ev {where} GROUP BY 1")}
    result = lake_queries.query(SITE, metrics=["visitors", "percentage"], dimensions=["event:page"],
                                filters=filters, **RANGE)
    assert {r["event:page"]: r["percentage"] for r in result.rows} == pytest.approx(expected)
    assert sum(r["visitors"] for r in result.rows) > total  # shares of distinct visitors overlap
    body = result.to_dict()
    assert [r["metrics"][1] for r in body["results"]] == pytest.approx(
        [100 * r["percentage"] for r in result.rows])
    with pytest.raises(InvalidQueryError, match="needs a dimension"):
        lake_queries.query(SITE, metrics=["percentage"], **RANGE)
