"""The authentication store: admin password, sessions, API keys and login lockouts, shared via state/."""

from __future__ import annotations

import hashlib
import os
import select
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest

from mallard.auth import (
    AlreadyConfiguredError,
    Auth,
    InvalidKeyError,
    NotConfiguredError,
    PasswordFromEnvironmentError,
    PasswordRejectedError,
    WrongPasswordError,
    validate_password,
)
from mallard.errors import StorageError
from mallard.settings import Settings
from tests.conftest import FrozenClock

ROOT = Path(__file__).resolve().parents[1]
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
        auth = Auth(state, Settings(**settings), secret=SECRET, clock=clock, hasher=hasher)
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


def _all_state_bytes(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state.rglob("*") if p.is_file()}


# -- password ------------------------------------------------------------------------------------------
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
    for name, data in _all_state_bytes(state).items():
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


# -- sessions ------------------------------------------------------------------------------------------
def test_session_verifies_until_it_expires(auth: Auth, clock: FrozenClock) -> None:
    """A token is valid for exactly session_ttl_secs (absolute) and has the documented shape."""
    token, max_age = auth.create_session()
    assert max_age == 86_400
    version, expires, nonce, mac = token.split(".")
    assert version == "v1" and int(expires) == int(clock().timestamp()) + max_age
    assert len(nonce) == 32 and len(mac) == 64
    assert auth.check_session(token)
    clock.advance(seconds=max_age - 1)
    assert auth.check_session(token)
    clock.advance(seconds=1)
    assert not auth.check_session(token)


def test_tampered_sessions_fail(auth: Auth) -> None:
    """Flipping any one character, or a token from another secret, is rejected."""
    token, _ = auth.create_session()
    for i in range(3, len(token)):
        if token[i] == ".":
            continue
        flipped = "1" if token[i] != "1" else "2"
        assert not auth.check_session(token[:i] + flipped + token[i + 1:]), i
    for bad in ("", "v1", token + "0", token.upper(), "v2" + token[2:], 42):
        assert not auth.check_session(bad)  # type: ignore[arg-type]
    other = Auth(auth._dir, Settings(), secret=b"another secret", hasher=CHEAP)
    try:
        assert not other.check_session(token)
    finally:
        other.close()


def test_revoked_session_fails_everywhere(auth: Auth, make_auth: MakeAuth) -> None:
    """A logout in one Auth object ends the session in another; other sessions live on."""
    token, _ = auth.create_session()
    kept, _ = auth.create_session()
    elsewhere = make_auth()
    assert elsewhere.check_session(token)
    assert auth.revoke_session(token)
    assert not elsewhere.check_session(token)
    assert elsewhere.check_session(kept)
    assert not auth.revoke_session("v1.garbage")


def test_revocations_are_pruned_once_expired(auth: Auth, clock: FrozenClock) -> None:
    """The logout table forgets tokens that have expired anyway."""
    token, ttl = auth.create_session()
    auth.revoke_session(token)
    clock.advance(seconds=ttl + 1)
    later, _ = auth.create_session()
    auth.revoke_session(later)
    rows = auth._db().execute("SELECT count(*) FROM revoked_sessions").fetchone()
    assert rows == (1,)


@pytest.mark.parametrize("how", ["change", "set_password"])
def test_password_change_ends_every_session(auth: Auth, make_auth: MakeAuth, how: str) -> None:
    """Sessions are bound to the password hash: a new password (from any process) invalidates them."""
    token, _ = auth.create_session()
    other = make_auth()
    assert other.check_session(token)
    if how == "change":
        other.change(PASSWORD, OTHER)
    else:
        other.set_password(OTHER)
    assert not auth.check_session(token)
    assert not other.check_session(token)
    fresh, _ = auth.create_session()
    assert other.check_session(fresh)


def test_shortened_ttl_refuses_longer_tokens(auth: Auth, make_auth: MakeAuth) -> None:
    """A token issued under a longer session_ttl_secs is refused once the TTL is lowered."""
    token, _ = auth.create_session()
    assert not make_auth(session_ttl_secs=3600).check_session(token)


# -- API keys ------------------------------------------------------------------------------------------
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


# -- lockout -------------------------------------------------------------------------------------------
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


def test_lockout_table_is_bounded(make_auth: MakeAuth, clock: FrozenClock) -> None:
    """At most max_tracked_keys entries are kept, and locked clients are the last to be dropped."""
    a = make_auth(max_tracked_keys=3, max_login_attempts=2)
    a.record_failure(IP4)
    a.record_failure(IP4)  # locked
    for i in range(5):
        clock.advance(seconds=1)
        a.record_failure(f"198.51.100.{i}")
    assert a._db().execute("SELECT count(*) FROM login_failures").fetchone() == (3,)
    assert a.lockout_remaining(IP4) > 0


def test_stale_entries_are_dropped(make_auth: MakeAuth, clock: FrozenClock) -> None:
    """Entries without an active lockout are deleted an hour after their last failure."""
    a = make_auth(login_lockout_secs=60)
    for _ in range(5):
        a.record_failure(IP4)
    a.record_failure(IP6)
    clock.advance(hours=1, seconds=1)
    a.record_failure("198.51.100.7")
    assert a._db().execute("SELECT count(*) FROM login_failures").fetchone() == (1,)


def test_concurrent_threads_count_every_failure(make_auth: MakeAuth) -> None:
    """Failures recorded from several threads of one process all count."""
    a = make_auth(max_login_attempts=40)
    def fail_ten_times() -> None:
        for _ in range(10):
            a.record_failure(IP4)

    threads = [threading.Thread(target=fail_ten_times) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.lockout_remaining(IP4) == 300


def test_no_raw_ip_reaches_disk(auth: Auth, state: Path) -> None:
    """After failures, a success and logouts, no file under state/ holds either IP in any spelling."""
    for ip in (IP4, IP6, "2001:0db8:0000:0000:0000:0000:0000:0001"):
        for _ in range(6):
            auth.record_failure(ip)
    auth.record_success("203.0.113.10")
    token, _ = auth.create_session()
    auth.revoke_session(token)
    files = _all_state_bytes(state)
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


# -- real processes ------------------------------------------------------------------------------------
class Worker:
    """A ``tests.procs.auth_worker`` child process, spoken to one line at a time."""

    def __init__(self, state: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.procs.auth_worker", str(state)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._buffer = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], timeout)
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.proc.kill()
                _, err = self.proc.communicate(timeout=10)
                raise AssertionError(f"worker died or hung: {err.decode(errors='replace')}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def ask(self, line: str) -> str:
        self.send(line)
        return self.recv()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        assert self.proc.returncode == 0


@pytest.fixture
def workers(state: Path) -> Iterator[list[Worker]]:
    """Two worker processes on the same state directory, both ready."""
    started = [Worker(state), Worker(state)]
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
    parent = Auth(state, Settings(), secret=(state / "secret").read_bytes(), hasher=CHEAP)
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
    parent = Auth(state, Settings(), secret=(state / "secret").read_bytes(), hasher=CHEAP)
    try:
        names = sorted(k["name"] for k in parent.list_keys())
    finally:
        parent.close()
    assert names == sorted(f"w{i}-{n}" for i in range(2) for n in range(20))
    assert len({k for k in names}) == 40
