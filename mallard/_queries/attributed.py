"""Events attributed to their sessions, stored per settled day: the ``ev_rows`` of a plan without the join.

An event metric under a visit filter ("pageviews of the visits from Google"), or by a source attribute
(whose value is the session's, not the event's), reads each event with its session's columns: the
builder's ``ev_rows``, a join of the range's events to the sessions they belong to (``BELONGS``: the
visitor key and the session's span). That join is most of such a statement's cost (at 5M events, a
week's 1M events took 0.2 s of join in each of the four statements of a filtered dashboard view).

So a settled day's join is stored once, as the sessions and rollups are (``attributed/``, same layout
and freshness rule, :mod:`mallard._store.derived`): every event of the UTC day (every lake column, the
computed ``channel`` included) with its session's attribution columns (``s_<column>``), entry and exit
pages and identity (``s_vk0``, ``s_start``), and the event's visitor key (``vk``: what the visitors
metrics count over these rows, 8 bytes instead of the 64 characters of ``visitor_id``). Its window of
days is that of the session partitions it read (the day before, the day itself and the one after, and
earlier days whose sessions last into it), so a late event, a compaction or an erasure on any of them
makes it stale, and it is built again after those sessions are. A query reads the fresh stored days as
they are and joins only the others (days changed since, days of events this process buffers).

The open days (yesterday and today) are stored *provisionally* as their sessions are (provisional.py):
maintenance stores, at a horizon ``H``, the day's events whose sessions were closed at ``H`` (their last
event more than the session window ``W`` before it: no later event can join them, so their rows are
final). A query joins the rest: the day's events of the sessions ending at ``H - W`` or later, all of
them at or after ``since``, the earliest start of those sessions (in the file's name). Each event
belongs to one session, so the two parts hold each event once. The partition's fingerprint hashes the
event files holding an event before ``H`` of the days its sessions read: files flushed since leave it
fresh, a late event before ``H`` (or a buffered one) makes it stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from . import provisional
from . import sessions as _sessions
from .acquisition import with_computed
from .registry import ATTRIBUTION_COLUMNS
from .sessions import BELONGS, reaching, with_end_time
from .sql import Sql, with_ctes
from .stored import gather, split, window_of

if TYPE_CHECKING:
    import pyarrow as pa

    from .._store import Store
    from .._store.derived import DerivedPartition
    from .._store.reader import Reader
    from .stored import SessionRows

__all__ = ["ATTRIBUTES", "PAGES", "SESSION_COLUMNS", "Attributed", "Run", "build", "build_open", "for_days",
           "join", "version"]

_DAY: Final = timedelta(days=1)
#: The session columns a stored row carries: the attribution columns (as ``s_<column>``), the pages.
ATTRIBUTES: Final = tuple(sorted(ATTRIBUTION_COLUMNS))
PAGES: Final = ("entry_page", "exit_page")
#: Those columns by the names queries read them under.
SESSION_COLUMNS: Final = frozenset({*(f"s_{a}" for a in ATTRIBUTES), *PAGES})
#: The format of stored rows: part of every partition's fingerprint (with the session window).
FORMAT: Final = 2


def version(gap_seconds: int) -> str:
    """The version the fingerprint of attributed events stored with this session window hashes."""
    return f"{_sessions.version(gap_seconds)}/attributed-{FORMAT}"


def join(columns: str, pages: Sequence[str], attributes: Sequence[str], identity: bool, lower: datetime,
         upper: datetime, *, only: bool = False, since: datetime | None = None,
         ending: Sql | None = None) -> Sql:
    """SELECT of the events of ``scoped`` (``columns`` of them: ``e.*``, or a list) with their visitor key
    (``vk``: :func:`~mallard._queries.sessions.visitor_key` of ``visitor_id``) and their session's
    ``pages``, ``attributes`` (as ``s_<column>``) and, with ``identity``, ``s_vk0`` and ``s_start``:
    the sessions of ``session_rows`` (with ``end_time``) reaching ``[lower, upper)`` (naive UTC);
    with ``only``, the events of that range only (else ``scoped`` is within it). ``since``: no session
    starting earlier reaches the range (:meth:`Attributed.since`), so the stored sessions of earlier
    days are not read. ``ending``: a further condition on the sessions (on ``end_time``), which
    splits an open day's events between its stored rows and those joined (:class:`Run`)."""
    picked = "".join(f", {p}" for p in pages) + "".join(f", {a} AS s_{a}" for a in attributes)
    return (Sql(
        f"SELECT {columns}, s.vid AS vk" + "".join(f", s.{p}" for p in pages)
        + "".join(f", s.s_{a}" for a in attributes) + (", s.vk0 AS s_vk0, s.start_time AS s_start"
                                                       if identity else "")
        + " FROM scoped e JOIN (SELECT " + ("visitor_keys[1] AS vk0, " if identity else "")
        + f"unnest(visitor_keys) AS vid, start_time, end_time{picked} FROM session_rows WHERE ")
        + reaching(lower, upper, since) + ("" if ending is None else " AND " + ending) + f") s ON {BELONGS}"
        + (Sql(" WHERE e.timestamp >= ? AND e.timestamp < ?", (lower, upper)) if only else ""))


@dataclass(frozen=True, slots=True)
class Run:
    """Part of a query's range whose events are joined to their sessions: ``[lower, upper)``; with
    ``ending``, the events of the sessions ending then or later only (an open day's others are stored)."""

    lower: datetime
    upper: datetime
    ending: datetime | None = None

    def sessions(self) -> Sql | None:
        """The condition on the sessions joined (for :func:`join`'s ``ending``)."""
        return None if self.ending is None else Sql("end_time >= ?", (self.ending,))


@dataclass(frozen=True, slots=True)
class Attributed:
    """The stored attributed events a query reads: the files, the UTC days they cover whole, and the
    open days they cover in part (provisional partitions)."""

    files: tuple[str, ...]
    days: frozenset[date]
    #: The earliest start day of a session (of the query's session rows) that may last into a day
    #: (:meth:`SessionRows.reaching <mallard._queries.stored.SessionRows.reaching>`); None: unknown.
    reaching: Callable[[date], date] | None = None
    #: Per open day stored in part: the earliest event joined (``since``), and the end from which a
    #: session's events are joined (the horizon less the session window).
    opened: tuple[tuple[date, datetime, datetime], ...] = ()

    def since(self, lower: datetime) -> datetime | None:
        """The earliest start of a session that may reach ``lower`` (a run of :meth:`outside`): the
        events joined there are matched to the sessions starting then or later only."""
        return None if self.reaching is None else datetime.combine(self.reaching(lower.date()),
                                                                   datetime.min.time())

    def serves(self, session_columns: Iterable[str]) -> bool:
        """Whether a stored day can be read for events with these session columns (``s_<column>``,
        ``entry_page``, ``exit_page``): every one is stored (else the events are joined)."""
        return bool(self.days or self.opened) and set(session_columns) <= SESSION_COLUMNS

    def relation(self, columns: Sequence[str], pages: Sequence[str], attributes: Sequence[str],
                 identity: bool, lower: datetime, upper: datetime) -> Sql:
        """SELECT of the stored rows in ``[lower, upper)`` with the columns of :func:`join`'s."""
        picked = [f'"{c}"' for c in columns] + ["vk", *pages] + [f"s_{a}" for a in attributes]
        picked += ["s_vk0", "s_start"] if identity else []
        return f"SELECT {', '.join(picked)} FROM " + self.rows(lower, upper)

    def rows(self, lower: datetime, upper: datetime) -> Sql:
        """A relation (parenthesised) of the stored rows in ``[lower, upper)``, every column."""
        return Sql("(SELECT * FROM read_parquet(?) WHERE timestamp >= ? AND timestamp < ?)",
                   (list(self.files), lower, upper))

    def outside(self, lower: datetime, upper: datetime) -> list[Run]:
        """The runs of ``[lower, upper)`` whose events are joined to their sessions, in order: the days
        not stored, and of each open day stored in part, its events of sessions ending late."""
        opened = {day: (since, ending) for day, since, ending in self.opened}
        runs: list[Run] = []
        t = lower
        while t < upper:
            day_end = upper if t.date() == date.max else min(
                datetime.combine(t.date() + _DAY, datetime.min.time()), upper)
            part = opened.get(t.date())
            if part is not None:
                if max(t, part[0]) < day_end:
                    runs.append(Run(max(t, part[0]), day_end, part[1]))
            elif t.date() not in self.days:
                if runs and runs[-1].upper == t and runs[-1].ending is None:
                    runs[-1] = Run(runs[-1].lower, day_end)
                else:
                    runs.append(Run(t, day_end))
            t = day_end
        return runs


def for_days(store: Store, site: str, lower: datetime, upper: datetime, gap_seconds: int,
             held: Iterable[date], held_since: datetime | None = None) -> Attributed:
    """The fresh stored partitions of the UTC days of ``[lower, upper)`` (``held``: the days of the
    events the query reads that are not in the lake yet, the earliest of them ``held_since``): settled
    ones, and provisional ones that may be completed."""
    listing = store.attributed_files.listing(site)
    wanted = {d for d in listing if lower.date() <= d and datetime.combine(d, datetime.min.time()) < upper}
    base = version(gap_seconds)
    files, live = split(store, site, listing, wanted, base, set(held))
    gap = timedelta(seconds=gap_seconds)
    opened = []
    for day in sorted(live):
        part = listing[day]
        if part.horizon is not None and part.since is not None and provisional.fresh(
                store, site, part, base, held_since):
            files.append(part.path)
            opened.append((day, part.since, part.horizon - gap))
    return Attributed(tuple(files), frozenset(wanted - live), opened=tuple(opened))


def build(store: Store, site: str, day: date, gap_seconds: int) -> bool:
    """Compute and store the attributed events of ``day`` from the lake's files and the stored sessions
    of the days before it; False (nothing written) while one of those sessions is not stored fresh."""
    sessions = gather(store, store.reading, site, day, day, gap_seconds, overlap=True)
    window = window_of(store, site, day, sessions)
    if window is None:
        return False
    first, last, files = window
    with store.reading(site, day, day) as reader:
        table = _day_rows(reader, site, day, sessions)
    return store.attributed_files.publish(site, day, table, files, first, last,
                                          version(gap_seconds)) is not None


def _day_rows(reader: Reader, site: str, day: date, sessions: SessionRows, ending: Sql | None = None
              ) -> pa.Table:
    """The stored rows of ``day``: its events (``reader``'s) joined to ``sessions`` (those meeting
    ``ending`` only, see :func:`join`), in storage order (by session, then time)."""
    lower = datetime.combine(day, datetime.min.time())
    if sessions.live is not None:
        reader.register(sessions.view, sessions.live)
    src, params = reader.source()
    scoped = ("SELECT * EXCLUDE (site_id) FROM (" + with_computed(Sql(src, tuple(params)))
              + Sql(") WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, lower, lower + _DAY)))
    body = join("e.*", PAGES, ATTRIBUTES, True, lower, lower + _DAY, ending=ending)
    sql = with_ctes([("scoped", scoped), ("session_rows", with_end_time(sessions.relation()))],
                    "SELECT * FROM (" + body + ") ORDER BY s_vk0, s_start, timestamp", inline=())
    return reader.execute(sql.text, sql.params)


def build_open(store: Store, site: str, day: date, gap_seconds: int, horizon: datetime
               ) -> DerivedPartition | None:
    """Store the provisional attributed events of the open ``day`` at ``horizon``: those of its events
    whose sessions were closed at the horizon, from the lake's files (the sessions as a query reads
    them: stored where fresh, else computed). None when nothing was written (the day starts after the
    horizon, or a source file vanished meanwhile)."""
    lower = datetime.combine(day, datetime.min.time())
    if horizon <= lower:
        return None
    ending = horizon - timedelta(seconds=gap_seconds)
    sessions = gather(store, store.reading, site, day, day, gap_seconds, overlap=True)
    # a session reaching the day starts on the day after the first day of events it depends on
    first = min(day, sessions.reaching(day)) - _DAY
    listed = store.lake.files(site, first, horizon.date())  # before the reading: see build()
    with store.reading(site, day, day) as reader:
        table = _day_rows(reader, site, day, sessions, Sql("end_time < ?", (ending,)))
        # the earliest event a reader joins: the start of the first session open at the horizon
        opened = Sql("SELECT min(start_time) FROM (") + with_end_time(sessions.relation()) + Sql(
            ") WHERE end_time >= ? AND start_time < ?", (max(lower, ending), lower + _DAY))
        start = reader.execute(opened.text, opened.params).column(0)[0].as_py()
    since = min(ending, start or ending).replace(microsecond=0)
    return store.attributed_files.publish(
        site, day, table, provisional.files_before(store, listed, horizon), first, horizon.date(),
        provisional.version(version(gap_seconds), horizon), horizon=(horizon, since))
