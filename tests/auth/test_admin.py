"""mallard._auth.admin: the admin password, from state/admin.json or the environment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mallard._auth import (
    AlreadyConfiguredError,
    Auth,
    NotConfiguredError,
    PasswordFromEnvironmentError,
    PasswordRejectedError,
    WrongPasswordError,
)
from mallard._errors import StorageError
from tests.auth.conftest import (
    IP4,
    OTHER,
    PASSWORD,
    MakeAuth,
    all_state_bytes,
)


def test_argon2_round_trip(make_auth: MakeAuth, state: Path) -> None:
    """With the default Argon2id parameters, setup stores a 0600 hash verifying only the right password."""
    a = make_auth(hasher=None)
    assert not a.password_configured()
    assert not a.verify(PASSWORD)
    a.setup(PASSWORD)
    assert a.password_configured()
    assert a.verify(PASSWORD)
    assert not a.verify(PASSWORD + "x")
    path = state / "admin.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    assert '"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$' in text
    assert '"updated_at": "2024-05-01T12:00:00Z"' in text


def test_setup_twice_is_refused(auth: Auth) -> None:
    """A second setup fails with already_configured and leaves the first password in place."""
    with pytest.raises(AlreadyConfiguredError) as info:
        auth.setup(OTHER)
    assert info.value.code == "already_configured"
    assert auth.verify(PASSWORD) and not auth.verify(OTHER)


def test_environment_password_wins_and_is_never_written(make_auth: MakeAuth, state: Path) -> None:
    """MALLARD_ADMIN_PASSWORD is the password, cannot be replaced, and no file under state/ contains it."""
    env_password = "from the environment 7"
    a = make_auth(admin_password=env_password)
    assert a.password_configured() and a.password_from_environment()
    assert a.verify(env_password) and not a.verify(PASSWORD)
    with pytest.raises(AlreadyConfiguredError):
        a.setup(PASSWORD)
    with pytest.raises(PasswordFromEnvironmentError):
        a.set_password(PASSWORD)
    with pytest.raises(PasswordFromEnvironmentError):
        a.change(env_password, PASSWORD)
    token, _ = a.create_session()
    assert a.check_session(token)
    a.record_failure(IP4)
    a.create_key("grafana", "ReadOnly")
    assert not (state / "admin.json").exists()
    for name, data in all_state_bytes(state).items():
        assert env_password.encode() not in data, name
    # a second process with the same setting accepts the session (the binding is deterministic)
    assert make_auth(admin_password=env_password).check_session(token)
    assert not make_auth().check_session(token)  # without the env password: no password, no session


def test_change_and_set_password(auth: Auth) -> None:
    """change() needs the current password and a valid new one; set_password() forces it."""
    with pytest.raises(WrongPasswordError):
        auth.change(OTHER, OTHER)
    with pytest.raises(PasswordRejectedError):
        auth.change(PASSWORD, "short")
    assert auth.verify(PASSWORD)
    auth.change(PASSWORD, OTHER)
    assert auth.verify(OTHER) and not auth.verify(PASSWORD)
    auth.set_password(PASSWORD)
    assert auth.verify(PASSWORD)


def test_change_without_a_password_is_refused(make_auth: MakeAuth) -> None:
    """change() before setup says that setup comes first; create_session() too."""
    a = make_auth()
    with pytest.raises(NotConfiguredError):
        a.change(PASSWORD, OTHER)
    with pytest.raises(NotConfiguredError):
        a.create_session()


def test_an_invalid_stored_hash_is_refused(make_auth: MakeAuth, state: Path) -> None:
    """A damaged or non-Argon2id admin.json is an error, never an open (setup-able) instance."""
    state.mkdir(parents=True)
    (state / "admin.json").write_text('{"password_hash": "$2b$12$notargon", "updated_at": "x"}')
    a = make_auth()
    with pytest.raises(StorageError) as info:
        a.password_configured()
    assert info.value.code == "invalid_admin_hash"
    with pytest.raises(StorageError):
        a.setup(PASSWORD)
