"""Per-day rollups of the visit attributes: ``visits/site_id=<site>/date=<UTC day>/`` (docs/storage.md).

A breakdown of event metrics by a visit attribute (the Sources panel: visitors, pageviews and events by
source over a month) is summed from the sessions starting in the range (planner.py's *session-sums*
shortcut): every session of the month read, and its visitor keys counted distinct per value (at 5M
events, 1.1M sessions and 0.45 CPU-seconds: most of a cold dashboard view). These rows hold, per start
day ``D``, for each value of every dimension of :data:`DIMENSIONS` (the session's attribution and its
entry and exit pages) and for the day's total (``dimension = ''``):

* ``visitors``: the distinct visitor keys of the sessions starting on ``D`` with that value;
* ``carried``: how many of those keys are also keys of a session with that value starting on ``D - 1``;
* ``pageviews``, ``events``: the sums over those sessions;
* on the total row, ``visitor_keys``: the day's distinct keys, sorted.

A range's ``visitors`` of a value is the sum of its days' minus the sum of their ``carried`` but the
first day's: exact when each key's start days in the range are one day or two consecutive days (so the
days a key has a value on are a run, counted once). Daily visitor ids give that (an id lives one UTC day;
a session crossing midnight carries the two days' ids into the first day's sessions) unless a session
spans two midnights, ids outlive a day, or events were tracked with another day's timestamp; so every
query checks it from the total rows' keys (:func:`exact`) and reads the sessions when it fails. Pageviews
and events add up over days.

A day's rows are derived from the stored sessions of the day and of the day before: they are built (by
the same maintenance pass, after those) with the window of those partitions and the same freshness rule
(:mod:`mallard._store.derived`). The other days of a range (the open days, days changed since, days of
events this process buffers) are computed by the query from its session rows, the day before included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from . import sessions as _sessions
from .freshness import LiveCache, Same
from .registry import DIMENSIONS as ALL_DIMENSIONS
from .registry import Dimension
from .rollups import filters_roll, holds
from .sql import Sql, with_ctes
from .stored import Reading, for_query, gather, split, union, window_of

if TYPE_CHECKING:
    from .._store import Store
    from .._store.reader import Reader
    from .model import Query

__all__ = ["COLUMNS", "DIMENSIONS", "METRICS", "VisitRows", "answers", "build", "exact", "rows",
           "rows_for", "version"]

#: The format of stored rows: part of every partition's fingerprint (with the session window).
FORMAT: Final = 1
_DAY: Final = timedelta(days=1)
#: The dimensions rolled up, by name: those whose value is the session's (attribution, entry and exit
#: pages and their hosts), with the column of the session rows holding it.
DIMENSIONS: Final = {name: d.session_column or d.column for name, d in ALL_DIMENSIONS.items()
                     if d.level == "visit" and d.words is None and (d.column is None or d.column in {
                         "referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign",
                         "utm_content", "utm_term", "channel"})}
#: The event metrics these rows answer (visitors: see above; the first day's ``carried`` left out).
METRICS: Final = ("visitors", "pageviews", "events")
#: The columns of a row and their types, in file order (the public Parquet contract).
COLUMNS: Final = {"dimension": "VARCHAR", "value": "VARCHAR", "visitors": "BIGINT", "carried": "BIGINT",
                  "pageviews": "BIGINT", "events": "BIGINT", "visitor_keys": "UBIGINT[]"}
_EMPTY: Final = ", ".join(["NULL::DATE AS day", *(f"NULL::{t} AS {c}" for c, t in COLUMNS.items())]) \
    + " WHERE false"


def version(gap_seconds: int) -> str:
    """The version the fingerprint of visit rows stored with this session window hashes."""
    return f"{_sessions.version(gap_seconds)}/visits-{FORMAT}"


def answers(q: Query, ev_metrics: Sequence[str], plain: Sequence[Dimension], bucket: str | None,
            bounds: tuple[datetime, datetime]) -> bool:
    """Whether the event metrics of ``q`` (the planner's split; read from the sessions) can read these
    rows: metrics among :data:`METRICS`, one dimension and it rolled, no filter but on it (which keeps
    or drops whole rows: a session has one value), no time bucket, a range of whole UTC days."""
    return (bool(ev_metrics) and all(m in METRICS for m in ev_metrics) and len(plain) == 1
            and plain[0].name in DIMENSIONS and plain[0].words is None and plain[0].goals is None
            and filters_roll(q.filters, plain) and bucket is None and q.date_range.instants is None
            and all(b.time() == datetime.min.time() for b in bounds))


def rows(source: str, days: Sequence[date], dimensions: Sequence[str]) -> Sql:
    """SELECT of the rows (with their ``day``) of the start days ``days`` and the dimensions named (and
    the total rows), from the session rows of the relation ``source``, which holds those days' sessions
    and the day before each's."""
    wanted = [("", "NULL::VARCHAR"), *((name, DIMENSIONS[name]) for name in dimensions)]
    near = sorted({*days, *(d - _DAY for d in days)})
    columns = "".join(f", {column} AS c{i}" for i, (_, column) in enumerate(wanted))
    keyed = Sql(f"SELECT start_time::DATE AS day, unnest(visitor_keys) AS k{columns} FROM {source} "
                "WHERE list_contains(?, start_time::DATE)", (near,))
    summed = Sql(f"SELECT start_time::DATE AS day, pageviews, events{columns} FROM {source} "
                 "WHERE list_contains(?, start_time::DATE)", (list(days),))
    parts = []
    for i, (name, _) in enumerate(wanted):
        keys = f"(SELECT DISTINCT day, c{i} AS value, k FROM keyed)"
        counted = Sql(
            "SELECT a.day, a.value, count(*) AS visitors, count(p.k) AS carried"
            + (", list_sort(list(a.k)) AS visitor_keys" if not name else "")
            + f" FROM {keys} a LEFT JOIN {keys} p ON p.day = a.day - 1 AND p.value IS NOT DISTINCT FROM "
            "a.value AND p.k = a.k WHERE list_contains(?, a.day) GROUP BY a.day, a.value", (list(days),))
        sums = f"SELECT day, c{i} AS value, sum(pageviews) AS pv, sum(events) AS ev FROM summed GROUP BY ALL"
        parts.append(
            Sql(f"SELECT s.day, '{name}' AS dimension, s.value, coalesce(n.visitors, 0)::BIGINT AS "
                "visitors, coalesce(n.carried, 0)::BIGINT AS carried, s.pv::BIGINT AS pageviews, "
                "s.ev::BIGINT AS events, "
                + ("n.visitor_keys" if not name else "NULL::UBIGINT[]") + " AS visitor_keys FROM ("
                + sums + ") s LEFT JOIN (") + counted
            + ") n ON n.day = s.day AND n.value IS NOT DISTINCT FROM s.value")
    body = with_ctes([("keyed", keyed), ("summed", summed)], Sql.join(parts, " UNION ALL "),
                     materialize=("keyed",))
    return "SELECT * FROM (" + body + ")"  # a subquery: the caller may add CTEs of its own


@dataclass(frozen=True, slots=True)
class VisitRows:
    """The visit rows a query reads: stored files and rows computed now (same columns)."""

    files: tuple[str, ...]
    live: pa.Table | None
    live_days: frozenset[date]

    @property
    def view(self) -> str:
        """The name under which :attr:`live` is registered for a statement."""
        return f"__mallard_visits_{id(self)}"

    def relation(self) -> Sql:
        """SQL of the union, with a ``day`` column (:attr:`live` registered as :attr:`view`)."""
        return union(_EMPTY, '"date"::DATE AS day, * EXCLUDE (site_id, "date")', self.files, self.live,
                     self.view)


def rows_for(store: Store, reading: Reading, reader: Reader, site: str, lower: datetime, upper: datetime,
             dimension: str, gap_seconds: int, *, cache: LiveCache | None,
             stored: bool = True) -> VisitRows | None:
    """The rows of ``dimension`` and the total rows of the UTC days of ``[lower, upper)`` (naive UTC,
    midnights): stored where fresh (unless ``stored`` is False), the others computed now from the
    query's session rows (registered on ``reader``). None when no day is stored and fresh: reading the
    sessions is then cheaper."""
    first, last = lower.date(), (upper - _DAY).date()
    held = reader.buffered_dates()
    listing = store.visit_files.listing(site) if stored else {}
    wanted = {d for d in set(store.lake.dates(site)) | held if first <= d <= last}
    files, live = split(store, site, listing, wanted, version(gap_seconds), held)
    if not files:
        return None
    table = None
    if live:  # computed from the sessions of those days and the day before each
        sessions = for_query(store, reading, reader, site, datetime.combine(min(live) - _DAY,
                                                                            datetime.min.time()),
                             datetime.combine(max(live) + _DAY, datetime.min.time()), gap_seconds,
                             overlap=False, cache=cache)
        def compute() -> pa.Table:
            sql = with_ctes([("session_rows", sessions.relation())],
                            rows("session_rows", sorted(live), [dimension]))
            return reader.execute(sql.text, sql.params)

        # the same session rows give the same visit rows: computed once while they serve
        key = ("visits", site, frozenset(live), dimension, sessions.files,
               tuple(Same(t) for t in sessions.computed))
        table = compute() if cache is None else cache.derived(key, compute)
    got = VisitRows(tuple(files), table, frozenset(live))
    if table is not None:
        reader.register(got.view, table)
    return got


def exact(reader: Reader, visited: VisitRows, cache: LiveCache | None = None) -> bool:
    """Whether each visitor key of ``visited``'s total rows is a key of one day or of two consecutive
    days (so that a value's visitors over the range are its days' minus their ``carried``).

    The stored days' keys are checked once per set of files (which never change) and remembered in
    ``cache``; then the keys of the days computed now, with every day they occur on."""
    # (days compared by adding a count: a date minus a date is no number in every engine)
    bad = "GROUP BY k HAVING count(*) > 2 OR max(day) <> min(day) + (count(*) - 1)::INTEGER"
    if len(visited.files) > 1:
        def check_stored() -> bool:
            stored = union(_EMPTY, '"date"::DATE AS day, * EXCLUDE (site_id, "date")', visited.files, None,
                           "")
            return _keys_hold(reader, stored, Sql(f"SELECT count(*) = 0 FROM (SELECT k FROM keyed {bad})"))

        if not (check_stored() if cache is None else cache.fact(("visits_exact", visited.files),
                                                                check_stored, lasting=True)):
            return False
    if not visited.live_days:
        return True
    opened = sorted(visited.live_days)

    def check_live() -> bool:
        return _keys_hold(reader, visited.relation(), Sql(
            "SELECT count(*) = 0 FROM (SELECT k FROM keyed WHERE k IN (SELECT k FROM keyed WHERE "
            f"list_contains(?, day)) {bad})", (opened,)))

    if cache is None or visited.live is None:
        return check_live()
    return cache.fact(("visits_exact_live", visited.files, Same(visited.live)), check_live)


def _keys_hold(reader: Reader, relation: Sql, test: Sql) -> bool:
    """The boolean ``test`` reads over ``keyed`` (each day and key of the total rows of ``relation``)."""
    return holds(reader, test, relation, ("keyed", Sql("SELECT day, unnest(visitor_keys) AS k FROM totals")),
                 materialize=("keyed",))


def build(store: Store, site: str, day: date, gap_seconds: int) -> bool:
    """Compute and store the rows of ``day`` (every dimension) from the stored sessions of the day and
    the day before; False (nothing written) while one of those is not stored fresh."""
    sessions = gather(store, store.reading, site, day - _DAY, day, gap_seconds)
    window = window_of(store, site, day, sessions)
    if window is None:
        return False
    first, last, files = window
    with store.reading(site, day, day) as reader:
        sql = with_ctes([("session_rows", sessions.relation())],
                        "SELECT * EXCLUDE (day) FROM (" + rows("session_rows", [day], list(DIMENSIONS))
                        + ") ORDER BY dimension, value NULLS FIRST")
        table = reader.execute(sql.text, sql.params)
    return store.visit_files.publish(site, day, table, files, first, last, version(gap_seconds)) is not None
