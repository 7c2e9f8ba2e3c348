"""Filters of flow and retention select identities (queries/selection.py), checked against the definition
written in plain DuckDB SQL over the lake's Parquet files: sessions by the 30-minute gap, a session's
source, entry and exit page from its first and last events, the identities with a matching session in the
range, then §5.5 (flow) and §5.3 (retention) over all of those identities' events.

The traffic is generated the way the tracker stores it: a session's source is on its landing pageview
only (the pageviews after it have an internal referrer and no source).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mallard._events import Event
from mallard._queries import DateRange, Queries
from mallard._queries.flow import flow
from mallard._queries.retention import retention

from .conftest import QueriesFactory
from .data import SITE, event, write_lake

RANGE = DateRange(date(2024, 4, 1), date(2024, 4, 21))  # three ISO weeks
PAGES = ("/", "/pricing", "/docs", "/signup")
SOURCES = ("Google", "Twitter", None)


def traffic(seed: int) -> list[Event]:
    """40 people, 1 to 4 sessions each between 2024-03-25 and 2024-04-21 (some before the range), one
    to five events per session at distinct minutes; a third of them send a user id."""
    rnd = random.Random(seed)
    out: list[Event] = []
    for p in range(40):
        user = f"user{p}" if p % 3 == 0 else None
        days = sorted(rnd.sample(range(27), rnd.randint(1, 4)))
        for d in days:
            day = datetime(2024, 3, 25) + timedelta(days=d)
            when = day + timedelta(hours=rnd.randint(8, 18), minutes=rnd.randint(0, 59))
            source = rnd.choice(SOURCES)
            for i in range(rnd.randint(1, 5)):
                name = "signup" if i > 0 and rnd.random() < 0.2 else "pageview"
                extra: dict[str, Any] = {"referrer_source": source} if i == 0 and source else {}
                out.append(event(f"p{p}-{day:%m%d}", f"{when:%Y-%m-%d %H:%M:%S}", name, rnd.choice(PAGES),
                                 user_id=user, **extra))
                when += timedelta(minutes=rnd.randint(1, 20))
    return out


def definition(lake: Path, session_cond: str) -> str:
    """CTEs ``ev`` (the site's events with ``kind``, ``actor``) and ``kept`` (identities with a session
    in the range where ``session_cond`` holds over ``source``, ``entry_page``, ``exit_page``)."""
    glob = str(lake / "events" / "**" / "*.parquet").replace("'", "''")
    lower, upper = (b.isoformat(sep=" ") for b in RANGE.bounds())
    return f"""
        WITH ev AS (SELECT *, CASE WHEN user_id IS NULL THEN 'v' ELSE 'u' END AS kind,
                           coalesce(user_id, visitor_id) AS actor
                    FROM read_parquet('{glob}', union_by_name = true) WHERE site_id = '{SITE}'),
        inr AS (SELECT * FROM ev WHERE timestamp >= '{lower}' AND timestamp < '{upper}'),
        numbered AS (
            SELECT *, sum(brk) OVER (PARTITION BY visitor_id ORDER BY timestamp) AS sess FROM (
                SELECT *, CASE WHEN timestamp - lag(timestamp) OVER (PARTITION BY visitor_id
                          ORDER BY timestamp) > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS brk FROM inr)),
        sessions AS (
            SELECT visitor_id, sess, arg_min(referrer_source, timestamp) AS source,
                   arg_min(pathname, timestamp) FILTER (WHERE event_name = 'pageview') AS entry_page,
                   arg_max(pathname, timestamp) FILTER (WHERE event_name = 'pageview') AS exit_page
            FROM numbered GROUP BY visitor_id, sess),
        kept AS (SELECT DISTINCT n.kind, n.actor FROM numbered n JOIN sessions s USING (visitor_id, sess)
                 WHERE {session_cond})
    """


def sql_flow(lake: Path, session_cond: str, page: str, step: str = "lead") -> dict[str, Any]:
    """§5.5 over the pageviews in range of the kept identities (``step="lag"``: the previous page)."""
    rows = duckdb.sql(definition(lake, session_cond) + f"""
        , seq AS (SELECT kind, actor, pathname, timestamp,
                         {step}(pathname) OVER (PARTITION BY kind, actor ORDER BY timestamp, pathname) AS nxt
                  FROM inr JOIN kept USING (kind, actor) WHERE event_name = 'pageview')
        SELECT nxt, count(*) AS n FROM (
            SELECT nxt FROM seq WHERE pathname = '{page}'
            QUALIFY row_number() OVER (PARTITION BY kind, actor ORDER BY timestamp) = 1)
        GROUP BY nxt ORDER BY n DESC, nxt""").fetchall()
    return {"visitors_at_page": sum(n for _, n in rows), "exits": sum(n for p, n in rows if p is None),
            "next_pages": [(p, n) for p, n in rows if p is not None]}


def sql_retention(lake: Path, session_cond: str, weeks: int) -> list[tuple[str, list[int]]]:
    """§5.3 over all events before the range's end of the kept identities."""
    lower, upper = (b.isoformat(sep=" ") for b in RANGE.bounds())
    rows = duckdb.sql(definition(lake, session_cond) + f"""
        , hist AS (SELECT kind, actor, timestamp FROM ev JOIN kept USING (kind, actor)
                   WHERE timestamp < '{upper}'),
        fs AS (SELECT kind, actor, min(timestamp) AS f FROM hist GROUP BY kind, actor
               HAVING min(timestamp) >= '{lower}'),
        act AS (SELECT DISTINCT kind, actor, CAST(date_trunc('week', f) AS DATE) AS cohort,
                       (CAST(timestamp AS DATE) - CAST(date_trunc('week', f) AS DATE)) // 7 AS k
                FROM hist JOIN fs USING (kind, actor))
        SELECT cohort, k, count(*) FROM act WHERE k < {weeks} GROUP BY cohort, k ORDER BY cohort, k
        """).fetchall()
    out: dict[str, list[int]] = {}
    for cohort, k, n in rows:
        out.setdefault(cohort.isoformat(), [0] * weeks)[k] = n
    return sorted(out.items())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lake(tmp_path_factory.mktemp("behaviour-filters"), traffic(7))


@pytest.fixture
def q(lake: Path, open_queries: QueriesFactory) -> Queries:
    return open_queries(lake)


CASES = [  # (mallard filter, the same condition on a session of the definition)
    ([["is", "visit:source", ["Google"]]], "s.source = 'Google'"),
    ([["is", "visit:entry_page", ["/"]]], "s.entry_page = '/'"),
    ([["is", "visit:exit_page", ["/pricing"]]], "s.exit_page = '/pricing'"),
    ([["is_not", "visit:source", ["Twitter"]]], "s.source IS DISTINCT FROM 'Twitter'"),
]
IDS = ["source", "entry_page", "exit_page", "source_is_not"]


@pytest.mark.parametrize(("filters", "cond"), CASES, ids=IDS)
@pytest.mark.parametrize("page", ["/", "/pricing"])
def test_flow_under_a_visit_filter_counts_what_those_visitors_did(q: Queries, lake: Path, filters: Any,
                                                                 cond: str, page: str) -> None:
    """The next pages of the visitors with a matching session, all their pageviews in range."""
    got = flow(q.access, SITE, RANGE, page, limit=100, filters=filters).to_dict()
    want = sql_flow(lake, cond, page)
    assert want["visitors_at_page"] > 0 and want["next_pages"]
    assert {"visitors_at_page": got["visitors_at_page"], "exits": got["exits"],
            "next_pages": [(r["next_page"], r["visitors"]) for r in got["next_pages"]]} == want


@pytest.mark.parametrize(("filters", "cond"), [(None, "true"), *CASES], ids=["none", *IDS])
def test_previous_pages_under_a_visit_filter(q: Queries, lake: Path, filters: Any, cond: str) -> None:
    """The pages viewed just before the first pageview of /pricing, and the entrances there."""
    got = flow(q.access, SITE, RANGE, "/pricing", limit=100, filters=filters, direction="previous").to_dict()
    want = sql_flow(lake, cond, "/pricing", step="lag")
    assert want["next_pages"]
    assert {"visitors_at_page": got["visitors_at_page"], "exits": got["entrances"],
            "next_pages": [(r["previous_page"], r["visitors"]) for r in got["previous_pages"]]} == want


@pytest.mark.parametrize(("filters", "cond"), CASES, ids=IDS)
def test_retention_under_a_visit_filter(q: Queries, lake: Path, filters: Any, cond: str) -> None:
    """The cohorts of the identities with a matching session in the range, all their events counted."""
    got = retention(q.access, SITE, RANGE, 3, filters=filters)["cohorts"]
    want = sql_retention(lake, cond, 3)
    assert want and any(sum(r[1:]) for _, r in want)
    assert [(c["cohort_date"], c["retained"]) for c in got] == want
