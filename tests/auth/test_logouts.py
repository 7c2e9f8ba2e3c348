"""mallard._auth.logouts: where logouts are recorded, the SQLite table of one host and the shared
document of hosts on object storage (here on a local state directory; on object storage in
tests/test_sharedstate.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mallard._auth.database import AuthDatabase
from mallard._auth.logouts import SCHEMA, DocumentLogouts, Logouts, TableLogouts
from mallard._errors import StorageError
from mallard._sharedstate import LocalState
from tests.auth.conftest import count_rows


@pytest.fixture(params=["table", "document"])
def logouts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Logouts]:
    state = LocalState(tmp_path / "state")
    if request.param == "table":
        db = AuthDatabase(state, SCHEMA)
        yield TableLogouts(db)
        db.close()
    else:
        yield DocumentLogouts(state)


def test_a_logout_holds_until_its_token_expires_then_is_dropped(logouts: Logouts, tmp_path: Path) -> None:
    assert not logouts.revoked("a" * 32)
    logouts.revoke("a" * 32, 1_000, now=100.0)
    logouts.revoke("b" * 32, 5_000, now=200.0)
    logouts.revoke("a" * 32, 1_000, now=300.0)  # twice: one entry
    assert logouts.revoked("a" * 32) and logouts.revoked("b" * 32) and not logouts.revoked("c" * 32)
    logouts.revoke("c" * 32, 9_000, now=1_000.0)  # "a" expired at 1,000: dropped
    assert not logouts.revoked("a" * 32) and logouts.revoked("b" * 32) and logouts.revoked("c" * 32)
    state = tmp_path / "state"
    kept = (count_rows(state, "revoked_sessions") if (state / "auth.sqlite").exists()
            else len(json.loads((state / "revoked_sessions.json").read_bytes())))
    assert kept == 2


def test_a_repeated_logout_does_not_rewrite_the_document(tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    logouts = DocumentLogouts(state)
    logouts.revoke("a" * 32, 1_000, now=100.0)
    before = state.path("revoked_sessions.json").stat()
    logouts.revoke("a" * 32, 1_000, now=200.0)
    assert state.path("revoked_sessions.json").stat().st_ino == before.st_ino  # not replaced
    assert json.loads(state.path("revoked_sessions.json").read_bytes()) == {"a" * 32: 1_000}


def test_a_damaged_document_is_said_plainly(tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    state.write("revoked_sessions.json", b"[1, 2]")
    with pytest.raises(StorageError, match=r"revoked_sessions.json is not a valid list of logouts\. "
                                           r"Delete it"):
        DocumentLogouts(state).revoked("a" * 32)
