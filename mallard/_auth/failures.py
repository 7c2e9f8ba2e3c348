"""Where failed logins are counted (:mod:`.lockouts` decides what they mean): one entry per client key
(an HMAC of the client's IP, never the IP), ``(failures, locked_until, updated_at)`` in Unix seconds.

* :class:`TableFailures`: the ``login_failures`` table of ``state/auth.sqlite``, for the processes of
  one host (a local data directory).
* :class:`DocumentFailures`: the shared document ``login_failures.json`` (``{key: [failures,
  locked_until, updated_at]}``), for hosts sharing a lake on object storage: every change is a
  compare-and-swap of the whole document, so failures on several hosts add up (a race lost to another
  host's update is applied again, never lost). A failure costs a conditional GET and a PUT; a check,
  nothing within the cache bound of a second.

Both drop entries that are neither locked nor recent (:func:`stale`) as they write, and hold at most
``cap`` keys: a new key beyond it evicts unlocked entries first, then the oldest (:func:`evicted`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from .._errors import StorageError
from .database import AuthDatabase

if TYPE_CHECKING:
    from .._sharedstate import SharedState

__all__ = ["FAILURES_FILE", "FAILURE_WINDOW_SECS", "SCHEMA", "DocumentFailures", "Entry", "Failures",
           "TableFailures", "evicted", "stale"]

#: Failures older than this (without an active lockout) are forgotten.
FAILURE_WINDOW_SECS: Final = 3600
FAILURES_FILE: Final = "login_failures.json"
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_updated ON login_failures (updated_at);
"""

#: (failures, locked_until (0: not locked), updated_at)
Entry = tuple[int, float, float]
#: The entry of a key after a failure, from its entry before (None: none); None: leave it as it is.
Step = Callable[[Entry | None], Entry | None]


def stale(entry: Entry, now: float) -> bool:
    """Whether ``entry`` can be forgotten: its lockout is over and its last failure an hour old."""
    return entry[1] <= now and entry[2] <= now - FAILURE_WINDOW_SECS


def evicted(entries: dict[str, Entry], now: float, excess: int) -> list[str]:
    """The ``excess`` keys a full table gives up: unlocked ones first, then the least recent."""
    return sorted(entries, key=lambda k: (entries[k][1] > now, entries[k][2]))[:max(0, excess)]


class Failures(Protocol):
    def entry(self, key: str) -> Entry | None:
        """The entry of ``key``, or None."""
        ...

    def record(self, key: str, step: Step, *, now: float, cap: int) -> None:
        """Replace the entry of ``key`` by ``step(entry)`` (unless it returns None), dropping stale
        entries and, when ``key`` is new, evicting beyond ``cap``."""
        ...

    def forget(self, key: str) -> None:
        """Drop the entry of ``key`` (after a successful login)."""
        ...


class TableFailures:
    """The ``login_failures`` table of ``state/auth.sqlite`` (its schema includes :data:`SCHEMA`)."""

    def __init__(self, db: AuthDatabase) -> None:
        self._db = db

    def entry(self, key: str) -> Entry | None:
        row = self._db.query_one("SELECT failures, locked_until, updated_at FROM login_failures "
                                 "WHERE key = ?", (key,))
        return None if row is None else (int(row[0]), float(row[1]), float(row[2]))

    def record(self, key: str, step: Step, *, now: float, cap: int) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM login_failures WHERE locked_until <= ? AND updated_at <= ?",
                       (now, now - FAILURE_WINDOW_SECS))
            row = db.execute("SELECT failures, locked_until, updated_at FROM login_failures WHERE key = ?",
                             (key,)).fetchone()
            new = step(None if row is None else (int(row[0]), float(row[1]), float(row[2])))
            if new is None:
                return
            db.execute("INSERT OR REPLACE INTO login_failures (key, failures, locked_until, updated_at) "
                       "VALUES (?, ?, ?, ?)", (key, *new))
            if row is None:
                (count,) = db.execute("SELECT count(*) FROM login_failures").fetchone()
                if int(count) > cap:
                    db.execute("DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures "
                               "ORDER BY locked_until > ?, updated_at LIMIT ?)", (now, int(count) - cap))

    def forget(self, key: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (key,))


class DocumentFailures:
    """The shared document ``login_failures.json`` of ``state``."""

    def __init__(self, state: SharedState) -> None:
        self._where = state.where(FAILURES_FILE)
        self._doc = state.document(FAILURES_FILE, parse=self._parse, dump=_dump, empty=dict)

    def entry(self, key: str) -> Entry | None:
        return self._doc.read().get(key)

    def record(self, key: str, step: Step, *, now: float, cap: int) -> None:
        def change(entries: dict[str, Entry]) -> dict[str, Entry]:
            kept = {k: e for k, e in entries.items() if not stale(e, now)}
            new = step(kept.get(key))
            if new is None:
                return entries if len(kept) == len(entries) else kept
            known = key in kept
            kept[key] = new
            if not known:
                for gone in evicted(kept, now, len(kept) - cap):
                    del kept[gone]
            return kept

        self._doc.update(change)

    def forget(self, key: str) -> None:
        self._doc.update(lambda entries: entries if key not in entries else
                         {k: e for k, e in entries.items() if k != key})

    def _parse(self, raw: bytes) -> dict[str, Entry]:
        try:
            doc = json.loads(raw)
            entries = {str(k): (int(v[0]), float(v[1]), float(v[2])) for k, v in doc.items()}
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise StorageError(f"{self._where} is not a valid list of failed logins. Delete it (this "
                               "forgets failed logins and ends lockouts).", code="invalid_state") from None
        return entries


def _dump(entries: dict[str, Entry]) -> bytes:
    return json.dumps({k: list(v) for k, v in entries.items()}, separators=(",", ":")).encode()
