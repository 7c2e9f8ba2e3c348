"""Golden SQL: the exact text the builder writes for representative plans, so that a change in the
generated SQL shows up in review as a diff of ``tests/queries/golden/<case>.sql``.

Each golden file holds the query (as JSON), the SQL text and its bound parameters. After an intended
change of the generated SQL, regenerate the files and review the diff::

    MALLARD_UPDATE_GOLDEN=1 python -m pytest -q tests/queries/test_golden_sql.py

Every golden SQL also runs: DuckDB executes it over an empty relation with the lake's schema.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mallard._events import COLUMNS
from mallard._queries import engagement
from mallard._queries.builder import Compiled, build_sql
from mallard._queries.model import Query, build
from mallard._queries.periods import DateRange
from mallard._queries.planner import plan_query
from mallard._queries.plans import without
from mallard._queries.rollups import COLUMNS as ROLLUP_COLUMNS
from mallard._queries.sessions import COLUMNS as SESSION_COLUMNS
from mallard._queries.sql import Sql
from mallard._queries.visits import COLUMNS as VISIT_COLUMNS

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MALLARD_UPDATE_GOLDEN") == "1"
SOURCE = Sql("SELECT * FROM lake")
SESSIONS = Sql("SELECT * FROM session_lake")
ROLLUPS = Sql("SELECT * FROM rollup_lake")
VISITS = Sql("SELECT * FROM visit_lake")
RANGE = DateRange(date(2024, 5, 1), date(2024, 5, 2), "UTC")
ENGAGEMENT = engagement.rows(Sql("SELECT * FROM lake WHERE event_name = 'engagement'"), "example.com",
                             RANGE.bounds(), 1800)

# case name → (what the plan exercises, query arguments)
CASES: dict[str, dict[str, Any]] = {
    # unfiltered event metrics by an event dimension over whole days: the per-day rollups
    "event_metrics_only": {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]},
    # a daily series of event metrics (rollups) beside session metrics
    "rollup_series_and_sessions": {"metrics": ["visitors", "pageviews", "visits"],
                                   "dimensions": ["time:day"]},
    # event metrics by an event dimension, filtered: one scan of the events, nothing sessionised
    "event_metrics_filtered": {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"],
                               "filters": [["is", "visit:country", ["DE"]]]},
    # session metrics only: the sessions relation, no event part
    "session_metrics": {"metrics": ["visits", "bounce_rate", "visit_duration", "views_per_visit"]},
    # a visit dimension with event and session metrics: both parts, joined on the dimension
    "visit_dimension": {"metrics": ["visitors", "visits", "bounce_rate"],
                        "dimensions": ["visit:source"]},
    # a visit filter with an event metric by an event dimension: events joined to their session
    "visit_filter_event_metric": {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"],
                                  "filters": [["is", "visit:source", ["Google"]]]},
    # event metrics by a session attribute only: the per-day visit rows, filtered on their dimension
    "visit_rows": {"metrics": ["visitors", "pageviews", "events"], "dimensions": ["visit:source"],
                   "filters": [["is_not", "visit:source", ["Bing"]]]},
    # the same when the visit rows do not add up (planner.without): the session-sums shortcut
    "session_sums_shortcut": {"metrics": ["visitors", "pageviews"],
                              "dimensions": ["visit:entry_page"], "unvisited": True},
    # a time bucket in a time zone (zero-filled by Queries.run), event and session metrics
    "time_bucket_zero_fill": {"metrics": ["visitors", "visits"], "dimensions": ["time:day"],
                              "range": DateRange(date(2024, 5, 1), date(2024, 5, 7), "Europe/Berlin")},
    # a custom property dimension, paged
    "props_dimension": {"metrics": ["events"], "dimensions": ["event:props:plan"],
                        "limit": 10, "offset": 20},
    # a goal-like event filter with conversion_rate, and a session metric filtered per session
    "goal_event_filter": {"metrics": ["visitors", "conversion_rate", "visits"],
                          "filters": [["is", "event:name", ["signup"]],
                                      ["is", "visit:country", ["DE"]]],
                          "order_by": [["visitors", "desc"]]},
    # engagement metrics by page beside event metrics: the engagement part joined to the event part
    "engagement_by_page": {"metrics": ["visitors", "scroll_depth", "time_on_page"],
                           "dimensions": ["event:page"]},
    # event, session and engagement metrics of one page: three parts, joined on no dimension
    "engagement_three_parts": {"metrics": ["visitors", "visits", "scroll_depth"],
                               "filters": [["is", "event:page", ["/blog"]]]},
}


def _compiled(name: str) -> tuple[Query, Compiled]:
    args = dict(CASES[name])
    rng = args.pop("range", RANGE)
    fallback = args.pop("unvisited", False)
    query = build("example.com", rng, **args)
    plan = without(plan_query(query), "visits") if fallback else plan_query(query)
    return query, build_sql(plan, source=SOURCE, sessions=SESSIONS, rollups=ROLLUPS, engagement=ENGAGEMENT,
                            visits=VISITS)


def render(name: str) -> str:
    query, compiled = _compiled(name)
    params = "\n".join(f"--   {p!r}" for p in compiled.sql.params)
    return (f"-- golden SQL of tests/queries/test_golden_sql.py, case {name!r}\n"
            f"-- query: {json.dumps(query.to_json(), sort_keys=True)}\n"
            f"{compiled.sql.text}\n-- params:\n{params}\n")


@pytest.mark.parametrize("name", list(CASES))
def test_generated_sql_matches_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.sql"
    text = render(name)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with MALLARD_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), (
        f"The SQL of case {name!r} changed. If intended, regenerate with MALLARD_UPDATE_GOLDEN=1 "
        "and review the diff of the golden file.")


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.sql")) == sorted(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_golden_sql_runs(name: str) -> None:
    compiled = _compiled(name)[1]
    with duckdb.connect() as con:
        con.execute("CREATE TABLE lake (" + ", ".join(f'"{c.name}" {c.sql_type}' for c in COLUMNS)
                    + ")")
        con.execute("CREATE TABLE session_lake (" + ", ".join(
            f'"{c}" {t}' for c, t in SESSION_COLUMNS.items()) + ")")
        con.execute("CREATE TABLE rollup_lake (day DATE, " + ", ".join(
            f'"{c}" {t}' for c, t in ROLLUP_COLUMNS.items()) + ")")
        con.execute("CREATE TABLE visit_lake (day DATE, " + ", ".join(
            f'"{c}" {t}' for c, t in VISIT_COLUMNS.items()) + ")")
        rows = con.execute(compiled.sql.text, compiled.sql.params).fetchall()
    expected_rows = 1 if not CASES[name].get("dimensions") else 0  # totals are one row, even when empty
    assert len(rows) == expected_rows
