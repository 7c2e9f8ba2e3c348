"""``state/auth.sqlite``: the SQLite database of logouts (:mod:`.tokens`) and failed logins
(:mod:`.lockouts`).

One connection per process, opened lazily through :meth:`mallard._state.StateDir.sqlite` (WAL, mode 0600)
and again after a fork (the parent's connection is never used, nor closed, by the child: closing it could
disturb the parent's locks). Writes are ``BEGIN IMMEDIATE`` transactions serialised with the process's
other threads. Every SQLite failure is a :class:`~mallard._errors.StorageError` saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any, Final

from .._errors import StorageError
from .._state import StateDir

__all__ = ["DATABASE_FILE", "AuthDatabase"]

DATABASE_FILE: Final = "auth.sqlite"


class AuthDatabase:
    """This process's handle on ``state/auth.sqlite``; safe to share between threads.

    Args:
        state: the ``state/`` directory.
        schema: the tables (``CREATE ... IF NOT EXISTS``), run once per connection.
    """

    def __init__(self, state: StateDir, schema: str) -> None:
        self._state = state
        self._path = state.path(DATABASE_FILE)
        self._schema = schema
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._inherited: list[sqlite3.Connection] = []  # a fork's parent connections: never used again
        self._closed = False

    def close(self) -> None:
        """Close this process's connection (idempotent). The object may not be used afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def connection(self) -> sqlite3.Connection:
        """This process's connection, opened lazily (again after a fork)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("This Auth is closed; create a new one.")
            pid = os.getpid()
            if self._conn is not None and self._conn_pid == pid:
                return self._conn
            if self._conn is not None:
                self._inherited.append(self._conn)  # the parent's: closing it here could disturb its locks
            self._conn = self._open()
            self._conn_pid = pid
            return self._conn

    def query_one(self, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        """The first row of a read, or None."""
        with self._lock:
            try:
                row: tuple[Any, ...] | None = self.connection().execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"Cannot read {self._path}: {exc}. Retry; if it persists, delete "
                                   "the file (this resets logouts and lockouts).") from None
        return row

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front, no upgrade
        deadlock), serialised with this process's other threads."""
        with self._lock:
            db = self.connection()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"Cannot write {self._path}: {exc}. Another process may hold it "
                                   "for too long; retry.") from None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"Cannot write {self._path}: {exc}. Retry; if it persists, "
                                       "delete the file (this resets logouts and lockouts).") from None
                raise

    def _open(self) -> sqlite3.Connection:
        conn = self._state.sqlite(DATABASE_FILE, timeout=10.0)  # the timeout is SQLite's busy timeout
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(self._schema)
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(f"Cannot initialise {self._path}: {exc}. Check that the file is not "
                               "damaged (delete it to reset logouts and lockouts).") from None
        return conn
