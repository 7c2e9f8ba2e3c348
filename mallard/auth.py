"""Authentication state shared by every worker process: admin password, sessions, API keys, lockouts.

No HTTP here: the HTTP layer calls :class:`Auth` and maps its errors to status codes. Every piece of state
lives in files under ``state/`` so that all workers of a host (``gunicorn -w 4``) agree:

* ``state/admin.json``: ``{"password_hash": "<argon2id PHC string>", "updated_at": "...Z"}``, mode 0600,
  created once by :meth:`Auth.setup` (set-if-unset, race-safe) and replaced atomically by
  :meth:`Auth.change` / :meth:`Auth.set_password`. ``Settings.admin_password`` wins over it and is never
  written anywhere.
* Sessions are stateless signed tokens ``v1.<expires_unix>.<nonce hex>.<hmac hex>``; the HMAC key is derived
  from the instance secret *and* the current password hash, so changing the password ends every session.
  Logouts are recorded (nonce and expiry only) in ``state/auth.sqlite`` until the token would expire.
* ``state/api_keys.json``: the API keys, stored only as ``hex(sha256(plaintext))``, mode 0600, rewritten
  atomically under an ``flock`` on ``state/auth.lock``; re-read whenever another process changed it.
* ``state/auth.sqlite`` (WAL): failed logins per client, keyed by ``HMAC(secret, canonical ip)``, so the
  raw IP never reaches disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypedDict, cast

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import MallardError, StorageError
from .privacy import canonical_ip
from .settings import Settings
from .state import write_file_atomic, write_file_once
from .statefile import (
    JsonStateFile,
    Signature,
    ensure_dir,
    file_lock,
    read_with_signature,
    stat_signature,
)

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "SCOPES",
    "AlreadyConfiguredError",
    "Auth",
    "AuthError",
    "InvalidKeyError",
    "KeyRecord",
    "NotConfiguredError",
    "PasswordFromEnvironmentError",
    "PasswordRejectedError",
    "Scope",
    "WrongPasswordError",
    "utcnow",
    "validate_password",
]

Scope = Literal["ReadOnly", "Admin"]
SCOPES: Final[tuple[Scope, ...]] = ("ReadOnly", "Admin")

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
_REFUSED: Final = frozenset({"password", "password123", "administrator", "changeme", "letmein",
                             "analytics", "mallardmetrics", "123456789012"})
MAX_KEY_NAME_LENGTH: Final = 128
#: Failures older than this (without an active lockout) are forgotten.
FAILURE_WINDOW_SECS: Final = 3600

_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_TOKEN_RE: Final = re.compile(r"v1\.([0-9]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{64})")
_KEY_RE: Final = re.compile(r"mm_[0-9a-f]{64}")
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_updated ON login_failures (updated_at);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
"""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default clock of :class:`Auth`)."""
    return datetime.now(UTC)


# -- errors ------------------------------------------------------------------------------------------
class AuthError(MallardError, ValueError):
    """An authentication request cannot be carried out (messages never quote a password or an IP)."""

    code = "auth"


class PasswordRejectedError(AuthError):
    """A new password does not meet the rules (codes ``password_too_short``, ``password_too_long``,
    ``password_too_common``, ``password_repeated``)."""

    code = "password_rejected"


class AlreadyConfiguredError(AuthError):
    """:meth:`Auth.setup` was called but an admin password is already set (HTTP 409)."""

    code = "already_configured"


class NotConfiguredError(AuthError):
    """The operation needs an admin password and none is set yet."""

    code = "not_configured"


class WrongPasswordError(AuthError):
    """:meth:`Auth.change` was given a current password that does not match."""

    code = "wrong_password"


class PasswordFromEnvironmentError(AuthError):
    """The password comes from ``MALLARD_ADMIN_PASSWORD`` and therefore cannot be changed here."""

    code = "password_from_environment"


class InvalidKeyError(AuthError):
    """An API key request has a bad name (``invalid_key_name``) or scope (``invalid_scope``)."""

    code = "invalid_key"


class KeyRecord(TypedDict):
    """One API key as stored and listed; the plaintext is never kept."""

    key_hash: str
    name: str
    scope: Scope
    created_at: str
    revoked: bool


def validate_password(password: str) -> None:
    """Check a new admin password against the rules.

    Args:
        password: the candidate.

    Raises:
        PasswordRejectedError: it is shorter than 12 characters, longer than 1024, one repeated character,
            or on the list of refused common passwords (compared case-insensitively).
    """
    if not isinstance(password, str):
        raise PasswordRejectedError("The password must be a string of at least "
                                    f"{MIN_PASSWORD_LENGTH} characters.", code="password_too_short")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejectedError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters "
                                    "long. Choose a longer one, e.g. a few unrelated words.",
                                    code="password_too_short")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejectedError(f"The password must be at most {MAX_PASSWORD_LENGTH} characters "
                                    "long. Choose a shorter one.", code="password_too_long")
    if password.casefold() in _REFUSED:
        raise PasswordRejectedError("This password is too common and is refused. Choose one that is "
                                    "not a well-known default.", code="password_too_common")
    if len(set(password)) == 1:
        raise PasswordRejectedError("The password must not be one repeated character. Choose one with "
                                    "varied characters.", code="password_repeated")


def _dump_keys(keys: list[KeyRecord]) -> bytes:
    return (json.dumps(keys, indent=2) + "\n").encode()


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(_TIME_FORMAT)


class Auth:
    """The admin password, dashboard sessions, API keys and login lockouts of one data directory.

    Every method may be called from several threads and from several processes sharing ``state_dir``.
    Call :meth:`close` (or use ``with``) to release the SQLite connection.

    Args:
        state_dir: the ``state/`` directory of the data directory (created if missing).
        settings: read for ``admin_password``, ``session_ttl_secs``, ``max_login_attempts``,
            ``login_lockout_secs`` and ``max_tracked_keys``.
        secret: the instance secret (:func:`mallard.privacy.load_secret`): signs sessions and keys the
            lockout table.
        clock: returns the current aware UTC time.
        hasher: the Argon2id hasher (default: ``argon2.PasswordHasher()``); tests pass a cheap one.
    """

    def __init__(self, state_dir: Path, settings: Settings, *, secret: bytes,
                 clock: Callable[[], datetime] = utcnow,
                 hasher: argon2.PasswordHasher | None = None) -> None:
        if not secret:
            raise ValueError("Auth needs a non-empty secret: pass mallard.privacy.load_secret(state_dir, "
                             "settings.secret).")
        self._dir = Path(state_dir)
        self._settings = settings
        self._secret = bytes(secret)
        self._clock = clock
        self._hasher = hasher or argon2.PasswordHasher()
        self._lock = threading.RLock()
        self._admin_path = self._dir / "admin.json"
        self._keys_path = self._dir / "api_keys.json"
        self._lock_path = self._dir / "auth.lock"
        self._db_path = self._dir / "auth.sqlite"
        self._admin_cache: tuple[Signature | None, str | None] | None = None
        self._keys_file = JsonStateFile(self._keys_path, self._lock_path, parse=self._parse_keys,
                                        dump=_dump_keys, empty=list)
        self._env_hash: str | None = None
        self._env_binding: str | None = None
        if settings.admin_password:
            self._env_binding = "env:" + hmac.digest(
                self._secret, b"mallard-env-password|" + settings.admin_password.encode(), "sha256").hex()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._inherited: list[sqlite3.Connection] = []  # a fork's parent connections: never used again
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close this process's SQLite connection (idempotent). The object may not be used afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Auth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> float:
        return self._clock().timestamp()

    # -- password ------------------------------------------------------------------------------------
    def password_configured(self) -> bool:
        """Whether an admin password is set (from the environment or ``state/admin.json``)."""
        return self._env_binding is not None or self._stored_hash() is not None

    def password_from_environment(self) -> bool:
        """Whether the password is ``Settings.admin_password`` (then it cannot be changed here)."""
        return self._env_binding is not None

    def setup(self, password: str) -> None:
        """Set the first admin password; only one caller, across all processes, can ever win.

        Raises:
            PasswordRejectedError: the password breaks a rule (see :func:`validate_password`).
            AlreadyConfiguredError: a password is already set (by the environment or an earlier setup).
            StorageError: ``state/admin.json`` could not be written.
        """
        if self.password_configured():
            raise self._already_configured()
        validate_password(password)
        data = self._admin_document(self._hasher.hash(password))
        self._ensure_dir()
        if write_file_once(self._admin_path, data) != data:
            raise self._already_configured()

    def verify(self, password: str) -> bool:
        """Whether ``password`` is the admin password (False when none is set). Takes ~50-100 ms."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            return False
        if self._env_binding is not None:
            return self._verify_hash(self._env_password_hash(), password)
        stored = self._stored_hash()
        return stored is not None and self._verify_hash(stored, password)

    def change(self, old: str, new: str) -> None:
        """Replace the admin password after checking the current one; ends every session.

        Raises:
            PasswordFromEnvironmentError: the password is set by ``MALLARD_ADMIN_PASSWORD``.
            NotConfiguredError: no password is set yet (use :meth:`setup`).
            WrongPasswordError: ``old`` is not the current password.
            PasswordRejectedError: ``new`` breaks a rule.
        """
        self._refuse_if_environment()
        with self._file_lock():
            stored = self._stored_hash(force=True)
            if stored is None:
                raise NotConfiguredError("No admin password is set yet. Set one with the setup step "
                                         "first.", code="not_configured")
            if not self._verify_hash(stored, old):
                raise WrongPasswordError("The current password is wrong. Enter the password you log in "
                                         "with.", code="wrong_password")
            validate_password(new)
            self._write_admin(self._hasher.hash(new))

    def set_password(self, new: str) -> None:
        """Set the admin password unconditionally (``mallard password``); ends every session.

        Raises:
            PasswordFromEnvironmentError: the password is set by ``MALLARD_ADMIN_PASSWORD``.
            PasswordRejectedError: ``new`` breaks a rule.
        """
        self._refuse_if_environment()
        validate_password(new)
        hashed = self._hasher.hash(new)
        with self._file_lock():
            self._write_admin(hashed)

    def _already_configured(self) -> AlreadyConfiguredError:
        return AlreadyConfiguredError("An admin password is already configured. Log in with it, or change "
                                      "it with `mallard password`.", code="already_configured")

    def _refuse_if_environment(self) -> None:
        if self._env_binding is not None:
            raise PasswordFromEnvironmentError(
                "The admin password is set by MALLARD_ADMIN_PASSWORD and cannot be changed here. Change "
                "that setting and restart, or unset it to use a stored password.",
                code="password_from_environment")

    def _env_password_hash(self) -> str:
        with self._lock:
            if self._env_hash is None:
                assert self._settings.admin_password is not None
                self._env_hash = self._hasher.hash(self._settings.admin_password)  # kept in memory only
            return self._env_hash

    def _verify_hash(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _admin_document(self, hashed: str) -> bytes:
        doc = {"password_hash": hashed, "updated_at": _stamp(self._clock())}
        return (json.dumps(doc, indent=2) + "\n").encode()

    def _write_admin(self, hashed: str) -> None:
        self._ensure_dir()
        write_file_atomic(self._admin_path, self._admin_document(hashed))
        with self._lock:
            self._admin_cache = None

    def _stored_hash(self, *, force: bool = False) -> str | None:
        """The Argon2id hash in ``state/admin.json`` (re-read when the file changed), or None."""
        with self._lock:
            cached = self._admin_cache
            if not force and cached is not None and cached[0] == stat_signature(self._admin_path):
                return cached[1]
            read = read_with_signature(self._admin_path)
            if read is None:
                self._admin_cache = (None, None)
                return None
            signature, raw = read
            hashed = self._parse_admin(raw)
            self._admin_cache = (signature, hashed)
            return hashed

    def _parse_admin(self, raw: bytes) -> str:
        try:
            doc = json.loads(raw)
            hashed = doc["password_hash"]
            if not isinstance(hashed, str) or not hashed.startswith("$argon2id$"):
                raise ValueError
            argon2.extract_parameters(hashed)
        except (ValueError, KeyError, TypeError, InvalidHashError):
            raise StorageError(f"{self._admin_path} does not hold a valid Argon2id password hash. Restore "
                               "it from a backup, or delete it and set a new password with `mallard "
                               "password`.", code="invalid_admin_hash") from None
        return hashed

    def _binding(self) -> str | None:
        """What sessions are bound to: the current password hash (None when no password is set)."""
        return self._env_binding if self._env_binding is not None else self._stored_hash()

    # -- sessions ------------------------------------------------------------------------------------
    def create_session(self) -> tuple[str, int]:
        """A new dashboard session token and its lifetime in seconds (for the cookie's ``Max-Age``).

        Raises:
            NotConfiguredError: no admin password is set (there is nothing to log in to).
        """
        binding = self._binding()
        if binding is None:
            raise NotConfiguredError("No admin password is set yet, so no session can be created. Set "
                                     "one with the setup step first.", code="not_configured")
        ttl = self._settings.session_ttl_secs
        expires = math.floor(self._now()) + ttl
        body = f"v1.{expires}.{secrets.token_hex(16)}"
        return f"{body}.{self._session_mac(binding, body)}", ttl

    def check_session(self, token: str) -> bool:
        """Whether ``token`` is a live session: well-formed, signed for the current password, not
        expired and not logged out."""
        parsed = self._parse_session(token)
        if parsed is None:
            return False
        return self._query_one("SELECT 1 FROM revoked_sessions WHERE nonce = ?", (parsed[0],)) is None

    def revoke_session(self, token: str) -> bool:
        """Log ``token`` out in every process; returns whether it was a live session."""
        parsed = self._parse_session(token)
        if parsed is None:
            return False
        nonce, expires = parsed
        now = self._now()
        with self._transaction() as db:
            db.execute("DELETE FROM revoked_sessions WHERE expires_at <= ?", (now,))
            db.execute("INSERT OR IGNORE INTO revoked_sessions (nonce, expires_at) VALUES (?, ?)",
                       (nonce, expires))
        return True

    def _session_mac(self, binding: str, body: str) -> str:
        key = hmac.digest(self._secret, b"mallard-session|" + binding.encode(), "sha256")
        return hmac.new(key, body.encode(), "sha256").hexdigest()

    def _parse_session(self, token: str) -> tuple[str, int] | None:
        """(nonce, expiry) of a correctly signed, unexpired token, else None."""
        if not isinstance(token, str) or len(token) > 128:
            return None
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        binding = self._binding()
        if binding is None:
            return None
        body = token[: match.start(3) - 1]
        if not hmac.compare_digest(self._session_mac(binding, body), match[3]):
            return None
        expires, now = int(match[1]), self._now()
        # absolute lifetime: also refuse tokens that outlive a since-shortened session_ttl_secs
        if not now < expires <= now + self._settings.session_ttl_secs + 1:
            return None
        return match[2], expires

    # -- API keys ------------------------------------------------------------------------------------
    def create_key(self, name: str, scope: str) -> tuple[str, KeyRecord]:
        """Create an API key; the plaintext is returned once and only its SHA-256 is stored.

        Args:
            name: a label of 1-128 characters.
            scope: ``"ReadOnly"`` (read routes) or ``"Admin"`` (read and admin routes).

        Returns:
            ``(plaintext, record)``: the key ``mm_`` + 64 hex characters, and its stored record.

        Raises:
            InvalidKeyError: bad name (``invalid_key_name``) or scope (``invalid_scope``).
        """
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_NAME_LENGTH:
            raise InvalidKeyError(f"The key name must be 1 to {MAX_KEY_NAME_LENGTH} characters and not "
                                  "blank. Give the key a short label, e.g. 'grafana'.",
                                  code="invalid_key_name")
        if any(not ch.isprintable() for ch in name):
            raise InvalidKeyError("The key name must not contain control characters. Use printable text.",
                                  code="invalid_key_name")
        if scope not in SCOPES:
            raise InvalidKeyError(f"Unknown scope {str(scope)[:40]!r}. Valid scopes: "
                                  f"{', '.join(SCOPES)}.", code="invalid_scope")
        plaintext = "mm_" + secrets.token_hex(32)
        record = KeyRecord(key_hash=hashlib.sha256(plaintext.encode()).hexdigest(), name=name,
                           scope=scope, created_at=_stamp(self._clock()), revoked=False)
        with self._file_lock():
            keys = self._keys(force=True)
            self._write_keys([*keys, record])
        return plaintext, cast(KeyRecord, dict(record))

    def list_keys(self) -> list[KeyRecord]:
        """Every API key (revoked ones included), oldest first, as copies."""
        return [cast(KeyRecord, dict(r)) for r in self._keys()]

    def revoke_key(self, key_hash: str) -> bool:
        """Revoke the key with this hash in every process; False if no key has it."""
        if not isinstance(key_hash, str) or _HASH_RE.fullmatch(key_hash) is None:
            return False
        with self._file_lock():
            keys = [cast(KeyRecord, dict(r)) for r in self._keys(force=True)]
            found = [r for r in keys if r["key_hash"] == key_hash]
            if not found:
                return False
            if not all(r["revoked"] for r in found):
                for r in found:
                    r["revoked"] = True
                self._write_keys(keys)
            return True

    def check_key(self, plaintext: str) -> Scope | None:
        """The scope of a valid, unrevoked API key, else None (compared in constant time)."""
        if not isinstance(plaintext, str) or _KEY_RE.fullmatch(plaintext) is None:
            return None
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        scope: Scope | None = None
        for record in self._keys():  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(record["key_hash"], digest) and not record["revoked"]:
                scope = record["scope"]
        return scope

    def _keys(self, *, force: bool = False) -> list[KeyRecord]:
        return self._keys_file.read(force=force)

    def _parse_keys(self, raw: bytes) -> list[KeyRecord]:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, list):
                raise ValueError
            keys = []
            for item in doc:
                record = KeyRecord(key_hash=item["key_hash"], name=item["name"], scope=item["scope"],
                                   created_at=item["created_at"], revoked=item["revoked"])
                if (not isinstance(record["key_hash"], str) or record["scope"] not in SCOPES
                        or not isinstance(record["revoked"], bool)):
                    raise ValueError
                keys.append(record)
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"{self._keys_path} is not a valid API key list. Restore it from a backup, "
                               "or delete it (every API key is then revoked) and create new keys.",
                               code="invalid_api_keys") from None
        return keys

    def _write_keys(self, keys: list[KeyRecord]) -> None:
        self._keys_file.write(keys)

    # -- brute-force lockout -------------------------------------------------------------------------
    def lockout_remaining(self, ip: str | None) -> int:
        """Seconds (at least 1) before this client may try to log in again; 0 when it is not locked."""
        if self._settings.max_login_attempts == 0:
            return 0
        row = self._query_one("SELECT locked_until FROM login_failures WHERE key = ?",
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
        with self._transaction() as db:
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
        with self._transaction() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (self._client_key(ip),))

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

    # -- storage plumbing ----------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        ensure_dir(self._dir)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes (``flock`` on ``state/auth.lock``) and threads."""
        with file_lock(self._lock_path):  # one open file per caller: threads exclude each other too
            yield

    def _db(self) -> sqlite3.Connection:
        """This process's connection to ``state/auth.sqlite``, opened lazily (again after a fork)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("This Auth is closed; create a new one.")
            pid = os.getpid()
            if self._conn is not None and self._conn_pid == pid:
                return self._conn
            if self._conn is not None:
                self._inherited.append(self._conn)  # the parent's: closing it here could disturb its locks
            self._conn = self._open_db()
            self._conn_pid = pid
            return self._conn

    def _open_db(self) -> sqlite3.Connection:
        self._ensure_dir()
        try:
            # create the file 0600 first: SQLite gives its -wal and -shm files the same permissions
            os.close(os.open(self._db_path, os.O_RDWR | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self._db_path, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"Cannot open {self._db_path}: {exc}. Check that the data directory is "
                               "writable.") from None
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(f"Cannot initialise {self._db_path}: {exc}. Check that the file is not "
                               "damaged (delete it to reset logouts and lockouts).") from None
        return conn

    def _query_one(self, sql: str, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                row: tuple[Any, ...] | None = self._db().execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"Cannot read {self._db_path}: {exc}. Retry; if it persists, delete "
                                   "the file (this resets logouts and lockouts).") from None
        return row

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front, no upgrade
        deadlock), serialised with this process's other threads."""
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"Cannot write {self._db_path}: {exc}. Another process may hold it "
                                   "for too long; retry.") from None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"Cannot write {self._db_path}: {exc}. Retry; if it persists, "
                                       "delete the file (this resets logouts and lockouts).") from None
                raise

