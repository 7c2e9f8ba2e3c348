"""mallard._auth.apikeys: API keys stored as hashes in state/api_keys.json."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest

from mallard._auth import InvalidKeyError
from mallard._errors import StorageError
from tests.auth.conftest import MakeAuth


def test_keys_create_list_check_revoke(make_auth: MakeAuth, state: Path) -> None:
    """Keys are mm_ + 64 hex, stored only as sha256, listed, scoped, and fail once revoked."""
    a = make_auth()
    read, read_rec = a.create_key("grafana", "ReadOnly")
    admin, admin_rec = a.create_key("deploy bot", "Admin")
    assert read.startswith("mm_") and len(read) == 67 and int(read[3:], 16) >= 0
    assert read_rec == {"key_hash": hashlib.sha256(read.encode()).hexdigest(), "name": "grafana",
                        "scope": "ReadOnly", "created_at": "2024-05-01T12:00:00Z", "revoked": False}
    assert a.list_keys() == [read_rec, admin_rec]
    assert a.check_key(read) == "ReadOnly"
    assert a.check_key(admin) == "Admin"
    assert a.check_key("mm_" + "0" * 64) is None
    assert a.check_key(read[:-1]) is None
    assert a.check_key(read.upper()) is None
    path = state / "api_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read.encode() not in path.read_bytes() and admin.encode() not in path.read_bytes()

    assert a.revoke_key(read_rec["key_hash"])
    assert a.revoke_key(read_rec["key_hash"])  # idempotent: it is known
    assert not a.revoke_key("0" * 64)
    assert not a.revoke_key("not a hash")
    assert a.check_key(read) is None
    assert a.check_key(admin) == "Admin"
    assert [k["revoked"] for k in a.list_keys()] == [True, False]


@pytest.mark.parametrize("scope", ["readonly", "admin", "Write", "", None])
def test_bad_scope_is_refused(make_auth: MakeAuth, scope: Any) -> None:
    """Only the exact scopes ReadOnly and Admin are accepted, and the error lists them."""
    with pytest.raises(InvalidKeyError, match="Valid scopes: ReadOnly, Admin") as info:
        make_auth().create_key("name", scope)
    assert info.value.code == "invalid_scope"


@pytest.mark.parametrize("name", ["", "   ", "x" * 129, "bad\nname", None])
def test_bad_key_name_is_refused(make_auth: MakeAuth, name: Any) -> None:
    """Names must be 1-128 printable characters, not blank."""
    with pytest.raises(InvalidKeyError) as info:
        make_auth().create_key(name, "Admin")
    assert info.value.code == "invalid_key_name"


def test_key_name_of_128_characters_is_accepted(make_auth: MakeAuth) -> None:
    """The upper bound is inclusive and counts characters, not bytes."""
    _, record = make_auth().create_key("é" * 128, "ReadOnly")
    assert record["name"] == "é" * 128


def test_keys_changed_by_another_object_are_seen(make_auth: MakeAuth) -> None:
    """The key list is re-read when another writer replaced the file."""
    a, b = make_auth(), make_auth()
    assert a.list_keys() == []
    plain, record = b.create_key("x", "Admin")
    assert a.check_key(plain) == "Admin"
    b.revoke_key(record["key_hash"])
    assert a.check_key(plain) is None


def test_a_damaged_key_file_is_an_error(make_auth: MakeAuth, state: Path) -> None:
    """A corrupt api_keys.json raises StorageError instead of silently dropping (or accepting) keys."""
    state.mkdir(parents=True)
    (state / "api_keys.json").write_text("[{]")
    with pytest.raises(StorageError) as info:
        make_auth().check_key("mm_" + "0" * 64)
    assert info.value.code == "invalid_api_keys"
