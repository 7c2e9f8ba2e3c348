"""Fixtures of the auth tests: Auth objects on a fresh state/ directory with a frozen clock and cheap
hashing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest

from mallard._auth import Auth
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from tests.conftest import FrozenClock

SECRET = b"k" * 32
PASSWORD = "correct horse battery"
OTHER = "staple tuning fork 42"
IP4 = "203.0.113.9"
IP6 = "2001:db8::1"
#: Cheap Argon2id parameters: the real defaults cost ~100 ms per hash on this machine.
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

MakeAuth = Callable[..., Auth]


@pytest.fixture
def state(tmp_data_dir: Path) -> Path:
    """The state/ directory of a fresh data directory (not yet created)."""
    return tmp_data_dir / "state"


@pytest.fixture
def make_auth(state: Path, clock: FrozenClock) -> Iterator[MakeAuth]:
    """Build Auth objects on ``state`` with the frozen clock and cheap hashing; all closed afterwards."""
    made: list[Auth] = []

    def make(hasher: argon2.PasswordHasher | None = CHEAP, **settings: Any) -> Auth:
        auth = Auth(LocalState(state), Settings(**settings), secret=SECRET, clock=clock, hasher=hasher)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def auth(make_auth: MakeAuth) -> Auth:
    """An Auth with a password already set."""
    a = make_auth()
    a.setup(PASSWORD)
    return a




def all_state_bytes(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state.rglob("*") if p.is_file()}


def count_rows(state: Path, table: str) -> int:
    """The rows of ``table`` in state/auth.sqlite, read through a connection of its own."""
    conn = sqlite3.connect(state / "auth.sqlite")
    try:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        conn.close()
    return int(count)
