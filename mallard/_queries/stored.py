"""Session rows for a query: the stored partitions where they are fresh, computed from events for the rest.

A session belongs to the UTC day it starts on, and is computed from all of its events, wherever the
query's range ends (Plausible's rule: a range's sessions are those that start in it). The rows of a day
are stored (``sessions/``, see :mod:`mallard._store.derived`) once its events can no longer change
(backfill.py, run by maintenance and ``mallard compact``); a query reads the stored rows of
every day whose event files are still the ones they were built from, and computes the others (the open
tail, days changed since, days with events this process still buffers) from events, in one pass.

The computation of a set of start days reads the events from half a session window before the first
day to the end of the day after the last, and reads one more day at an end while a session it needs
still touches that end, so the rows are exact (a session may last longer than a day).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import StorageError
from .._store.derived import fingerprint
from . import provisional
from . import sessions as _sessions
from .acquisition import with_computed
from .freshness import Computed, LiveCache, listing_for, unchanged
from .provisional import Partial
from .sql import Sql, with_ctes

if TYPE_CHECKING:
    from .._store import Store
    from .._store.derived import DerivedPartition
    from .._store.reader import Reader

__all__ = ["Reading", "SessionRows", "build", "compute", "discard_unreadable", "for_query", "gather",
           "split", "stored_or_events", "union", "window_of"]

log = logging.getLogger("mallard.queries")
T = TypeVar("T")

_DAY: Final = timedelta(days=1)
_MICROSECOND: Final = timedelta(microseconds=1)
_MIDNIGHT: Final = datetime.min.time()
#: How many days before today a day's events are settled enough to store its sessions: a day's sessions
#: read the next day's events, which take new events until it ends (plus late ones, caught by the
#: fingerprint).
SETTLED_DAYS: Final = 2

Reading = Callable[[str | None, date | None, date | None], AbstractContextManager["Reader"]]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, _MIDNIGHT)


@dataclass(frozen=True, slots=True)
class SessionRows:
    """The session rows a query reads: stored files and rows computed now (same columns)."""

    files: tuple[str, ...]
    live: pa.Table | None
    live_days: frozenset[date]
    #: Per stored file, its start day and the last day of the events its sessions were computed from
    #: (:class:`~mallard._store.derived.DerivedPartition`'s ``day`` and ``last``): no session of the
    #: file lasts into a later day.
    windows: tuple[tuple[date, date], ...]
    #: The computed tables :attr:`live` is made of (each as :class:`LiveCache` keeps it: the same object
    #: while it serves), what rows derived from these name them by (:class:`~.freshness.Same`).
    computed: tuple[pa.Table, ...] = ()

    @property
    def view(self) -> str:
        """The name under which :attr:`live` is registered for a statement."""
        return f"__mallard_sessions_{id(self)}"

    def reaching(self, day: date) -> date:
        """The earliest start day of the sessions among these rows that may last into ``day`` (no
        later than ``day``): of the stored files, those whose window reaches it; of the computed rows,
        those ending on it or later."""
        days = [day, *(start for start, last in self.windows if last >= day)]
        if self.live is not None and self.live.num_rows:
            ends = pc.greater_equal(session_ends(self.live), pa.scalar(_midnight(day), pa.timestamp("us")))
            first = pc.min(pc.filter(self.live.column("start_time"), ends)).as_py()
            days += [] if first is None else [first.date()]
        return min(days)

    def relation(self) -> Sql:
        """SQL of the union (:attr:`live` registered as :attr:`view` by the caller)."""
        return union(_EMPTY, "* EXCLUDE (site_id, date)", self.files, self.live, self.view)


def union(empty: str, columns: str, files: tuple[str, ...], live: pa.Table | None, view: str) -> Sql:
    """SQL of a derived relation's rows: ``empty`` (a typed empty SELECT list, which fixes the column
    types), ``columns`` of the stored ``files`` (hive-partitioned), and ``live`` (registered as
    ``view``), matched by name."""
    parts = [Sql(f"SELECT {empty}")]
    if files:
        parts.append(Sql(f"SELECT {columns} FROM read_parquet(?, hive_partitioning=true, "
                         "hive_types_autocast=false)", (list(files),)))
    if live is not None and live.num_rows:
        parts.append(Sql(f"SELECT * FROM {view}"))
    return Sql.join(parts, " UNION ALL BY NAME ")


# An empty relation with the stored column types: the union's first member fixes them.
_EMPTY: Final = ", ".join(f"NULL::{t} AS {c}" for c, t in _sessions.COLUMNS.items()) + " WHERE false"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def gather(store: Store, reading: Reading, site: str, first: date, last: date, gap_seconds: int, *,
           buffered: Iterable[date] = (), overlap: bool = False, cache: LiveCache | None = None,
           stored: bool = True, held_since: datetime | None = None, mark: int | None = None
           ) -> SessionRows:
    """The sessions starting on the UTC days ``[first, last]`` (with ``overlap``, also those starting
    earlier that reach into ``first``), stored where fresh (unless ``stored`` is False), else computed
    (or taken from ``cache``). A fresh provisional partition (provisional.py) serves an open day's
    closed sessions; its open ones are computed.

    ``buffered``: the days of events the query sees that are not in the lake yet (they make every
    partition whose window holds them stale); ``held_since``: the earliest of those events; ``mark``:
    the query's reading's mark of them (what ``cache`` computed from the same ones serves it).
    """
    held = set(buffered)
    listing = store.session_files.listing(site) if stored else {}
    # A session starts with an event: days without events (stored or buffered) have none.
    present = set(store.lake.dates(site)) | held
    wanted = set(_days(first - _DAY, last) if overlap else _days(first, last)) & present
    if overlap:  # sessions of earlier days that reach into the range (longer than a day)
        wanted |= {d for d, p in listing.items() if d < first and p.last >= first}
    version = _sessions.version(gap_seconds)
    files, live = split(store, site, listing, wanted, version, held)
    partly: dict[date, tuple[DerivedPartition, pa.Array]] = {}
    for day in sorted(live & listing.keys()):
        part = listing[day]
        if part.horizon is None or not provisional.fresh(store, site, part, version, held_since):
            continue
        keys = provisional.open_keys(store.session_files.lake, part.path)
        if keys is None:
            discard_unreadable(store, [part.path])
            continue
        partly[day] = (part, keys)
    files += [p.path for p, _ in partly.values()]
    live -= set(partly)
    tables = []
    if live:
        reach = _midnight(first) if overlap else None
        cache_key = (site, frozenset(live), reach, frozenset(wanted - live), gap_seconds)
        def run() -> Computed:
            return compute(store, reading, site, live, gap_seconds, held=held, reach=reach,
                           exclude=frozenset(wanted - live))

        tables.append((run() if cache is None else cache.computed(cache_key, store, version, held,
                                                                  run, mark)).table)
    rest = provisional.partial(partly)
    if rest is not None:
        open_key = ("open", site, tuple(sorted((d, p.path) for d, p in rest.parts.items())), gap_seconds)
        def run_open() -> Computed:
            return compute(store, reading, site, set(rest.parts), gap_seconds, held=held, partial=rest)

        tables.append((run_open() if cache is None else cache.computed(open_key, store, version, held,
                                                                       run_open, mark)).table)
    table = None if not tables else tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    parts = {p.path: p for p in listing.values()}
    windows = tuple((parts[f].day, parts[f].last) for f in files)
    return SessionRows(tuple(files), table, frozenset(live | set(partly)), windows, tuple(tables))


def window_of(store: Store, site: str, day: date, rows: SessionRows) -> tuple[date, date, list[str]] | None:
    """The window of days (and its event files, listed now: before the build reads, so that a file written
    since makes it stale) of a partition of ``day`` derived from the stored session ``rows`` and the
    day's events: the days of those partitions' windows and the day; None while one of those sessions is
    not stored fresh (it is built after them)."""
    if rows.live is not None or rows.live_days:
        return None
    read = set(rows.files)
    used = [p for p in store.session_files.listing(site).values() if p.path in read]
    first = min([day, *(p.first for p in used)])
    last = max([day, *(p.last for p in used)])
    return first, last, store.lake.files(site, first, last)


def split(store: Store, site: str, listing: Mapping[date, DerivedPartition], wanted: Iterable[date],
          version: int | str, held: Iterable[date]) -> tuple[list[str], set[date]]:
    """The ``wanted`` days' stored files that are fresh (in ``listing``, :func:`unchanged`), and the
    days to compute instead (provisional partitions among them, which :func:`gather` may complete)."""
    files: list[str] = []
    live: set[date] = set()
    days = sorted(wanted)
    settled = {d: p for d in days if (p := listing.get(d)) is not None and p.horizon is None}
    lake = listing_for(store, site, settled.values())
    for day in days:
        part = settled.get(day)
        if part is not None and unchanged(store, site, part, version, held, lake):
            files.append(part.path)
        else:
            live.add(day)
    return files, live


def for_query(store: Store, reading: Reading, reader: Reader, site: str, lower: datetime,
              upper: datetime, gap_seconds: int, *, overlap: bool, cache: LiveCache | None,
              stored: bool = True) -> SessionRows:
    """:func:`gather` for a query over the naive UTC bounds ``[lower, upper)`` read by ``reader``
    (whose buffered rows count), the computed part registered on ``reader``."""
    rows = gather(store, reading, site, lower.date(), (upper - _MICROSECOND).date(), gap_seconds,
                  buffered=reader.buffered_dates(), overlap=overlap, cache=cache, stored=stored,
                  held_since=reader.buffered_since(), mark=reader.buffered_mark)
    if rows.live is not None:
        reader.register(rows.view, rows.live)
    return rows


def stored_or_events(attempt: Callable[[bool, list[str]], T], discard: Callable[[Iterable[str]], bool]) -> T:
    """``attempt(True, read)`` (from stored derived files where fresh, listing in ``read`` those it
    reads); if it fails and ``discard`` finds one of them unreadable, ``attempt(False, [])`` (events)."""
    read: list[str] = []
    try:
        return attempt(True, read)
    except (duckdb.Error, StorageError):
        if not read or not discard(read):
            raise
    return attempt(False, [])


def discard_unreadable(store: Store, files: Iterable[str]) -> bool:
    """Delete the stored sessions or rollup ``files`` that cannot be read (a read-only store only
    reports them: queries skip them by computing every day); whether any was unreadable."""
    bad = [f for f in files if not _readable(store, f)]
    for path in bad:
        log.warning("stored derived file %s is unreadable: %s", path,
                    "skipped" if store.read_only else "deleted, to be built again")
        if not store.read_only:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return bool(bad)


def _readable(store: Store, path: str) -> bool:
    try:
        store.session_files.lake.read_table(path)  # the derived relations' files (rollups' too)
    except FileNotFoundError:
        return True  # replaced by a newer build meanwhile: not damaged
    except Exception:  # any failure to decode is damage
        return False
    return True


def compute(store: Store, reading: Reading, site: str, days: set[date], gap_seconds: int, *,
            reach: datetime | None = None, exclude: frozenset[date] = frozenset(),
            held: Iterable[date] = (), partial: Partial | None = None) -> Computed:
    """Session rows starting on ``days`` (UTC), computed from the events ``reading`` gives; with
    ``reach``, also the sessions starting before ``min(days)`` that last until ``reach`` or later,
    except those starting on a day of ``exclude``. ``held``: days of events not in the lake yet.
    With ``partial`` (days with provisional partitions, provisional.py), only the sessions of ``days``
    open at their horizons, from the events it names.
    """
    gap = timedelta(seconds=gap_seconds)
    present = set(store.lake.dates(site)) | set(held)
    # an event this close before a day may continue into it (the calendar's ends clamp the window)
    start = partial.since if partial is not None else max(_midnight(min(days)) - gap, datetime.min)
    end = _midnight(max(days) + 2 * _DAY) if max(days) < date.max - 2 * _DAY else datetime.max
    wanted = sorted(days)
    while True:
        after = store.lake.files(site, end.date(), end.date())  # before the run: see below
        table, files, mark = _run(reading, site, start, end, wanted, reach, sorted(exclude), gap_seconds,
                                  partial)
        ends = _last_end(table)
        starts = pc.min(table.column("start_time")).as_py() if table.num_rows else None
        later = any(d >= end.date() for d in present)
        earlier = any(d < start.date() or (d == start.date() and start.time() != _MIDNIGHT)
                      for d in present)
        if ends is not None and ends >= end - gap and later:
            end += _DAY  # a session may go on in the next day
        elif reach is not None and starts is not None and starts < start + gap and earlier:
            start = _midnight(start.date()) - gap if start.time() != _MIDNIGHT else start - _DAY
        else:
            break
    if ends is not None and ends >= end - gap:
        # A session touches the window's end: an event the next day would extend it, so the rows
        # depend on that day's files too (none when the run started, or it would have been read).
        last, files = end.date(), (*files, *after)
    else:
        last = (end - _DAY).date()
    return Computed(table, site, start.date(), last, files,
                    fingerprint(files, _sessions.version(gap_seconds)), mark)


def _last_end(table: pa.Table) -> datetime | None:
    """The time of the last event of any session in ``table``."""
    if not table.num_rows:
        return None
    last: datetime = pc.max(session_ends(table)).as_py()
    return last


def session_ends(table: pa.Table) -> pa.Array:
    """The time of each session's last event (session rows: ``start_time`` + ``duration_us``)."""
    start = pc.cast(table.column("start_time"), pa.int64())
    return pc.cast(pc.add(start, table.column("duration_us")), pa.timestamp("us"))


def session_rows(reader: Reader, site: str, start: datetime, end: datetime, gap_seconds: int, *,
                 keep: Sql | None = None, narrow: Sql | None = None) -> pa.Table:
    """The session rows (:data:`sessions.COLUMNS`) of ``site``'s events that ``reader`` reads in
    ``[start, end)`` (with ``narrow``, those of them meeting it), those meeting ``keep``, in start
    order."""
    with_ctes_, select = _sessions.rows(gap_seconds)
    src, params = reader.source()
    scoped = ("SELECT * FROM (" + with_computed(Sql(src, tuple(params)))
              + Sql(") WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, start, end)))
    if narrow is not None:
        scoped = scoped + " AND " + narrow
    body = Sql("SELECT * FROM (") + select + ")"
    if keep is not None:
        body = body + " WHERE " + keep
    sql = with_ctes([("scoped", scoped), *with_ctes_], body + " ORDER BY start_time, visitor_keys",
                    inline=())
    return reader.execute(sql.text, sql.params)


def _run(reading: Reading, site: str, start: datetime, end: datetime, days: list[date],
         reach: datetime | None, exclude: list[date], gap_seconds: int, partial: Partial | None
         ) -> tuple[pa.Table, tuple[str, ...], int | None]:
    keep = Sql("list_contains(?, start_time::DATE)", (days,)) if partial is None else partial.keep(
        gap_seconds)
    if reach is not None:
        keep = keep + Sql(" OR (start_time < ? AND start_time + to_microseconds(duration_us) >= ? "
                          "AND NOT list_contains(?, "
                          "start_time::DATE))", (_midnight(min(days)), reach, exclude))
    with reading(site, start.date(), (end - _DAY).date()) as reader:
        narrow = None
        if partial is not None:
            keys = f"__mallard_open_keys_{id(partial)}"
            reader.register(keys, partial.keys)
            narrow = partial.scope(keys)
        table = session_rows(reader, site, start, end, gap_seconds, keep=keep, narrow=narrow)
        # the mark when the events read, in [start, end), include buffered ones
        return table, reader.files, reader.mark_for(start.date(), (end - _DAY).date())


# -- building stored partitions ---------------------------------------------------------------------
def build(store: Store, site: str, day: date, gap_seconds: int) -> None:
    """Compute and store the sessions starting on ``day`` from the lake's files (buffered events are
    not read: the fingerprint is of files)."""
    done = compute(store, store.reading, site, {day}, gap_seconds)
    # The fingerprint hashes the files the computation saw: a file written since makes the partition
    # stale at once (rebuilt at the next pass), never served without its events.
    store.session_files.publish(site, day, storage_order(done.table), done.files, done.first,
                                done.last, _sessions.version(gap_seconds))


# A stored day's rows: bounces first, then grouped by place and client, a visitor's sessions together,
# then by start. Equal neighbours make the attribute columns' runs long and a visitor's repeated keys
# delta to zero: 17% fewer bytes than in start order, measured at 5M events (benchmarks/README.md).
_STORAGE_ORDER: Final = ("country_code", "region", "city", "device_type", "os", "os_version",
                         "browser", "browser_version", "screen_size", "first_key", "start_time")


def storage_order(table: pa.Table) -> pa.Table:
    """``table`` (session rows) in the order they are stored in."""
    if table.num_rows < 2:
        return table
    keys = [("bounce", "descending"), *((c, "ascending") for c in _STORAGE_ORDER)]
    marked = table.append_column("bounce", pc.equal(table.column("duration_us"), 0)).append_column(
        "first_key", pc.list_element(table.column("visitor_keys"), 0))
    order = pc.sort_indices(marked, sort_keys=keys)
    return table.take(order)
