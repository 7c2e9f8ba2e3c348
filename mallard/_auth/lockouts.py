"""Brute-force protection: failed logins per client, and the lockout that follows too many.

Failures are counted in the ``login_failures`` table of ``state/auth.sqlite`` (shared by every worker),
keyed by ``HMAC(secret, canonical ip)`` so the raw IP never reaches disk. The attempt reaching
``Settings.max_login_attempts`` locks the client for ``login_lockout_secs``; the table holds at most
``max_tracked_keys`` clients. ``max_login_attempts = 0`` turns all of this off (nothing is written).
"""

from __future__ import annotations

import hmac
import math
import sqlite3
from typing import Final

from .._privacy import canonical_ip
from .._settings import Settings
from .clock import Clock
from .database import AuthDatabase

__all__ = ["FAILURE_WINDOW_SECS", "SCHEMA", "Lockouts"]

#: Failures older than this (without an active lockout) are forgotten.
FAILURE_WINDOW_SECS: Final = 3600
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_updated ON login_failures (updated_at);
"""


class Lockouts:
    """Failed logins and lockouts per client.

    Args:
        db: the database holding the failures (its schema includes :data:`SCHEMA`).
        settings: read for ``max_login_attempts``, ``login_lockout_secs`` and ``max_tracked_keys``.
        secret: the instance secret (keys the table).
        clock: returns the current aware UTC time.
    """

    def __init__(self, db: AuthDatabase, settings: Settings, *, secret: bytes, clock: Clock) -> None:
        self._db = db
        self._settings = settings
        self._secret = secret
        self._clock = clock

    def remaining(self, ip: str | None) -> int:
        """Seconds (at least 1) before this client may try to log in again; 0 when it is not locked."""
        if self._settings.max_login_attempts == 0:
            return 0
        row = self._db.query_one("SELECT locked_until FROM login_failures WHERE key = ?",
                                 (self._client_key(ip),))
        remaining = 0.0 if row is None else float(row[0]) - self._now()
        return max(1, math.ceil(remaining)) if remaining > 0 else 0

    def record_failure(self, ip: str | None) -> None:
        """Count a failed login; the attempt reaching ``max_login_attempts`` starts the lockout.

        Failures during an active lockout change nothing; a lockout that expired, or failures older
        than an hour, start the count afresh.
        """
        limit = self._settings.max_login_attempts
        if limit == 0:
            return
        key, now = self._client_key(ip), self._now()
        with self._db.transaction() as db:
            db.execute("DELETE FROM login_failures WHERE locked_until <= ? AND updated_at <= ?",
                       (now, now - FAILURE_WINDOW_SECS))
            row = db.execute("SELECT failures, locked_until, updated_at FROM login_failures WHERE key = ?",
                             (key,)).fetchone()
            if row is not None and row[1] > now:
                return
            failures = 1
            if row is not None and row[1] == 0 and now - row[2] < FAILURE_WINDOW_SECS:
                failures = int(row[0]) + 1  # else: a lockout ended (or old failures): count afresh
            locked_until = now + self._settings.login_lockout_secs if failures >= limit else 0.0
            db.execute("INSERT OR REPLACE INTO login_failures (key, failures, locked_until, updated_at) "
                       "VALUES (?, ?, ?, ?)", (key, failures, locked_until, now))
            if row is None:
                self._evict_over_cap(db, now)

    def record_success(self, ip: str | None) -> None:
        """Forget the failures of this client after a successful login."""
        if self._settings.max_login_attempts == 0:
            return
        with self._db.transaction() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (self._client_key(ip),))

    def _now(self) -> float:
        return self._clock().timestamp()

    def _evict_over_cap(self, db: sqlite3.Connection, now: float) -> None:
        """Keep at most ``max_tracked_keys`` entries: drop unlocked ones first, then the oldest."""
        (count,) = db.execute("SELECT count(*) FROM login_failures").fetchone()
        excess = int(count) - self._settings.max_tracked_keys
        if excess > 0:
            db.execute("DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures "
                       "ORDER BY locked_until > ?, updated_at LIMIT ?)", (now, excess))

    def _client_key(self, ip: str | None) -> str:
        """The on-disk key of a client: a keyed hash of its canonical IP, never the IP itself."""
        return hmac.digest(self._secret, b"mallard-login|" + canonical_ip(ip).encode(), "sha256").hex()
