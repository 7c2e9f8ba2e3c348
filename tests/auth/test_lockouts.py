"""mallard._auth.lockouts: failed logins per hashed client and the lockout after too many."""

from __future__ import annotations

from pathlib import Path

from mallard._auth import Auth
from tests.auth.conftest import (
    IP4,
    IP6,
    PASSWORD,
    MakeAuth,
    count_rows,
)
from tests.conftest import FrozenClock


def test_lockout_after_max_failures(auth: Auth, clock: FrozenClock) -> None:
    """The 5th failure locks the IP for 300 s, even against the right password; expiry resets the count."""
    for _ in range(4):
        auth.record_failure(IP4)
        assert auth.lockout_remaining(IP4) == 0
    auth.record_failure(IP4)  # this attempt itself is answered normally (401) by the HTTP layer
    assert auth.lockout_remaining(IP4) == 300
    assert auth.verify(PASSWORD) and auth.lockout_remaining(IP4) == 300  # still locked
    auth.record_failure(IP4)  # a failure during the lockout does not extend it
    clock.advance(seconds=299.5)
    assert auth.lockout_remaining(IP4) == 1  # Retry-After never rounds down to 0
    clock.advance(seconds=0.5)
    assert auth.lockout_remaining(IP4) == 0
    auth.record_failure(IP4)  # the count starts afresh
    assert auth.lockout_remaining(IP4) == 0


def test_success_clears_and_ips_are_independent(auth: Auth) -> None:
    """A success forgets an IP's failures; other IPs (and other spellings of one IP) are separate or equal."""
    for _ in range(4):
        auth.record_failure(IP4)
        auth.record_failure(IP6)
    auth.record_success(IP4)
    auth.record_failure(IP4)
    assert auth.lockout_remaining(IP4) == 0
    auth.record_failure("2001:DB8:0:0::1")  # the same address as IP6
    assert auth.lockout_remaining(IP6) == 300
    assert auth.lockout_remaining(IP4) == 0
    assert auth.lockout_remaining("198.51.100.1") == 0


def test_old_failures_are_forgotten(auth: Auth, clock: FrozenClock) -> None:
    """Failures more than an hour apart do not add up."""
    for _ in range(4):
        auth.record_failure(IP4)
    clock.advance(hours=1)
    auth.record_failure(IP4)
    assert auth.lockout_remaining(IP4) == 0


def test_lockout_disabled_with_zero(make_auth: MakeAuth, state: Path) -> None:
    """max_login_attempts = 0 never locks and records nothing."""
    a = make_auth(max_login_attempts=0)
    for _ in range(20):
        a.record_failure(IP4)
    assert a.lockout_remaining(IP4) == 0
    assert not (state / "auth.sqlite").exists()


def test_lockout_table_is_bounded(make_auth: MakeAuth, clock: FrozenClock, state: Path) -> None:
    """At most max_tracked_keys entries are kept, and locked clients are the last to be dropped."""
    a = make_auth(max_tracked_keys=3, max_login_attempts=2)
    a.record_failure(IP4)
    a.record_failure(IP4)  # locked
    for i in range(5):
        clock.advance(seconds=1)
        a.record_failure(f"198.51.100.{i}")
    assert count_rows(state, "login_failures") == 3
    assert a.lockout_remaining(IP4) > 0


def test_stale_entries_are_dropped(make_auth: MakeAuth, clock: FrozenClock, state: Path) -> None:
    """Entries without an active lockout are deleted an hour after their last failure."""
    a = make_auth(login_lockout_secs=60)
    for _ in range(5):
        a.record_failure(IP4)
    a.record_failure(IP6)
    clock.advance(hours=1, seconds=1)
    a.record_failure("198.51.100.7")
    assert count_rows(state, "login_failures") == 1
