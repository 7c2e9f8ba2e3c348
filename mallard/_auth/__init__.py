"""Authentication state shared by every worker process: admin password, sessions, API keys, lockouts.

No HTTP here: the HTTP layer calls :class:`Auth` and maps its errors to status codes. Every piece of state
lives in files under ``state/``, written only through :class:`mallard._state.StateDir`, so that all workers
of a host (``gunicorn -w 4``) agree:

* ``state/admin.json``: the admin password's Argon2id hash (:mod:`.admin`, rules in :mod:`.passwords`).
  ``Settings.admin_password`` wins over it and is never written anywhere.
* Sessions are stateless signed tokens bound to the current password hash (:mod:`.tokens`); logouts are
  recorded in ``state/auth.sqlite`` until the token would expire.
* ``state/api_keys.json``: the API keys, stored only as SHA-256 hashes (:mod:`.apikeys`).
* ``state/auth.sqlite`` (WAL, :mod:`.database`): also the failed logins per client, keyed by
  ``HMAC(secret, canonical ip)``, so the raw IP never reaches disk (:mod:`.lockouts`).
* ``state/auth.lock``: the lock taken while ``admin.json`` or ``api_keys.json`` is rewritten.

:class:`Auth` is the one object the rest of mallard uses; each module above owns one of these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import argon2

from .._settings import Settings
from .._state import StateDir
from . import lockouts, tokens
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
from .lockouts import Lockouts
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

_LOCK_FILE: Final = "auth.lock"  # shared by admin.json and api_keys.json


class Auth:
    """The admin password, dashboard sessions, API keys and login lockouts of one data directory.

    Every method may be called from several threads and from several processes sharing ``state_dir``.
    Call :meth:`close` (or use ``with``) to release the SQLite connection.

    Args:
        state_dir: the ``state/`` directory of the data directory (created if missing).
        settings: read for ``admin_password``, ``session_ttl_secs``, ``max_login_attempts``,
            ``login_lockout_secs`` and ``max_tracked_keys``.
        secret: the instance secret (:func:`mallard._privacy.load_secret`): signs sessions and keys the
            lockout table.
        clock: returns the current aware UTC time.
        hasher: the Argon2id hasher (default: ``argon2.PasswordHasher()``); tests pass a cheap one.
    """

    def __init__(self, state_dir: Path, settings: Settings, *, secret: bytes, clock: Clock = utcnow,
                 hasher: argon2.PasswordHasher | None = None) -> None:
        if not secret:
            raise ValueError("Auth needs a non-empty secret: pass mallard._privacy.load_secret(state_dir, "
                             "settings.secret).")
        secret = bytes(secret)
        state = StateDir(Path(state_dir))
        self._admin = AdminCredential(state, lock=_LOCK_FILE, secret=secret,
                                      env_password=settings.admin_password, clock=clock,
                                      hasher=hasher or argon2.PasswordHasher())
        self._db = AuthDatabase(state, lockouts.SCHEMA + tokens.SCHEMA)
        self._tokens = SessionTokens(self._db, secret=secret, binding=self._admin.binding,
                                     ttl=settings.session_ttl_secs, clock=clock)
        self._keys = ApiKeys(state, lock=_LOCK_FILE, clock=clock)
        self._lockouts = Lockouts(self._db, settings, secret=secret, clock=clock)

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close this process's SQLite connection (idempotent). The object may not be used afterwards."""
        self._db.close()

    def __enter__(self) -> Auth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- password (mallard._auth.admin: the rules, Raises and storage are documented there) ----------
    def password_configured(self) -> bool:
        """Whether an admin password is set (from the environment or ``state/admin.json``)."""
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
