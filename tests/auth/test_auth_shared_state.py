"""Auth as a whole: state/ survives restarts, holds no raw IP, is private, and is shared by
real processes."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mallard._auth import Auth
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from tests.auth.conftest import (
    CHEAP,
    IP4,
    IP6,
    PASSWORD,
    MakeAuth,
    all_state_bytes,
)
from tests.procs.lines import LineWorker as Worker

# real servers or processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow


def test_restart_keeps_password_keys_and_revocations(make_auth: MakeAuth) -> None:
    """A new Auth on the same directory sees the password, the keys, the logouts and the lockouts."""
    first = make_auth()
    first.setup(PASSWORD)
    kept, _ = first.create_session()
    gone, _ = first.create_session()
    first.revoke_session(gone)
    plain, record = first.create_key("ci", "Admin")
    for _ in range(5):
        first.record_failure(IP4)
    first.close()

    second = make_auth()
    assert second.verify(PASSWORD)
    assert second.check_session(kept) and not second.check_session(gone)
    assert second.check_key(plain) == "Admin"
    assert second.list_keys() == [record]
    assert second.lockout_remaining(IP4) > 0


def test_no_raw_ip_reaches_disk(auth: Auth, state: Path) -> None:
    """After failures, a success and logouts, no file under state/ holds either IP in any spelling."""
    for ip in (IP4, IP6, "2001:0db8:0000:0000:0000:0000:0000:0001"):
        for _ in range(6):
            auth.record_failure(ip)
    auth.record_success("203.0.113.10")
    token, _ = auth.create_session()
    auth.revoke_session(token)
    files = all_state_bytes(state)
    assert {"auth.sqlite", "admin.json"} <= set(files)
    spellings = [IP4, IP6, "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1",
                 "203.0.113.10"]
    for name, data in files.items():
        for spelling in spellings:
            for encoded in (spelling.encode(), spelling.encode("utf-16-le"), spelling.upper().encode()):
                assert encoded not in data, (name, spelling)
        assert bytes([203, 0, 113, 9]) not in data, name  # nor the packed address


def test_state_files_are_private(auth: Auth, state: Path) -> None:
    """Every file auth creates under state/ is readable by the owner only."""
    auth.record_failure(IP4)
    auth.create_key("k", "Admin")
    for path in state.iterdir():
        if path.name.startswith("auth.sqlite") or path.name in {"admin.json", "api_keys.json",
                                                                "auth.lock"}:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


# -- real processes ------------------------------------------------------------------------------------
@pytest.fixture
def workers(state: Path) -> Iterator[list[Worker]]:
    """Two worker processes on the same state directory, both ready."""
    started = [Worker("tests.procs.auth_worker", str(state)) for _ in range(2)]
    try:
        for w in started:
            assert w.recv() == "ready"
        yield started
    finally:
        for w in started:
            w.close()


def test_processes_racing_setup_agree_on_one_winner(workers: list[Worker]) -> None:
    """Two processes set up different passwords at once: exactly one wins and both then verify it."""
    first, second = "first process password", "second process password"
    workers[0].send(f"setup {first.replace(' ', '_')}")
    workers[1].send(f"setup {second.replace(' ', '_')}")
    results = [w.recv() for w in workers]
    assert sorted(results) == ["lost", "won"]
    winner = (first if results[0] == "won" else second).replace(" ", "_")
    loser = (second if results[0] == "won" else first).replace(" ", "_")
    for w in workers:
        assert w.ask(f"verify {winner}") == "True"
        assert w.ask(f"verify {loser}") == "False"


def test_lockouts_and_keys_cross_processes(workers: list[Worker], state: Path) -> None:
    """Failures in one process lock the IP in the others; a key made in one process works in another."""
    parent = Auth(LocalState(state), Settings(), secret=(state / "secret").read_bytes(), hasher=CHEAP)
    try:
        assert parent.check_key("mm_" + "0" * 64) is None  # the parent caches "no keys" first
        assert workers[0].ask(f"fail {IP6} 5") == "300"
        assert workers[1].ask(f"lockout {IP6}") in {"299", "300"}
        assert parent.lockout_remaining(IP6) in {299, 300}
        assert workers[1].ask(f"lockout {IP4}") == "0"

        plain = workers[0].ask("create-key ci Admin")
        assert workers[1].ask(f"check-key {plain}") == "Admin"
        assert parent.check_key(plain) == "Admin"
        mine, record = parent.create_key("mine", "ReadOnly")
        assert workers[0].ask(f"check-key {mine}") == "ReadOnly"
        parent.revoke_key(record["key_hash"])
        assert workers[1].ask(f"check-key {mine}") == "None"
    finally:
        parent.close()


def test_concurrent_key_creation_loses_nothing(workers: list[Worker], state: Path) -> None:
    """Two processes creating 20 keys each at the same time end with all 40 stored."""
    for i, w in enumerate(workers):
        w.send(f"create-keys w{i} 20")
    assert [w.recv() for w in workers] == ["ok", "ok"]
    parent = Auth(LocalState(state), Settings(), secret=(state / "secret").read_bytes(), hasher=CHEAP)
    try:
        names = sorted(k["name"] for k in parent.list_keys())
    finally:
        parent.close()
    assert names == sorted(f"w{i}-{n}" for i in range(2) for n in range(20))
    assert len({k for k in names}) == 40
