"""The admin password: ``Settings.admin_password``, or else the credential document ``admin.json``.

``admin.json`` is ``{"password_hash": "<argon2id PHC string>", "updated_at": "...Z"}``, a shared document
of :mod:`mallard._sharedstate`: ``state/admin.json`` (mode 0600) of the data directory, rewritten under
the lock shared with the API keys and read again when another process changed it; or, for hosts sharing a
lake on object storage, the object ``state/admin.json`` of the bucket, changed by compare-and-swap and
seen by the other hosts within a second. :meth:`AdminCredential.setup` sets it only if unset (race-safe:
of several processes or hosts, exactly one wins); :meth:`AdminCredential.change` and
:meth:`AdminCredential.set` replace it. ``Settings.admin_password`` wins over the document and is never
written anywhere: its hash is kept in memory only.

:meth:`AdminCredential.binding` is what sessions are signed with, so changing the password ends every
session (see :mod:`mallard._auth.tokens`).
"""

from __future__ import annotations

import hmac
import json
import threading
from typing import TYPE_CHECKING, Final

import argon2

from .._errors import StorageError
from .clock import Clock, stamp
from .errors import (
    AlreadyConfiguredError,
    NotConfiguredError,
    PasswordFromEnvironmentError,
    WrongPasswordError,
)
from .passwords import MAX_PASSWORD_LENGTH, is_argon2id_hash, validate_password, verify_hash

if TYPE_CHECKING:
    from .._sharedstate import SharedState

__all__ = ["ADMIN_FILE", "AdminCredential"]

ADMIN_FILE: Final = "admin.json"


class AdminCredential:
    """The admin password, shared by every process (and host) using ``state``.

    Args:
        state: the shared state (:func:`mallard._sharedstate.shared_state`).
        secret: the instance secret; binds sessions to an environment password without storing it.
        env_password: ``Settings.admin_password`` (wins over the file when set).
        clock: returns the current aware UTC time (for ``updated_at``).
        hasher: the Argon2id hasher.
    """

    def __init__(self, state: SharedState, *, secret: bytes, env_password: str | None,
                 clock: Clock, hasher: argon2.PasswordHasher) -> None:
        self._where = state.where(ADMIN_FILE)
        self._clock = clock
        self._hasher = hasher
        self._lock = threading.RLock()
        # the stored hash, "" when there is no document
        self._file = state.document(ADMIN_FILE, parse=self._parse, dump=self._document, empty=str)
        self._env_password = env_password
        self._env_hash: str | None = None
        self._env_binding: str | None = None
        if env_password:
            self._env_binding = "env:" + hmac.digest(
                secret, b"mallard-env-password|" + env_password.encode(), "sha256").hex()

    def configured(self) -> bool:
        """Whether an admin password is set (from the environment or ``state/admin.json``)."""
        return self._env_binding is not None or self._stored_hash() is not None

    def from_environment(self) -> bool:
        """Whether the password is ``Settings.admin_password`` (then it cannot be changed here)."""
        return self._env_binding is not None

    def setup(self, password: str) -> None:
        """Set the first admin password; only one caller, across all processes, can ever win.

        Raises:
            PasswordRejectedError: the password breaks a rule (see :func:`validate_password`).
            AlreadyConfiguredError: a password is already set (by the environment or an earlier setup).
            StorageError: ``admin.json`` could not be written.
        """
        if self.configured():
            raise self._already_configured()
        validate_password(password)
        hashed = self._hasher.hash(password)
        if self._file.update(lambda stored: stored or hashed) != hashed:
            raise self._already_configured()

    def verify(self, password: str) -> bool:
        """Whether ``password`` is the admin password (False when none is set). Takes ~50-100 ms."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            return False
        if self._env_binding is not None:
            return verify_hash(self._hasher, self._env_password_hash(), password)
        stored = self._stored_hash()
        return stored is not None and verify_hash(self._hasher, stored, password)

    def change(self, old: str, new: str) -> None:
        """Replace the admin password after checking the current one; ends every session.

        Raises:
            PasswordFromEnvironmentError: the password is set by ``MALLARD_ADMIN_PASSWORD``.
            NotConfiguredError: no password is set yet (use :meth:`setup`).
            WrongPasswordError: ``old`` is not the current password.
            PasswordRejectedError: ``new`` breaks a rule.
        """
        self._refuse_if_environment()
        hashed: list[str] = []

        def change(stored: str) -> str:  # checked against the newest hash, again after a lost race
            if not stored:
                raise NotConfiguredError("No admin password is set yet. Set one with the setup step "
                                         "first.", code="not_configured")
            if not verify_hash(self._hasher, stored, old):
                raise WrongPasswordError("The current password is wrong. Enter the password you log in "
                                         "with.", code="wrong_password")
            if not hashed:
                validate_password(new)
                hashed.append(self._hasher.hash(new))
            return hashed[0]

        self._file.update(change)

    def set(self, new: str) -> None:
        """Set the admin password unconditionally (``mallard password``); ends every session.

        Raises:
            PasswordFromEnvironmentError: the password is set by ``MALLARD_ADMIN_PASSWORD``.
            PasswordRejectedError: ``new`` breaks a rule.
        """
        self._refuse_if_environment()
        validate_password(new)
        hashed = self._hasher.hash(new)
        self._file.update(lambda stored: hashed)

    def binding(self) -> str | None:
        """What sessions are bound to: the current password hash (None when no password is set)."""
        return self._env_binding if self._env_binding is not None else self._stored_hash()

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
                assert self._env_password is not None
                self._env_hash = self._hasher.hash(self._env_password)  # kept in memory only
            return self._env_hash

    def _document(self, hashed: str) -> bytes:
        doc = {"password_hash": hashed, "updated_at": stamp(self._clock())}
        return (json.dumps(doc, indent=2) + "\n").encode()

    def _stored_hash(self) -> str | None:
        """The Argon2id hash in ``admin.json`` (read again when it changed), or None."""
        return self._file.read() or None

    def _parse(self, raw: bytes) -> str:
        try:
            hashed = json.loads(raw)["password_hash"]
        except (ValueError, KeyError, TypeError):
            hashed = None
        if not is_argon2id_hash(hashed):
            raise StorageError(f"{self._where} does not hold a valid Argon2id password hash. Restore "
                               "it from a backup, or delete it and set a new password with `mallard "
                               "password`.", code="invalid_admin_hash")
        return hashed
