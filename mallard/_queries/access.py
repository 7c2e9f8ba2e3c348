"""What the behavioural analyses (funnels, retention, flow) need from :class:`~mallard._queries.Queries`.

They receive an :class:`Access` instead of the Queries object, so they never reach into its private
state: a factory of consistent readers (stored partitions plus the buffered events), the stored session
rows, and the settings their answers depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._store.reader import Reader
    from .attributed import Attributed
    from .periods import DateRange
    from .rollups import RollupRows
    from .stored import SessionRows

__all__ = ["Access", "ReaderFactory"]

#: ``reading(site, first, last)``: a context manager yielding a Reader over the partitions dated
#: ``[first, last]`` (``None``: unbounded) of ``site`` (``None``: every site), buffered events included.
ReaderFactory = Callable[[str | None, date | None, date | None], AbstractContextManager["Reader"]]


@dataclass(frozen=True, slots=True)
class Access:
    """A reader factory and the settings an analysis depends on."""

    reading: ReaderFactory
    gap_seconds: int
    """The session window (``session_window_minutes``) in seconds."""
    salt_rotation_days: int
    """``visitor_salt_rotation_days``: how long an anonymous visitor id lives."""
    today_utc: Callable[[], date]
    """Today's date in UTC (the injected clock)."""
    sessions: Callable[[Reader, str, DateRange, bool], SessionRows]
    """``sessions(reader, site, range, stored)``: the session rows starting in the range or reaching
    into it (stored where fresh unless ``stored`` is False; the computed part registered on ``reader``)."""
    rollups: Callable[[Reader, str, DateRange, str, bool], RollupRows | None]
    """``rollups(reader, site, range, dimension, stored)``: the per-day rollup rows of ``dimension`` and
    the totals over the range (rollups.py; the computed part registered on ``reader``), or None when
    they cannot answer (no fresh stored day, visitor ids that are not day-local)."""
    discard: Callable[[Iterable[str]], bool]
    """Delete the unreadable ones of these stored sessions or rollup files; whether there was one."""
    attributed: Callable[[Reader, str, datetime, datetime], Attributed]
    """``attributed(reader, site, lower, upper)``: the fresh stored attributed events (attributed.py) of
    the UTC days of ``[lower, upper)`` (naive UTC), for the days of events ``reader`` buffers none."""
