"""mallard._auth.passwords: the rules a new admin password must meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from mallard._auth import (
    PasswordRejectedError,
    validate_password,
)
from tests.auth.conftest import MakeAuth


@pytest.mark.parametrize(("password", "code"), [
    ("short pass1", "password_too_short"),
    ("", "password_too_short"),
    ("x" * 1025, "password_too_long"),
    ("ADMINISTRATOR", "password_too_common"),
    ("MallardMetrics", "password_too_common"),
    ("123456789012", "password_too_common"),
    ("aaaaaaaaaaaaaaa", "password_repeated"),
])
def test_password_rules(make_auth: MakeAuth, state: Path, password: str, code: str) -> None:
    """Short, overlong, common (any case) and one-character passwords are refused with a precise code."""
    a = make_auth()
    with pytest.raises(PasswordRejectedError) as info:
        a.setup(password)
    assert info.value.code == code
    assert "must" in info.value.message or "Choose" in info.value.message
    assert not (state / "admin.json").exists()
    assert not a.password_configured()


def test_password_rules_accept_a_good_password() -> None:
    """A 12-character varied password passes, and the length message names the minimum."""
    validate_password("abcdefghijk1")
    with pytest.raises(PasswordRejectedError, match="at least 12 characters"):
        validate_password("abcdefghij1")
