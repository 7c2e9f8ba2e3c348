"""mallard._auth.database: one SQLite connection per process, again after a fork."""

from __future__ import annotations

import os

import pytest

from mallard._auth import Auth
from tests.auth.conftest import (
    IP4,
    IP6,
    MakeAuth,
)


def test_a_forked_child_opens_its_own_connection(auth: Auth) -> None:
    """After fork the child uses a fresh SQLite connection and its failures lock the IP for the parent."""
    auth.record_failure(IP6)  # the parent's connection exists before the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            for _ in range(5):
                auth.record_failure(IP4)
            code = 0 if auth.lockout_remaining(IP4) == 300 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert auth.lockout_remaining(IP4) == 300


def test_a_closed_auth_refuses_work(make_auth: MakeAuth) -> None:
    """After close() the database is not silently reopened."""
    a = make_auth()
    a.record_failure(IP4)
    a.close()
    a.close()
    with pytest.raises(RuntimeError, match="closed"):
        a.lockout_remaining(IP4)
