"""The errors of :mod:`mallard._auth`: one :class:`AuthError` family, each with its machine ``code``.

The HTTP layer maps them to status codes; messages never quote a password or an IP.
"""

from __future__ import annotations

from .._errors import MallardError

__all__ = [
    "AlreadyConfiguredError",
    "AuthError",
    "InvalidKeyError",
    "NotConfiguredError",
    "PasswordFromEnvironmentError",
    "PasswordRejectedError",
    "WrongPasswordError",
]


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
