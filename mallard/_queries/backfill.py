"""The backfill: the stored sessions (stored.py, provisional.py), rollups (rollups.py), attributed
events (attributed.py) and visit rows (visits.py) of the days that need them, built by maintenance in
the background and by ``mallard compact`` and :meth:`mallard.Mallard.build_sessions` for every day.

A pass first lists the days to build, then builds them oldest first within its time budget, reporting
each day done to its :class:`~mallard._progress.Progress`. One process builds at a time
(``state/sessions.lock``); the others return at once.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from .._progress import Progress, silent
from . import attributed, provisional, rollups, stored, visits
from . import sessions as _sessions
from .freshness import unchanged

if TYPE_CHECKING:
    from .._store import Store
    from .._store.derived import DerivedPartition

__all__ = ["BuildPass", "backfill", "build_open", "build_settled"]

_DAY: Final = timedelta(days=1)


@dataclass
class BuildPass:
    """What one :func:`build_settled` pass did: partitions built, and whether it looked at every day it
    was asked to (False: out of time, or another process was building)."""

    built: int = 0
    complete: bool = True


@dataclass(frozen=True, slots=True)
class _Day:
    site: str
    day: date
    sessions: bool  # its sessions partition is built (else only its rollups)
    horizon: datetime | None = None  # a provisional partition's; None: the day is settled
    rollups: bool = False  # its rollups are built for good
    open_rollups: bool = False  # its provisional rollups are built (today's), at the horizon
    attributed: bool = False  # its attributed events are built (after its sessions and the day before's)
    visits: bool = False  # its visit rows are built (after its sessions and the day before's)


def _settled(store: Store, gap_seconds: int, today: date, site: str | None,
             near: Collection[tuple[str, date]] | None) -> list[_Day]:
    """The settled days (up to ``today`` − 2) whose sessions, rollups, attributed events or visit rows
    are missing or stale."""
    candidates: dict[str, set[date]] | None = None
    if near is not None:
        candidates = {}
        for s, d in near:
            # attributed events read the sessions of the day before: two days after a write
            candidates.setdefault(s, set()).update((d - _DAY, d, d + _DAY, d + 2 * _DAY))
    sites = [site] if site is not None else (store.lake.sites() if candidates is None else sorted(candidates))
    out = []
    for s in sites:
        listing = store.session_files.listing(s)
        rolled = store.rollup_files.listing(s)
        attributed_parts = store.attributed_files.listing(s)
        visit_parts = store.visit_files.listing(s)
        for day in store.lake.dates(s):
            if day > today - timedelta(days=stored.SETTLED_DAYS):
                break
            if candidates is not None and day not in candidates.get(s, ()):
                continue
            part, rollup = listing.get(day), rolled.get(day)
            stale = part is None or part.horizon is not None or not unchanged(
                store, s, part, _sessions.version(gap_seconds))
            unrolled = rollup is None or not unchanged(store, s, rollup, rollups.VERSION)
            attributed_part = attributed_parts.get(day)
            unattributed = attributed_part is None or attributed_part.horizon is not None or not unchanged(
                store, s, attributed_part, attributed.version(gap_seconds))
            visit_part = visit_parts.get(day)
            unvisited = visit_part is None or not unchanged(store, s, visit_part, visits.version(gap_seconds))
            if stale or unrolled or unattributed or unvisited:
                out.append(_Day(s, day, stale, rollups=unrolled, attributed=unattributed,
                                visits=unvisited))
    return out


def _open(store: Store, gap_seconds: int, now: datetime, site: str | None) -> list[_Day]:
    """The open days (yesterday and today, UTC, with events) whose provisional partition (of sessions,
    of attributed events) is missing, stale or older than :data:`provisional.REFRESH`, or whose rollups
    are due: yesterday's for good (a day's rollups read its own events only, so they are stored as soon
    as it is over), today's provisional ones under the same rule as its provisional sessions."""
    horizon = provisional.horizon_at(now)
    out = []

    def current(part: DerivedPartition | None, base: int | str) -> bool:
        return (part is not None and part.horizon is not None
                and now - part.horizon < provisional.REFRESH + provisional.LAG
                and provisional.fresh(store, s, part, base, None))

    for s in [site] if site is not None else store.lake.sites():
        listing = store.session_files.listing(s)
        rolled = store.rollup_files.listing(s)
        attributed_parts = store.attributed_files.listing(s)
        for day in store.lake.dates(s):
            if day <= now.date() - timedelta(days=stored.SETTLED_DAYS) or day > horizon.date():
                continue
            sessions = not current(listing.get(day), _sessions.version(gap_seconds))
            over = day < horizon.date()
            roll = over and (day not in rolled or not unchanged(store, s, rolled[day], rollups.VERSION))
            open_roll = not over and not current(rolled.get(day), rollups.VERSION)
            attributing = not current(attributed_parts.get(day), attributed.version(gap_seconds))
            if sessions or roll or open_roll or attributing:
                out.append(_Day(s, day, sessions, horizon, roll, open_roll, attributed=attributing))
    return out


def _build(store: Store, gap_seconds: int, days: list[_Day], deadline: float, progress: Progress
           ) -> tuple[BuildPass, int]:
    """Build ``days`` until ``deadline`` (monotonic); the settled days' pass and the number of
    provisional partitions written."""
    step = progress("sessions", len(days), "days")
    settled, opened = BuildPass(), 0
    for d in days:
        if time.monotonic() > deadline:
            settled.complete = settled.complete and d.horizon is not None
            break
        if d.horizon is None:
            if d.sessions:
                stored.build(store, d.site, d.day, gap_seconds)
            settled.built += 1
        elif d.sessions and provisional.build(store, d.site, d.day, gap_seconds, d.horizon) is not None:
            opened += 1
        if d.rollups:
            rollups.build(store, d.site, d.day)
        if d.attributed and d.horizon is None:
            attributed.build(store, d.site, d.day, gap_seconds)
        elif d.attributed and d.horizon is not None and attributed.build_open(
                store, d.site, d.day, gap_seconds, d.horizon) is not None:
            opened += 1
        if d.visits:
            visits.build(store, d.site, d.day, gap_seconds)
        if d.open_rollups and d.horizon is not None and provisional.build_rollups(
                store, d.site, d.day, d.horizon) is not None:
            opened += 1
        step(1)
    return settled, opened


def build_settled(store: Store, gap_seconds: int, *, today: date | None = None,
                  budget_secs: float = 10.0, site: str | None = None,
                  near: Collection[tuple[str, date]] | None = None,
                  progress: Progress = silent) -> BuildPass:
    """Build the stored sessions and rollups of every settled day (up to ``today`` − 2, UTC) that has
    none or a stale one, oldest first, for ``budget_secs`` at most.

    ``near``: only the days whose sessions can depend on these (site, day) partitions (the day before,
    the day itself and the day after), e.g. those a process just wrote; None: every day.
    """
    deadline = time.monotonic() + budget_secs
    with store.exclusive("sessions.lock") as mine:
        if not mine:
            return BuildPass(complete=False)
        days = _settled(store, gap_seconds, today or datetime.now(UTC).date(), site, near)
        return _build(store, gap_seconds, days, deadline, progress)[0]


def build_open(store: Store, gap_seconds: int, now: datetime, *, budget_secs: float = 10.0,
               site: str | None = None, progress: Progress = silent) -> int:
    """Build the provisional partitions of the open days (``now``: naive UTC) that need one (sessions,
    and today's rollups), and yesterday's rollups. Returns the number of provisional partitions built."""
    deadline = time.monotonic() + budget_secs
    with store.exclusive("sessions.lock") as mine:
        if not mine:
            return 0
        return _build(store, gap_seconds, _open(store, gap_seconds, now, site), deadline, progress)[1]


def backfill(store: Store, gap_seconds: int, now: datetime, *, budget_secs: float,
             near: Collection[tuple[str, date]] | None = None, progress: Progress = silent
             ) -> tuple[BuildPass, int]:
    """The settled days (only those near ``near``, when given), then the open days, in one pass of
    ``budget_secs`` (``now``: aware): the settled days' :class:`BuildPass` and the number of
    provisional partitions built."""
    deadline = time.monotonic() + budget_secs
    with store.exclusive("sessions.lock") as mine:
        if not mine:
            return BuildPass(complete=False), 0
        utc = now.astimezone(UTC).replace(tzinfo=None)
        days = _settled(store, gap_seconds, utc.date(), None, near) + _open(store, gap_seconds, utc, None)
        return _build(store, gap_seconds, days, deadline, progress)
