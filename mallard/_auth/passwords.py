"""The admin password's rules and its Argon2id hashes.

A new password is checked by :func:`validate_password`; it is stored only as an Argon2id PHC string
(``$argon2id$...``), made by an ``argon2.PasswordHasher`` (the default parameters cost ~50-100 ms per hash;
tests pass a cheap one).
"""

from __future__ import annotations

from typing import Final, TypeGuard

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import PasswordRejectedError

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "is_argon2id_hash", "validate_password",
           "verify_hash"]

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
_REFUSED: Final = frozenset({"password", "password123", "administrator", "changeme", "letmein",
                             "analytics", "mallardmetrics", "123456789012"})


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


def verify_hash(hasher: argon2.PasswordHasher, hashed: str, password: str) -> bool:
    """Whether ``password`` matches the Argon2 hash ``hashed`` (False for a hash that cannot be read)."""
    try:
        return hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def is_argon2id_hash(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a readable Argon2id PHC string (not another algorithm, not damaged)."""
    if not isinstance(value, str) or not value.startswith("$argon2id$"):
        return False
    try:
        argon2.extract_parameters(value)
    except (ValueError, KeyError, TypeError, InvalidHashError):
        return False
    return True
