"""ClickHouse (chdb) reference queries for retention and flow, and a clickstream generator for them.

The queries are behavioral-analytics.md §5.3 and §5.5 verbatim, run in-process by chdb over the lake's
own Parquet files, with the identity ``(kind, actor)`` = ``user_id`` where present, else ``visitor_id``
(the same rule as mallard). Every value is bound as a ClickHouse query parameter.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chdb
from hypothesis import strategies as st

from mallard._events import Event
from mallard._store import Store

SITES = ("s.example", "t.example")
MONDAY = datetime(2024, 4, 1)  # a Monday
PATHS = ("/", "/a", "/b", "/pricing", "/it's", '/"; DROP TABLE events; --', "/ünï/🦆", "/A")
# Offsets within a day: many collide (ties), some differ by one microsecond or one second.
SECONDS = (0, 0, 1, 60, 3600, 43_200, 86_399)
MICROS = (0, 0, 0, 1, 999_999)
# Days after MONDAY: Mondays, Sundays and the edges of RANGE_STARTS / RANGE_ENDS (and beyond them).
DAYS = (0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 19, 20, 21, 27, 28, 29, 35, 39)

_ACTOR = "if(isNull(user_id), 'v', 'u') AS kind, ifNull(user_id, visitor_id) AS actor"
_SCOPE = ("site_id = {site:String} AND timestamp >= {start:DateTime64(6, 'UTC')} "
          "AND timestamp < {end:DateTime64(6, 'UTC')}")


def lake_glob(data_dir: Path) -> str:
    return str(data_dir / "events" / "**" / "*.parquet")


def _run(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    query: Callable[..., Any] = chdb.query  # chdb has no type hints
    out = query(sql, "JSONEachRow", params=params)
    text = out.data() if hasattr(out, "data") else str(out)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def retention_sql(weeks: int) -> str:
    """§5.3 in ClickHouse: rows ``(cohort_week, size, retained)`` per cohort, ordered by cohort.
    Parameters: ``glob``, ``site``, ``start`` and ``end`` (``DateTime64(6)`` text). Also timed by
    ``benchmarks/bench_behavioural.py``."""
    conds = [f"intDiv(dateDiff('day', toMonday(f.fs), toDate(e.timestamp)), 7) = {k}" for k in range(weeks)]
    if weeks == 1:
        conds.append("toUInt8(0)")  # ClickHouse rejects retention() with one condition
    return f"""
        WITH first_seen AS (
            SELECT kind, actor, min(timestamp) AS fs
            FROM (SELECT {_ACTOR}, timestamp, site_id FROM file({{glob:String}}, Parquet))
            WHERE site_id = {{site:String}} AND timestamp < {{end:DateTime64(6, 'UTC')}}
            GROUP BY kind, actor
            HAVING fs >= {{start:DateTime64(6, 'UTC')}}
        )
        SELECT toString(cohort_week) AS cohort_week, count() AS size, sumForEach(r) AS retained
        FROM (
            SELECT e.kind, e.actor, toMonday(any(f.fs)) AS cohort_week,
                   retention({", ".join(conds)}) AS r
            FROM (SELECT {_ACTOR}, timestamp, site_id FROM file({{glob:String}}, Parquet)) AS e
            INNER JOIN first_seen AS f ON e.kind = f.kind AND e.actor = f.actor
            WHERE e.site_id = {{site:String}} AND e.timestamp >= {{start:DateTime64(6, 'UTC')}}
              AND e.timestamp < {{end:DateTime64(6, 'UTC')}}
            GROUP BY e.kind, e.actor
        )
        GROUP BY cohort_week
        ORDER BY cohort_week
        SETTINGS session_timezone = 'UTC'
    """


def ch_retention(glob: str, site: str, start: datetime, end: datetime,
                 weeks: int) -> list[tuple[str, int, list[int]]]:
    """§5.3: ``(cohort_week, size, retained)`` per cohort, ordered by cohort."""
    rows = _run(retention_sql(weeks), {"glob": glob, "site": site, "start": _ts(start), "end": _ts(end)})
    return [(r["cohort_week"], int(r["size"]), [int(x) for x in r["retained"][:weeks]]) for r in rows]


@dataclass(frozen=True)
class ChFlow:
    visitors_at_page: int
    exits: int
    next_pages: list[tuple[str, int]]  # every next page: visitors desc, next page asc


def ch_flow(glob: str, site: str, start: datetime, end: datetime, pages: Sequence[str], *,
            timestamps: bool = False) -> dict[str, ChFlow]:
    """§5.5 with ``sequenceNextNode('forward', 'first_match')``, for several pages in one query.

    By default the timestamp argument is the per-identity rank over ``(timestamp, pathname)`` (§5.5's
    formulation). With ``timestamps=True`` it is the Unix time in seconds, so ClickHouse's own tie rule
    (ties by value) orders equal timestamps; only valid when every timestamp is a whole second.
    """
    time_arg = "toUInt32(toUnixTimestamp(timestamp))" if timestamps else (
        "toUInt32(row_number() OVER (PARTITION BY kind, actor ORDER BY timestamp, pathname))")
    # The pages travel base64-encoded in one string parameter (no quoting of array literals needed).
    sql = f"""
        SELECT page, next_page, count() AS visitors
        FROM (
            SELECT page, kind, actor,
                   sequenceNextNode('forward', 'first_match')(
                       t, path, toUInt8(1), toUInt8(path = page)) AS next_page,
                   countIf(path = page) > 0 AS at_page
            FROM (
                SELECT *, arrayJoin(arrayMap(x -> base64Decode(x), splitByChar(',', {{pages:String}})))
                          AS page
                FROM (
                    SELECT kind, actor, assumeNotNull(pathname) AS path, {time_arg} AS t
                    FROM (SELECT {_ACTOR}, timestamp, pathname, site_id, event_name
                          FROM file({{glob:String}}, Parquet))
                    WHERE {_SCOPE} AND event_name = 'pageview'
                )
            )
            GROUP BY page, kind, actor
        )
        WHERE at_page
        GROUP BY page, next_page
        SETTINGS allow_experimental_funnel_functions = 1, session_timezone = 'UTC'
    """
    encoded = ",".join(base64.b64encode(p.encode()).decode() for p in pages)
    rows = _run(sql, {"glob": glob, "site": site, "start": _ts(start), "end": _ts(end), "pages": encoded})
    out: dict[str, ChFlow] = {}
    for page in pages:
        mine = [r for r in rows if r["page"] == page]
        nexts = sorted(((r["next_page"], int(r["visitors"])) for r in mine if r["next_page"] is not None),
                       key=lambda x: (-x[1], x[0]))
        out[page] = ChFlow(sum(int(r["visitors"]) for r in mine),
                           sum(int(r["visitors"]) for r in mine if r["next_page"] is None), nexts)
    return out


# -- generated clickstreams ------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    name: str
    identified: str  # "always", "never" or "sometimes" (user_id on some events only)


@st.composite
def clickstreams(draw: st.DrawFn, *, whole_seconds: bool = False, max_days: int = 40) -> list[Event]:
    """Events of 1–6 people on two sites over ``max_days`` days from Monday 2024-04-01.

    Anonymous events carry a daily visitor id (``<person>-<day>``); identified ones also a ``user_id``.
    Timestamps collide often (ties), paths include quotes and unicode, some events are custom events.
    """
    people = [Person(f"p{i}", draw(st.sampled_from(["always", "never", "sometimes"])))
              for i in range(draw(st.integers(1, 6)))]
    events: list[Event] = []
    for person in people:
        n = draw(st.integers(1, 10))
        days = draw(st.lists(st.sampled_from([d for d in DAYS if d < max_days]), min_size=1, max_size=4))
        for _ in range(n):
            day = draw(st.sampled_from(days))
            micros = 0 if whole_seconds else draw(st.sampled_from(MICROS))
            when = MONDAY + timedelta(days=day, seconds=draw(st.sampled_from(SECONDS)),
                                      microseconds=micros)
            uid = {"always": True, "never": False}.get(person.identified)
            if uid is None:
                uid = draw(st.booleans())
            name = draw(st.sampled_from(["pageview", "pageview", "pageview", "signup"]))
            events.append(Event(site_id=draw(st.sampled_from([SITES[0], SITES[0], SITES[1]])),
                                visitor_id=f"{person.name}-{day}", timestamp=when, event_name=name,
                                pathname=draw(st.sampled_from(PATHS)),
                                user_id=f"user-{person.name}" if uid else None))
    return events


def write_shuffled(data_dir: Path, events: Sequence[Event], seed: int) -> Path:
    """Write ``events`` in shuffled order as several batches (several files per partition)."""
    rows = list(events)
    random.Random(seed).shuffle(rows)
    store = Store(data_dir)
    try:
        cut = len(rows) // 2
        for batch in (rows[:cut], rows[cut:]):
            if batch:
                store.write_batch(batch)()
    finally:
        store.close()
    return data_dir


RANGE_STARTS = (date(2024, 4, 1), date(2024, 4, 3), date(2024, 4, 8), date(2024, 4, 14))
RANGE_ENDS = (date(2024, 4, 20), date(2024, 4, 28), date(2024, 5, 10))
