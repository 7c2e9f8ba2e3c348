"""Erasure tombstones: make an erasure hold against events still on their way to the lake.

Erasing deletes partitions at once, but other worker processes may hold acknowledged events of the
erased range in memory (until their next flush) or in spool segments of a process that died (until
they are replayed). Each erasure is recorded in ``state/erasures.json`` (kept 90 days) before the
partitions go. A process's flush drops the events that erasures it has not seen before cover (they
were received before it could know of them; ``Store.write_batch``), and removes its own just-published
files of a partition that an erasure recorded meanwhile covers; the replay of a spool segment drops
the covered events that were received before the erasure (the segment's last write is older than the
erasure, or the event's timestamp is).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import orjson

from .._events import SITE_ID, TIMESTAMP, Row
from .._state import StateDir

KEEP_SECONDS: Final = 90 * 86_400


@dataclass(frozen=True, slots=True)
class Tombstone:
    site_id: str
    start: date
    end: date
    at: float  # epoch seconds of the erasure

    def covers(self, event: Row) -> bool:
        return self.covers_partition(event[SITE_ID], event[TIMESTAMP].date())

    def covers_partition(self, site_id: str, day: date) -> bool:
        return site_id == self.site_id and self.start <= day <= self.end


class Tombstones:
    """The erasure log of a data directory (shared by all processes)."""

    def __init__(self, state: StateDir) -> None:
        self._state = state
        self._path = state.path("erasures.json")
        self._lock = threading.Lock()
        self._cache: tuple[float, list[Tombstone]] = (-1.0, [])

    def add(self, site_id: str, start: date, end: date, at: float | None = None) -> Tombstone:
        stone = Tombstone(site_id, start, end, time.time() if at is None else at)
        with self._state.lock("erasures.lock"):
            keep = [t for t in self._read() if stone.at - t.at < KEEP_SECONDS]
            keep.append(stone)
            self._state.write("erasures.json", orjson.dumps([
                {"site_id": t.site_id, "start": t.start.isoformat(), "end": t.end.isoformat(),
                 "at": t.at} for t in keep]))
        return stone

    def _read(self) -> list[Tombstone]:
        try:
            data = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, orjson.JSONDecodeError):
            return []
        return [Tombstone(d["site_id"], date.fromisoformat(d["start"]), date.fromisoformat(d["end"]),
                          float(d["at"])) for d in data]

    def all(self) -> list[Tombstone]:
        """Current tombstones (re-read only when the file changed)."""
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return []
        with self._lock:
            if mtime != self._cache[0]:
                self._cache = (mtime, self._read())
            return self._cache[1]

    def filter_replay(self, events: Sequence[Row], written_at: float,
                      stones: Sequence[Tombstone] | None = None) -> list[Row]:
        """Events of a replayed spool segment (last written at ``written_at``) minus those erased
        (by ``stones``, else every tombstone now)."""
        stones = self.all() if stones is None else stones
        if not stones:
            return list(events)

        def erased(e: Row) -> bool:
            for t in stones:
                if t.covers(e) and (written_at <= t.at or
                                    e[TIMESTAMP] <= datetime.fromtimestamp(t.at, UTC).replace(tzinfo=None)):
                    return True
            return False

        return [e for e in events if not erased(e)]
