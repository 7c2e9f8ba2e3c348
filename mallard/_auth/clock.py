"""The clock of :mod:`mallard._auth` and the timestamps it stores (``updated_at``, ``created_at``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

__all__ = ["Clock", "stamp", "utcnow"]

Clock = Callable[[], datetime]
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default clock of :class:`Auth`)."""
    return datetime.now(UTC)


def stamp(now: datetime) -> str:
    """``now`` as stored in the state files: ``2026-12-04T02:41:34Z``."""
    return now.astimezone(UTC).strftime(_TIME_FORMAT)
