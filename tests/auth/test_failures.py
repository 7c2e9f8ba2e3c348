"""mallard._auth.failures: where failed logins are counted, the SQLite table of one host and the shared
document of hosts on object storage (here on a local state directory; on object storage in
tests/test_sharedstate.py), with the lockout rules of mallard._auth.lockouts over each."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mallard._auth.database import AuthDatabase
from mallard._auth.failures import SCHEMA, DocumentFailures, Failures, TableFailures, evicted
from mallard._auth.lockouts import Lockouts
from mallard._errors import StorageError
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from tests.auth.conftest import IP4, IP6, SECRET, count_rows
from tests.conftest import FrozenClock

Counted = tuple[Failures, Callable[[], int]]


@pytest.fixture(params=["table", "document"])
def failures(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counted]:
    """Each store on a fresh state directory, and how many entries it holds."""
    state = LocalState(tmp_path / "state")
    if request.param == "table":
        db = AuthDatabase(state, SCHEMA)
        yield TableFailures(db), lambda: count_rows(state.root, "login_failures")
        db.close()
    else:
        path = state.path("login_failures.json")
        yield DocumentFailures(state), lambda: len(json.loads(path.read_bytes()))


def _lockouts(store: Failures, clock: FrozenClock, **settings: int) -> Lockouts:
    return Lockouts(store, Settings(**settings), secret=SECRET, clock=clock)


def test_the_attempt_reaching_the_limit_locks_and_a_success_forgets(failures: Counted,
                                                                   clock: FrozenClock) -> None:
    lockouts = _lockouts(failures[0], clock, max_login_attempts=3, login_lockout_secs=60)
    for _ in range(2):
        lockouts.record_failure(IP4)
    assert lockouts.remaining(IP4) == 0
    lockouts.record_failure(IP4)
    assert lockouts.remaining(IP4) == 60
    lockouts.record_failure(IP4)  # during the lockout: changes nothing
    clock.advance(seconds=59.5)
    assert lockouts.remaining(IP4) == 1
    lockouts.record_failure(IP6)
    lockouts.record_success(IP6)
    lockouts.record_success("198.51.100.1")  # nothing to forget
    assert failures[1]() == 1


def test_old_entries_are_dropped_and_the_cap_evicts_unlocked_first(failures: Counted,
                                                                   clock: FrozenClock) -> None:
    store, count = failures
    lockouts = _lockouts(store, clock, max_login_attempts=2, max_tracked_keys=3, login_lockout_secs=7200)
    lockouts.record_failure(IP4)
    lockouts.record_failure(IP4)  # locked for two hours
    for i in range(5):
        clock.advance(seconds=1)
        lockouts.record_failure(f"198.51.100.{i}")
    assert count() == 3 and lockouts.remaining(IP4) > 0
    clock.advance(hours=1, seconds=10)
    lockouts.record_failure(IP6)  # the unlocked entries are an hour old: dropped
    assert count() == 2 and lockouts.remaining(IP4) > 0


def test_evicted_orders_unlocked_then_least_recent() -> None:
    entries = {"locked-old": (5, 200.0, 1.0), "new": (1, 0.0, 90.0), "old": (1, 0.0, 10.0),
               "expired-lock": (5, 50.0, 5.0)}
    assert evicted(entries, 100.0, 3) == ["expired-lock", "old", "new"]
    assert evicted(entries, 100.0, 0) == [] and evicted(entries, 100.0, -2) == []


def test_threads_of_one_process_lose_no_failure(failures: Counted, clock: FrozenClock) -> None:
    lockouts = _lockouts(failures[0], clock, max_login_attempts=40)

    def fail_ten_times() -> None:
        for _ in range(10):
            lockouts.record_failure(IP4)

    threads = [threading.Thread(target=fail_ten_times) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lockouts.remaining(IP4) == 300


def test_the_document_holds_keyed_hashes_never_the_ip(tmp_path: Path, clock: FrozenClock) -> None:
    state = LocalState(tmp_path)
    lockouts = _lockouts(DocumentFailures(state), clock)
    for ip in (IP4, IP6):
        lockouts.record_failure(ip)
    raw = state.path("login_failures.json").read_bytes()
    assert IP4.encode() not in raw and b"2001:db8" not in raw
    assert all(len(key) == 64 for key in json.loads(raw))


def test_a_damaged_document_is_said_plainly(tmp_path: Path, clock: FrozenClock) -> None:
    state = LocalState(tmp_path)
    state.write("login_failures.json", b'{"k": "not an entry"}')
    with pytest.raises(StorageError, match=r"login_failures.json is not a valid list of failed logins\. "
                                           r"Delete it"):
        _lockouts(DocumentFailures(state), clock).remaining(IP4)
