"""The readings every query runs on, and the engine that runs their statements.

A reading is the Store's consistent view of a site's partitions (the files under the shared lake lock)
with this process's buffered events. Its statements run in DuckDB, or, with ``Settings.engine =
"clickhouse"``, in chdb (clickhouse.py); ``sql()`` always runs DuckDB's SQL, as the caller wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from .clickhouse import engine_for

if TYPE_CHECKING:
    from .._buffer import EventBuffer
    from .._settings import Settings
    from .._store import Store

__all__ = ["Readings"]


class Readings:
    """Readings of ``store`` with the events ``buffer()`` holds, run by the engine ``settings`` choose."""

    def __init__(self, store: Store, buffer: Callable[[], EventBuffer | None], settings: Settings) -> None:
        self._store = store
        self._buffer = buffer
        self._clickhouse = engine_for(settings)

    def open(self, site: str | None, first: date | None, last: date | None) -> Any:
        """A reading of ``site``'s partitions dated [first, last] plus the buffered events (a context
        manager yielding a reader), whose statements the engine runs."""
        reading = self.duckdb(site, first, last)
        return reading if self._clickhouse is None else self._clickhouse.wrap(reading)

    def duckdb(self, site: str | None, first: date | None, last: date | None) -> Any:
        """:meth:`open`, its statements run by DuckDB whatever the engine."""
        buffer = self._buffer()
        if buffer is None:
            return self._store.reading(site, first, last)
        return self._store.reading(site, first, last, pending=buffer.marked_snapshot,
                                   view_lock=buffer.view_lock)

    def close(self) -> None:
        """Close the engine's connection, if it keeps one (a new one opens on the next query)."""
        if self._clickhouse is not None:
            self._clickhouse.close()
