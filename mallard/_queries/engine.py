"""Engine: how a resolved :class:`Query` runs: plan, derived rows, SQL, execution.

The planner (planner.py) decides; this gathers what the plan reads (stored and computed session and
rollup rows, engagement reports), has the builder (builder.py) write the SQL and runs it over one
consistent reading of the lake and the buffer. A stored sessions or rollup file that cannot be read does
not fail the question: it is answered again from events, and the file deleted for maintenance to build
it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .._goals import Goals
from .._settings import Settings
from . import attributed, engagement, rollups, visits
from .acquisition import with_computed
from .attributed import Attributed
from .buckets import bucket_labels
from .builder import build_sql
from .freshness import LiveCache
from .goals import resolve as resolve_goals
from .include import with_comparisons
from .model import Query
from .periods import DateRange
from .planner import is_zero_filled, plan_query
from .plans import Plan, reads_sessions, rolled_dimension, without
from .results import QueryResult
from .revenue import currency_of_rows
from .revenue import finish as finish_revenue
from .rollups import RollupRows
from .sql import Sql
from .stored import SessionRows, discard_unreadable, for_query, stored_or_events
from .visits import VisitRows

if TYPE_CHECKING:
    from .._store import Reader, Store

__all__ = ["Engine"]


class Engine:
    """Runs queries over ``store``: ``reading(site, first, last)`` opens a consistent reading (the
    lake's files and the process's buffered events); ``live`` keeps computed derived rows."""

    def __init__(self, store: Store, settings: Settings,
                 reading: Callable[[str | None, date | None, date | None], Any], live: LiveCache) -> None:
        self._store = store
        self._settings = settings
        self._reading = reading
        self._live = live
        self._gap = settings.session_window_minutes * 60

    def execute(self, query: Query) -> list[tuple[Any, ...]]:
        if any(d.goals == () for d in query.bound):
            return []  # event:goal bound to no goal (the site has none, or the filters kept none)
        first, last = query.date_range.partition_dates()
        with self._reading(query.site_id, first, last) as reader:
            src, src_params = reader.source()

            def attempt(stored: bool, read: list[str]) -> pa.Table:
                plan = plan_query(query)
                visited = self._visited(reader, plan, stored)
                read.extend(() if visited is None else visited.files)
                if visited is not None and not visits.exact(reader, visited, self._live):
                    visited = None  # a visitor key on days apart: the days' visitors do not add up
                if visited is None:
                    plan = without(plan, "visits")
                sessions, rolled = self._derived_rows(reader, plan, stored=stored)
                read.extend([*(sessions.files if sessions else ()), *(rolled.files if rolled else ())])
                if rolled is not None and not rollups.day_local(reader, rolled, self._live):
                    rolled = None  # a visitor id on two days: visitors do not add up
                if rolled is None:
                    plan = without(plan, "rollups")
                source = with_computed(Sql(src, tuple(src_params)), plan.columns)  # what scoped reads
                stored_ev = self._attributed(reader, plan) if stored else None
                if stored_ev is not None and sessions is not None:
                    stored_ev = replace(stored_ev, reaching=sessions.reaching)
                read.extend(() if stored_ev is None else stored_ev.files)
                compiled = build_sql(plan, source=source,
                                     sessions=None if sessions is None else sessions.relation(),
                                     rollups=None if rolled is None else rolled.relation(),
                                     engagement=self._engagement_rows(reader, plan), attributed=stored_ev,
                                     visits=None if visited is None else visited.relation())
                return reader.execute(compiled.sql.text, compiled.sql.params)

            # an unreadable stored sessions or rollup file: deleted (built again by maintenance) and
            # the query answered from events
            table = stored_or_events(attempt, self.discard)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return list(zip(*columns, strict=True)) if columns else []

    def _derived_rows(self, reader: Reader, plan: Plan, *, stored: bool
                      ) -> tuple[SessionRows | None, RollupRows | None]:
        """The session and rollup rows ``plan`` reads (None: none; no rollups with ids living longer than
        a day, which never add up across days), their computed parts registered on ``reader``."""
        lower, upper = plan.bounds
        sessions = rolled = None
        if plan.sessions is not None and reads_sessions(plan):
            sessions = for_query(self._store, self._reading, reader, plan.site_id, lower, upper, self._gap,
                                 overlap=plan.sessions.overlap, cache=self._live, stored=stored)
        if any(p.reads == "rollups" for p in plan.parts):
            rolled = self._rolled(reader, plan.site_id, lower, upper, rolled_dimension(plan), stored)
        return sessions, rolled

    def _rolled(self, reader: Reader, site: str, lower: datetime, upper: datetime, dimension: str,
                stored: bool) -> RollupRows | None:
        """The rollup rows of ``dimension`` in ``[lower, upper)``; None with visitor ids living longer
        than a day (``visitor_salt_rotation_days``), whose visitors never add up across days."""
        if self._settings.visitor_salt_rotation_days != 1:
            return None
        return rollups.for_query(self._store, self._reading, reader, site, lower, upper, dimension,
                                 cache=self._live, stored=stored)

    def _visited(self, reader: Reader, plan: Plan, stored: bool) -> VisitRows | None:
        """The visit rows the plan reads (None: it reads none, or none is stored and fresh; or ids
        living longer than a day, which are never of one day or two)."""
        if not any(p.reads == "visits" for p in plan.parts) or self._settings.visitor_salt_rotation_days != 1:
            return None
        return visits.rows_for(self._store, self._reading, reader, plan.site_id, *plan.bounds,
                               rolled_dimension(plan), self._gap, cache=self._live, stored=stored)

    def _attributed(self, reader: Reader, plan: Plan) -> Attributed | None:
        """The fresh stored attributed events of the plan's days, when it matches events to sessions."""
        if plan.sessions is None or not plan.sessions.overlap or not any(
                p.reads == "events_with_session" for p in plan.parts):
            return None
        return self.attributed_of(reader, plan.site_id, *plan.bounds)

    def attributed_of(self, reader: Reader, site: str, lower: datetime, upper: datetime) -> Attributed:
        """The fresh stored attributed events of the UTC days of ``[lower, upper)`` (naive UTC)."""
        return attributed.for_days(self._store, site, lower, upper, self._gap, reader.buffered_dates(),
                                   reader.buffered_since())

    def discard(self, files: Iterable[str]) -> bool:
        """Delete the unreadable ones of these stored sessions or rollup files; whether there was one."""
        return discard_unreadable(self._store, files)

    def _engagement_rows(self, reader: Reader, plan: Plan) -> Sql | None:
        """The engagement reports ``plan`` reads, with their visits (None: it reads none)."""
        if not any(p.reads == "engagement" for p in plan.parts):
            return None
        src, params = reader.source("engagement")
        return engagement.rows(Sql(src, tuple(params)), plan.site_id, plan.bounds, self._gap)

    def sessions_of(self, reader: Reader, site: str, rng: DateRange, stored: bool) -> SessionRows:
        lower, upper = rng.bounds()
        return for_query(self._store, self._reading, reader, site, lower, upper, self._gap, overlap=True,
                         cache=self._live, stored=stored)

    def rollups_of(self, reader: Reader, site: str, rng: DateRange, dimension: str, stored: bool
                   ) -> RollupRows | None:
        """The rollup rows of ``dimension`` over ``rng`` when they answer (see :class:`Access`)."""
        if rng.instants is not None:
            return None

        def attempt(from_stored: bool, read: list[str]) -> RollupRows | None:
            rolled = self._rolled(reader, site, *rng.bounds(), dimension, stored and from_stored)
            read.extend(() if rolled is None else rolled.files)  # day_local reads them
            return rolled if rolled is not None and rollups.day_local(reader, rolled, self._live) else None

        return stored_or_events(attempt, self.discard)

    def run(self, query: Query, goals: Goals, today: Callable[[str], date]) -> QueryResult:
        """Answer a validated :class:`Query` (rates as fractions 0-1) with the site's ``goals``;
        ``today(tz)``: the current date there (for comparisons)."""
        series = is_zero_filled(query)
        if series:  # zero-fill the whole range first, then page through it
            page = (query.offset, query.limit)
            query = replace(query, limit=None, offset=0)
        resolved = resolve_goals(query, lambda: goals.list(query.site_id),
                                 lambda i: goals.segment(query.site_id, i))
        rows = self.execute(resolved)
        names = [*query.dimensions, *query.metrics]
        out = [dict(zip(names, r[:-1], strict=True)) for r in rows]
        warnings = finish_revenue(out, query.metrics, currency_of_rows(query, goals))
        total = rows[0][-1] if rows else 0
        if not rows and query.offset:  # paged past the end: the row count is still the whole's
            first = self.execute(replace(resolved, offset=0, limit=1))
            total = first[0][-1] if first else 0
        if series:
            out = self._zero_fill(query, out)
            total = len(out)
            offset, limit = page
            out = out[offset:None if limit is None else offset + limit]
            query = replace(query, offset=offset, limit=limit)
        meta: dict[str, Any] = {"total_rows": total}
        if warnings:
            meta["metric_warnings"] = warnings
        result = QueryResult(query, tuple(names), out, meta)
        if query.include.comparisons is None:
            return result
        return with_comparisons(result, lambda q: self.run(q, goals, today), today(query.date_range.tz))

    def _zero_fill(self, query: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from .registry import METRICS

        time_dim = query.time_dimension
        assert time_dim is not None
        labels = bucket_labels(query.date_range, time_dim)
        by_label = {r[time_dim]: r for r in rows}
        empty = {m: METRICS[m].empty for m in query.metrics}
        return [by_label.get(label, {time_dim: label, **empty}) for label in labels]
