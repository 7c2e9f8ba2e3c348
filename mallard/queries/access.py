"""What the behavioural analyses (funnels, retention, flow) need from :class:`~mallard.queries.Queries`.

They receive an :class:`Access` instead of the Queries object, so they never reach into its private
state: a factory of consistent readers (stored partitions plus the buffered events) and the two
settings their answers depend on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.reader import Reader

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
