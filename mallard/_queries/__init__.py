"""Queries: every analytical question, as one query model over the Store.

``query()`` answers any :class:`Query`; ``main``, ``timeseries``, ``breakdown`` and ``export`` are presets
with the shapes of Mallard Metrics' routes. Results include this process's not-yet-flushed events.
Every value is bound as a parameter. Every method returns a :class:`~mallard._queries.results.Result`
(one protocol: ``columns``, ``rows``, ``meta``, ``to_dict()``, ``to_arrow()``, ``df()``, ``pl()``).

Units: rates (``bounce_rate``, ``conversion_rate``, funnel and retention rates, flow shares) are
fractions from 0 to 1 everywhere in Python, as in Mallard Metrics' JSON; only the Plausible-shaped
``QueryResult.to_dict()`` (``POST /api/v2/query``) gives ``bounce_rate`` and ``conversion_rate`` in percent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from .._errors import InvalidQueryError
from .._events import SITE_ID
from .._goals import Goals
from .._settings import Settings
from .._sharedstate import LocalState, SharedState
from .access import Access
from .buckets import bucket_labels
from .engine import Engine
from .export import raw_export
from .filters import Filter, FilterInput
from .freshness import LiveCache
from .goals import check_segment_filters, for_analysis
from .model import Query, build, check_site, parse_query
from .periods import DateRange, resolve
from .readings import Readings
from .registry import BREAKDOWNS, TIME_DIMENSIONS, dimension
from .results import MainStats, QueryResult, Record, Report, Result, Table
from .vocabulary import plausible_query

if TYPE_CHECKING:
    from .._buffer import EventBuffer
    from .._store import Store

__all__ = ["DateRange", "MainStats", "Queries", "Query", "QueryResult", "Record", "Report", "Result",
           "Table", "bucket_labels"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Queries:
    """Analytics over a data directory. Thread-safe. Goals are read from ``state`` (default: the
    store's ``state/``). Obtain it as ``Mallard(...).queries`` (includes that process's buffered
    events) or ``mallard.open(data_dir)`` (read-only, for notebooks and scripts)."""

    def __init__(self, store: Store, settings: Settings, *,
                 buffer: Callable[[], EventBuffer | None] | None = None,
                 clock: Callable[[], datetime] = _utcnow, state: SharedState | None = None) -> None:
        self._store = store
        self._settings = settings
        self._buffer = buffer or (lambda: None)
        self._clock = clock
        self._gap = settings.session_window_minutes * 60
        self._live = LiveCache(entries=32, lasting=store.state_dir / "facts", writable=not store.read_only)
        self._readings = Readings(store, self._buffer, settings)
        self._engine = Engine(store, settings, self._reader, self._live)
        self._access = Access(self._reader, self._gap, settings.visitor_salt_rotation_days,
                              lambda: self.today("UTC"), self._engine.sessions_of, self._engine.rollups_of,
                              self._engine.discard, self._engine.attributed_of)
        self._generation: dict[str, int] = {}
        #: The goals, saved segments and reporting currencies of every site (``goals.json`` of ``state``).
        self.goals = Goals(state or LocalState(store.state_dir), check_filters=check_segment_filters)
        self._gen_lock = threading.Lock()

    @property
    def access(self) -> Access:
        """What the analysis modules (funnels, retention, flow) read through: readers and settings."""
        return self._access

    # -- dates ------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The current time (aware, from the clock these queries were given)."""
        return self._clock()

    def today(self, tz: str | None = None) -> date:
        return self._clock().astimezone(ZoneInfo(tz or self._settings.timezone)).date()

    def first_day(self, site: str) -> date | None:
        """The first UTC date with stored events of ``site`` (None: none yet)."""
        return self._store.first_date(check_site(site))

    def date_range(self, site: str | None = None, period: str | None = None,
                   start_date: str | date | None = None, end_date: str | date | None = None, *,
                   timezone: str | None = None, max_days: int | None = None) -> DateRange:
        """Resolve a period name or explicit dates (see :mod:`mallard._queries.periods`)."""
        tz = timezone or self._settings.timezone
        first = self._store.first_date(site) if period == "all" else None
        return resolve(period, start_date, end_date, today=self.today(tz), tz=tz, first_day=first,
                       max_days=max_days)

    # -- the query model --------------------------------------------------------------------------
    def run(self, query: Query) -> QueryResult:
        """Answer a validated :class:`Query` (rates as fractions 0-1)."""
        return self._engine.run(query, self.goals, self.today)

    def query(self, site: str, *, metrics: Sequence[str] = ("visitors",),
              dimensions: Sequence[str] = (), filters: FilterInput = None, period: str | None = None,
              start_date: str | date | None = None, end_date: str | date | None = None,
              order_by: Sequence[Sequence[str]] | None = None, limit: int | None = None,
              offset: int = 0, timezone: str | None = None) -> QueryResult:
        """Metrics × dimensions × filters over a date range.

        ``bounce_rate`` and ``conversion_rate`` are fractions (0-1), as in :meth:`main`: one unit per
        metric across the Python API (``to_dict()``, the v2 HTTP body, gives them in percent).

        **Usage**::

            q.query("example.com", metrics=["visitors", "bounce_rate"],
                    dimensions=["visit:source"], filters=[["is", "visit:country", ["DE"]]],
                    period="30d", limit=10)
        """
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return self.run(build(site, rng, metrics=metrics, dimensions=dimensions, filters=filters,
                              order_by=order_by, limit=limit, offset=offset))

    def query_json(self, body: object, *, max_days: int | None = None) -> QueryResult:
        """Answer a Plausible-Stats-API-v2-shaped request body."""
        return self.run(replace(plausible_query(self.parse_json(body, max_days=max_days)),
                                empty_buckets=False))

    def parse_json(self, body: object, *, max_days: int | None = None) -> Query:
        """The query a Plausible-Stats-API-v2-shaped request body asks (see :meth:`query_json`).

        Raises:
            InvalidQueryError: the body is not a valid query.
        """
        tz = self._settings.timezone
        site = body.get("site_id") if isinstance(body, dict) else None
        first = None
        if isinstance(body, dict) and body.get("date_range") == "all" and isinstance(site, str):
            first = self._store.first_date(check_site(site))
        return parse_query(body, today=self.today(tz), tz=tz, first_day=first, max_days=max_days,
                           now=self._clock())

    # -- presets (Mallard Metrics report shapes) --------------------------------------------------
    def main(self, site: str, *, period: str | None = None, start_date: str | date | None = None,
             end_date: str | date | None = None, filters: FilterInput = None,
             timezone: str | None = None) -> MainStats:
        """Headline figures: visitors, pageviews, events, sessions, bounce rate (a fraction 0-1),
        visit duration; read them as attributes (``.unique_visitors``) or keys."""
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        row = self.run(build(site, rng, metrics=["visitors", "pageviews", "events", "visits",
                                                 "bounce_rate", "visit_duration", "views_per_visit"],
                             filters=filters)).rows[0]
        visitors = int(row["visitors"])
        return MainStats({
            "unique_visitors": visitors, "total_pageviews": int(row["pageviews"]),
            "total_events": int(row["events"]),
            "views_per_visitor": row["pageviews"] / visitors if visitors else 0.0,
            "total_sessions": int(row["visits"]), "bounce_rate": float(row["bounce_rate"]),
            "avg_visit_duration_secs": float(row["visit_duration"]),
            "pages_per_visit": float(row["views_per_visit"]),
            "views_per_visit": float(row["views_per_visit"]),
        }, rng.to_dict())

    def timeseries(self, site: str, *, period: str | None = None,
                   start_date: str | date | None = None, end_date: str | date | None = None,
                   interval: str | None = None, metrics: Sequence[str] = ("visitors", "pageviews"),
                   filters: FilterInput = None, timezone: str | None = None) -> Table:
        """Zero-filled series ``[{date, visitors, pageviews}]``; hourly for ranges of ≤ 2 days."""
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        if interval is None:
            interval = "hour" if rng.days <= 2 else "day"
        time_dim = f"time:{interval}"
        if time_dim not in TIME_DIMENSIONS:
            raise InvalidQueryError("interval must be hour, day, week or month.",
                                    code="invalid_interval")
        r = self.run(build(site, rng, metrics=metrics, dimensions=[time_dim], filters=filters))
        rows = [{"date": row[time_dim], **{m: row[m] for m in metrics}} for row in r.rows]
        return Table(("date", *metrics), rows, {"interval": interval, **rng.to_dict()})

    def breakdown(self, site: str, dimension_name: str, *, period: str | None = None,
                  start_date: str | date | None = None, end_date: str | date | None = None,
                  metrics: Sequence[str] = ("visitors", "pageviews"), limit: int = 10,
                  offset: int = 0, filters: FilterInput = None, timezone: str | None = None) -> Table:
        """Top values of a dimension: rows ``{value, visitors, pageviews}`` (``(unknown)`` for none).

        ``dimension_name`` is a Mallard Metrics slug (``pages``, ``sources``, ``browsers``, ``os``,
        ``devices``, ``countries``, …) or a query-model name (``visit:utm_campaign``,
        ``event:props:plan``).
        """
        dim = dimension(dimension_name).name
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        order = [[m, "desc"] for m in metrics]  # then value ascending (byte order): deterministic
        r = self.run(build(site, rng, metrics=metrics, dimensions=[dim], filters=filters,
                           order_by=order, limit=limit, offset=offset))
        rows = [{"value": row[dim], **{m: row[m] for m in metrics}} for row in r.rows]
        return Table(("value", *metrics), rows, {"dimension": dim, **r.meta, **rng.to_dict()})

    def export(self, site: str, *, period: str | None = None, start_date: str | date | None = None,
               end_date: str | date | None = None, kind: str = "daily", limit: int = 100_000,
               filters: FilterInput = None, timezone: str | None = None) -> Table:
        """``kind="daily"``: per day visitors, pageviews, top page and source (zero-filled);
        ``kind="raw"``: one row per event, every column but ``site_id`` and ``visitor_id``.
        """
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        if kind == "raw":
            return raw_export(self._reader, site, rng, limit,
                              self._analysis_filters(site, rng, filters))
        if kind != "daily":
            raise InvalidQueryError(f"Invalid kind: {kind!r}. Use 'daily' or 'raw'.",
                                    code="invalid_kind")
        series = self.run(build(site, rng, metrics=["visitors", "pageviews"],
                                dimensions=["time:day"], filters=filters))
        tops: dict[str, dict[str, str]] = {}
        for dim, key in (("event:page", "top_page"), ("visit:source", "top_source")):
            r = self.run(build(site, rng, metrics=["visitors", "pageviews"],
                               dimensions=["time:day", dim], filters=filters))
            for row in r.rows:  # ordered by visitors desc, then value: the first per day wins
                tops.setdefault(row["time:day"], {}).setdefault(key, row[dim])
        rows = [{"date": row["time:day"], "visitors": row["visitors"],
                 "pageviews": row["pageviews"],
                 "top_page": tops.get(row["time:day"], {}).get("top_page", "(none)"),
                 "top_source": tops.get(row["time:day"], {}).get("top_source", "(direct)")}
                for row in series.rows]
        return Table(("date", "visitors", "pageviews", "top_page", "top_source"), rows,
                     rng.to_dict())

    # -- behavioural analyses (own modules; see docs/queries.md) ----------------------------------
    def sessions(self, site: str, *, period: str | None = None, start_date: str | date | None = None,
                 end_date: str | date | None = None, filters: FilterInput = None,
                 timezone: str | None = None) -> Record:
        """Sessions (a new one after a gap of more than ``session_window_minutes``): their number, mean
        duration, pageviews per session and bounce rate (0-1), from the same sessions as ``main``."""
        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        row = self.run(build(site, rng, metrics=["visits", "visit_duration", "views_per_visit",
                                                 "bounce_rate"], filters=filters)).rows[0]
        return Record({"total_sessions": int(row["visits"]),
                       "avg_session_duration_secs": float(row["visit_duration"] or 0),
                       "avg_pages_per_session": float(row["views_per_visit"] or 0),
                       "bounce_rate": float(row["bounce_rate"] or 0)}, rng.to_dict())

    def funnel(self, site: str, steps: Sequence[str] | str, *, window: str | int = "1 day",
               period: str | None = None, start_date: str | date | None = None,
               end_date: str | date | None = None, filters: FilterInput = None,
               timezone: str | None = None) -> Report:
        """Cumulative funnel: identities reaching at least each step within ``window`` of step 1
        (ClickHouse ``windowFunnel(window, 'strict_once')``).

        **Usage**: ``q.funnel("example.com", ["page:/pricing", "event:Signup"], window="1 hour")``.
        """
        from .funnels import funnel, parse_window

        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return funnel(self.access, check_site(site), rng, steps, parse_window(window),
                      self._analysis_filters(site, rng, filters))

    def sequences(self, site: str, steps: Sequence[str] | str, *, period: str | None = None,
                  start_date: str | date | None = None, end_date: str | date | None = None,
                  filters: FilterInput = None, timezone: str | None = None) -> Record:
        """Identities that performed every step in order, without a time window (at least 2 steps)."""
        from .funnels import sequences

        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return sequences(self.access, check_site(site), rng, steps,
                         self._analysis_filters(site, rng, filters))

    def retention(self, site: str, *, weeks: int = 4, period: str | None = None,
                  start_date: str | date | None = None, end_date: str | date | None = None,
                  filters: FilterInput = None, timezone: str | None = None, identity: str = "all") -> Report:
        """Weekly cohorts by the ISO week of each identity's first visit in the range, with counts and
        rates per week offset, and a caveat when daily anonymous ids make later weeks structurally 0;
        ``identity="user_id"``: identified users only."""
        from .retention import retention

        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return retention(self.access, check_site(site), rng, weeks,
                         self._analysis_filters(site, rng, filters), identity)

    def flow(self, site: str, page: str, *, limit: int = 10, period: str | None = None,
             start_date: str | date | None = None, end_date: str | date | None = None,
             filters: FilterInput = None, timezone: str | None = None, direction: str = "next") -> Report:
        """The pages viewed next after each visitor's first pageview of ``page``, and the exits
        (``direction="previous"``: the pages viewed just before it, and the entrances)."""
        from .flow import flow

        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return flow(self.access, check_site(site), rng, page, limit,
                    self._analysis_filters(site, rng, filters), direction)

    def _analysis_filters(self, site: str, rng: DateRange, filters: FilterInput) -> Filter | None:
        """``filters`` with segments and goals resolved, for analyses that compile filters themselves."""
        query = build(site, rng, filters=filters)
        return for_analysis(query, lambda: self.goals.list(query.site_id),
                            lambda i: self.goals.segment(query.site_id, i))

    def properties(self, site: str, *, limit: int = 50, contains: str = "", period: str | None = None,
                   start_date: str | date | None = None, end_date: str | date | None = None,
                   filters: FilterInput = None, timezone: str | None = None) -> Report:
        """The custom property keys of the range's events (``key``, ``visitors``, ``events``), most
        visitors first: what ``event:props:<key>`` can be asked for; ``contains``: keys holding it, in
        any case (suggestions for a filter menu)."""
        from .properties import properties

        rng = self.date_range(site, period, start_date, end_date, timezone=timezone)
        return properties(self.access, check_site(site), rng, limit,
                          self._analysis_filters(site, rng, filters), contains)

    def current_visitors(self, site: str) -> int:
        """Visitors with an event (not ``engagement``) in the last ``realtime_window_minutes`` (5), as
        Plausible counts them; this process's unflushed events included (see
        :mod:`mallard._queries.realtime`)."""
        from .realtime import current_visitors

        return current_visitors(self, check_site(site), self._clock(),
                                self._settings.realtime_window_minutes)

    def realtime(self, site: str, *, limit: int = 10) -> Report:
        """Current visitors (``result["visitors"]``), the ``pages`` they are on and their ``sources``."""
        from .realtime import realtime

        minutes = self._settings.realtime_window_minutes
        warning = (f"round_timestamps is on: stored times are floored to the hour, so the last {minutes} "
                   "minutes hold no event or the whole hour's.") if self._settings.round_timestamps else None
        return realtime(self, check_site(site), self._clock(), limit, warning, minutes)

    # -- raw access -------------------------------------------------------------------------------
    def sql(self, text: str, params: Sequence[object] = (), *, site: str | None = None) -> pa.Table:
        """Run your own SQL over the relations ``events`` and ``sessions`` (the whole lake, or one
        site) → Arrow table; under ``Mallard.queries`` both include the process's buffered events.

        ``events``: every stored row, Plausible's ``engagement`` reports included (filter on
        ``event_name <> 'engagement'`` for the events analyses count); ``sessions``: one row per
        session, ``site_id`` and the columns of docs/storage.md (see :mod:`mallard._queries.rawsql`).
        **Usage**: ``q.sql("SELECT entry_page, count(*) FROM sessions GROUP BY ALL")``."""
        from .rawsql import run_sql

        return run_sql(self._store, self._readings.duckdb, self._live, self._gap, text, params,
                       None if site is None else check_site(site), self.sites() if site is None else ())

    def freshness(self, site: str | None = None) -> Record:
        """How fresh the answers are: ``newest_event``, ``last_flush``, ``buffered_events`` (in answers),
        ``unflushed_events`` of ``unflushed_writers`` (not yet); see :mod:`mallard._queries.recency`."""
        from .recency import freshness

        buffer = self._buffer()
        return freshness(self._store, self._reader, None if site is None else check_site(site),
                         buffer.snapshot() if buffer is not None else ())

    def __repr__(self) -> str:
        from .recency import describe

        return describe(self, self._settings.lake_url or str(self._store.data_dir), self._store.read_only)

    def close(self) -> None:
        """Close the calling thread's DuckDB connection (a new one opens on the next query).

        **Usage**: ``with mallard.open("data") as q: ...`` closes it on leaving the block.
        """
        self._store.close()
        self._readings.close()

    def __enter__(self) -> Queries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sites(self) -> list[str]:
        """Site ids with stored (or buffered) events."""
        buffer = self._buffer()
        pending = {e[SITE_ID] for e in buffer.snapshot()} if buffer is not None else set()
        return sorted(set(self._store.sites()) | pending)

    # -- cache support ----------------------------------------------------------------------------
    def invalidate(self, sites: set[str] | frozenset[str]) -> None:
        """Note that new data for ``sites`` was stored (advances their cache generation)."""
        with self._gen_lock:
            for site in sites:
                self._generation[site] = self._generation.get(site, 0) + 1

    def generation(self, site: str) -> int:
        """A number that changes whenever ``site``'s stored data changes in this process."""
        return self._generation.get(site, 0)

    # -- internals --------------------------------------------------------------------------------
    def _reader(self, site: str | None, first: date | None, last: date | None) -> Any:
        """A reader over ``site``'s partitions dated [first, last] plus the buffered events."""
        return self._readings.open(site, first, last)


def breakdown_names() -> list[str]:
    return list(BREAKDOWNS)
