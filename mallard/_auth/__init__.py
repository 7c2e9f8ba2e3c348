"""Authentication state shared by every worker process: admin password, sessions, API keys, lockouts.

No HTTP here: the HTTP layer calls :class:`Auth` and maps its errors to status codes. Every piece of state
lives in the shared state (:mod:`mallard._sharedstate`), so that all workers of a host (``gunicorn -w
4``), and all hosts of a lake on object storage, agree:

* ``admin.json``: the admin password's Argon2id hash (:mod:`.admin`, rules in :mod:`.passwords`).
  ``Settings.admin_password`` wins over it and is never written anywhere.
* Sessions are stateless signed tokens bound to the current password hash (:mod:`.tokens`); logouts are
  recorded until the token would expire (:mod:`.logouts`).
* ``api_keys.json``: the API keys, stored only as SHA-256 hashes (:mod:`.apikeys`).
* Failed logins per client, keyed by ``HMAC(secret, canonical ip)``, so the raw IP is never stored
  (:mod:`.lockouts`, :mod:`.failures`).

In a local data directory these are files of ``state/``: ``admin.json`` and ``api_keys.json`` (rewritten
under ``state/auth.lock``), and ``state/auth.sqlite`` (WAL, :mod:`.database`) for logouts and failed
logins. On object storage they are objects under ``<prefix>/state/`` changed by compare-and-swap, logouts
and failed logins as the documents ``revoked_sessions.json`` and ``login_failures.json``.

:class:`Auth` is the one object the rest of mallard uses; each module above owns one of these.
"""

from __future__ import annotations

import argon2

from .._settings import Settings
from .._sharedstate import LocalState, StateLike, as_state
from . import failures, logouts
from .admin import AdminCredential
from .apikeys import SCOPES, ApiKeys, KeyRecord, Scope
from .clock import Clock, utcnow
from .database import AuthDatabase
from .errors import (
    AlreadyConfiguredError,
    AuthError,
    InvalidKeyError,
    NotConfiguredError,
    PasswordFromEnvironmentError,
    PasswordRejectedError,
    WrongPasswordError,
)
from .failures import DocumentFailures, Failures, TableFailures
from .lockouts import Lockouts
from .logouts import DocumentLogouts, Logouts, TableLogouts
from .passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, validate_password
from .tokens import SessionTokens

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


class Auth:
    """The admin password, dashboard sessions, API keys and login lockouts of one shared state.

    Every method may be called from several threads and from several processes (and hosts) sharing
    ``state``. Call :meth:`close` (or use ``with``) to release the SQLite connection.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`), or the path of a local
            ``state/`` directory (created if missing).
        settings: read for ``admin_password``, ``session_ttl_secs``, ``max_login_attempts``,
            ``login_lockout_secs`` and ``max_tracked_keys``.
        secret: the instance secret (:func:`mallard._privacy.load_secret`): signs sessions and keys the
            lockout entries.
        clock: returns the current aware UTC time.
        hasher: the Argon2id hasher (default: ``argon2.PasswordHasher()``); tests pass a cheap one.
    """

    def __init__(self, state: StateLike, settings: Settings, *, secret: bytes, clock: Clock = utcnow,
                 hasher: argon2.PasswordHasher | None = None) -> None:
        state = as_state(state)
        if not secret:
            raise ValueError("Auth needs a non-empty secret: pass mallard._privacy.load_secret(state, "
                             "settings.secret).")
        secret = bytes(secret)
        self._admin = AdminCredential(state, secret=secret, env_password=settings.admin_password,
                                      clock=clock, hasher=hasher or argon2.PasswordHasher())
        self._db: AuthDatabase | None = None
        revoked: Logouts
        failed: Failures
        if isinstance(state, LocalState):  # one host: SQLite tables, as always
            self._db = AuthDatabase(state, failures.SCHEMA + logouts.SCHEMA)
            revoked, failed = TableLogouts(self._db), TableFailures(self._db)
        else:  # hosts sharing object storage: documents changed by compare-and-swap
            revoked, failed = DocumentLogouts(state), DocumentFailures(state)
        self._tokens = SessionTokens(revoked, secret=secret, binding=self._admin.binding,
                                     ttl=settings.session_ttl_secs, clock=clock)
        self._keys = ApiKeys(state, clock=clock)
        self._lockouts = Lockouts(failed, settings, secret=secret, clock=clock)

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close this process's SQLite connection (idempotent). The object may not be used afterwards."""
        if self._db is not None:
            self._db.close()

    def __enter__(self) -> Auth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- password (mallard._auth.admin: the rules, Raises and storage are documented there) ----------
    def password_configured(self) -> bool:
        """Whether an admin password is set (from the environment or ``admin.json``)."""
        return self._admin.configured()

    def password_from_environment(self) -> bool:
        """Whether the password is ``Settings.admin_password`` (then it cannot be changed here)."""
        return self._admin.from_environment()

    def setup(self, password: str) -> None:
        """Set the first admin password, once across all processes (:meth:`AdminCredential.setup`)."""
        self._admin.setup(password)

    def verify(self, password: str) -> bool:
        """Whether ``password`` is the admin password (False when none is set). Takes ~50-100 ms."""
        return self._admin.verify(password)

    def change(self, old: str, new: str) -> None:
        """Replace the admin password after checking ``old``; ends every session
        (:meth:`AdminCredential.change`)."""
        self._admin.change(old, new)

    def set_password(self, new: str) -> None:
        """Set the admin password unconditionally (``mallard password``); ends every session
        (:meth:`AdminCredential.set`)."""
        self._admin.set(new)

    # -- sessions (mallard._auth.tokens) --------------------------------------------------------------
    def create_session(self) -> tuple[str, int]:
        """A new session token and its lifetime in seconds (:meth:`SessionTokens.create`)."""
        return self._tokens.create()

    def check_session(self, token: str) -> bool:
        """Whether ``token`` is a live session (:meth:`SessionTokens.check`)."""
        return self._tokens.check(token)

    def revoke_session(self, token: str) -> bool:
        """Log ``token`` out in every process; returns whether it was a live session."""
        return self._tokens.revoke(token)

    # -- API keys (mallard._auth.apikeys) -------------------------------------------------------------
    def create_key(self, name: str, scope: str) -> tuple[str, KeyRecord]:
        """Create an API key: ``(plaintext, record)``, the plaintext shown once (:meth:`ApiKeys.create`)."""
        return self._keys.create(name, scope)

    def list_keys(self) -> list[KeyRecord]:
        """Every API key (revoked ones included), oldest first, as copies."""
        return self._keys.records()

    def revoke_key(self, key_hash: str) -> bool:
        """Revoke the key with this hash in every process; False if no key has it."""
        return self._keys.revoke(key_hash)

    def check_key(self, plaintext: str) -> Scope | None:
        """The scope of a valid, unrevoked API key, else None (compared in constant time)."""
        return self._keys.check(plaintext)

    # -- brute-force lockout (mallard._auth.lockouts) -------------------------------------------------
    def lockout_remaining(self, ip: str | None) -> int:
        """Seconds (at least 1) before this client may try to log in again; 0 when it is not locked."""
        return self._lockouts.remaining(ip)

    def record_failure(self, ip: str | None) -> None:
        """Count a failed login (:meth:`Lockouts.record_failure`)."""
        self._lockouts.record_failure(ip)

    def record_success(self, ip: str | None) -> None:
        """Forget the failures of this client after a successful login."""
        self._lockouts.record_success(ip)
