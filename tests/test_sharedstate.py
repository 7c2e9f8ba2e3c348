"""mallard._sharedstate: the state every process and host shares, in a local ``state/`` directory or, with
an ``s3://`` lake_url, in the bucket. The hosts of the object-storage tests are separate processes
(tests/procs/state_host.py), each with a data directory of its own, building every consumer (salts, the
secret, auth, goals, funnels, shared links) from its settings, against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from mallard._errors import ConfigurationError, StorageError, StoreUnreachableError
from mallard._privacy import Salts, load_secret
from mallard._settings import Settings
from mallard._sharedstate import LocalState, OrLocal, shared_state
from mallard._statefile import JsonStateFile
from mallard._store.objectstate import REVALIDATE_SECS, ObjectState
from tests.procs.lines import LineWorker
from tests.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server

IP = "203.0.113.9"
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


# -- one host: a local state/ directory -------------------------------------------------------------------
def test_local_state_reads_lists_and_deletes_its_files(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state")
    assert state.read("secret") is None and state.names("salts/") == []
    assert state.write_once("salts/2026-12-04.salt", b"a") == b"a"
    state.write("salts/2026-12-03.salt", b"b")
    (tmp_path / "state" / "salts" / ".2026-12-05.salt.1.ab.tmp").write_bytes(b"half")  # a write in progress
    (tmp_path / "state" / "salts" / "old").mkdir()
    assert state.names("salts/") == ["salts/2026-12-03.salt", "salts/2026-12-04.salt"]
    assert state.read("salts/2026-12-03.salt") == b"b"
    state.delete("salts/2026-12-03.salt")
    state.delete("salts/2026-12-03.salt")  # gone already: nothing to do
    assert state.names("salts/") == ["salts/2026-12-04.salt"]
    assert state.where("goals.json") == str(tmp_path / "state" / "goals.json")


def test_local_documents_keep_their_files_and_locks(tmp_path: Path) -> None:
    """The same files as before the backend was chosen here: admin.json and api_keys.json share
    auth.lock, every other document has <stem>.lock."""
    state = LocalState(tmp_path)
    docs = {name: state.document(name, parse=orjson.loads, dump=orjson.dumps, empty=dict)
            for name in ("admin.json", "api_keys.json", "goals.json", "funnels.json")}
    assert all(isinstance(doc, JsonStateFile) for doc in docs.values())
    assert {name: Path(doc.lock_path).name for name, doc in docs.items()  # type: ignore[attr-defined]
            } == {"admin.json": "auth.lock", "api_keys.json": "auth.lock", "goals.json": "goals.lock",
                  "funnels.json": "funnels.lock"}
    docs["goals.json"].update(lambda d: {"n": 1})
    assert json.loads((tmp_path / "goals.json").read_bytes()) == {"n": 1}


def test_the_backend_is_chosen_by_lake_url(tmp_path: Path) -> None:
    local = shared_state(Settings(data_dir=tmp_path), tmp_path / "state")
    assert isinstance(local, LocalState) and local.root == tmp_path / "state"
    remote = shared_state(Settings(data_dir=tmp_path, lake_url="s3://analytics/prod/eu",
                                   s3_endpoint_url="http://127.0.0.1:9", s3_region=REGION,
                                   s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY),
                          tmp_path / "state")
    assert isinstance(remote, OrLocal) and isinstance(remote.shared, ObjectState)  # nothing asked yet
    assert remote.where("goals.json") == "s3://analytics/prod/eu/state/goals.json"
    assert not (tmp_path / "state").exists()


def test_a_store_that_does_not_answer_gives_pieces_of_this_hosts_own(tmp_path: Path) -> None:
    """Nothing listens on 127.0.0.1:9: a salt (created once) comes from the local state/ instead, and
    says so; a document never read raises, naming the object; a salt stands in until the store answers."""
    state = shared_state(Settings(data_dir=tmp_path, lake_url="s3://analytics/prod",
                                  s3_endpoint_url="http://127.0.0.1:9", s3_region=REGION,
                                  s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY),
                         tmp_path / "state")
    assert isinstance(state, OrLocal)
    salt = state.write_once("salts/2026-12-04.salt", b"a" * 32)
    assert salt == b"a" * 32 and state.fell_back
    assert state.write_once("salts/2026-12-04.salt", b"b" * 32) == salt  # the same piece, kept locally
    assert (tmp_path / "state" / "salts" / "2026-12-04.salt").read_bytes() == salt
    assert state.read("salts/2026-12-04.salt") == salt
    with pytest.raises(StoreUnreachableError, match=r"s3://analytics/prod/state/goals\.json: no answer"):
        state.document("goals.json", parse=json.loads, dump=lambda d: json.dumps(d).encode(),
                       empty=dict).read()
    salts = Salts(state)
    current, _, _ = salts.salts(datetime.now(UTC))
    assert len(current) == 32 and salts._retry_at is not None  # asked for again later


def test_object_storage_without_boto3_is_said_plainly(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the s3 extra were not installed
    with pytest.raises(ConfigurationError, match=r"state on object storage needs boto3\. Install it with "
                                                 r"pip install 'mallard-metrics\[s3\]'"):
        shared_state(Settings(lake_url="s3://analytics/prod"), tmp_path)


# -- hosts sharing a bucket --------------------------------------------------------------------------------
def _settings(server: S3Server, prefix: str, **extra: Any) -> dict[str, str]:
    """The host processes' environment: a lake in the test bucket under ``prefix``."""
    env = {"MALLARD_LAKE_URL": f"s3://{BUCKET}/{prefix}", "MALLARD_S3_ENDPOINT_URL": server.endpoint,
           "MALLARD_S3_REGION": REGION, "MALLARD_S3_ACCESS_KEY_ID": ACCESS_KEY,
           "MALLARD_S3_SECRET_ACCESS_KEY": SECRET_KEY}
    return env | {f"MALLARD_{k.upper()}": str(v) for k, v in extra.items()}


def _object(server: S3Server, key: str) -> bytes:
    client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name=REGION)
    body: bytes = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


@pytest.fixture
def prefix() -> str:
    return f"sharedstate-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def hosts(s3_server: S3Server, prefix: str, tmp_path: Path) -> Iterator[list[LineWorker]]:
    """Three host processes, each with a local data directory of its own, sharing the lake's prefix;
    lockouts after 31 failures."""
    env = _settings(s3_server, prefix, max_login_attempts=31)
    started = [LineWorker("tests.procs.state_host", str(tmp_path / f"host{i}"), env=env) for i in range(3)]
    try:
        for host in started:
            assert host.recv(timeout=60) == "ready"
        yield started
    finally:
        for host in started:
            host.close()
    for i in range(3):  # nothing of the shared state was kept locally
        assert not (tmp_path / f"host{i}" / "state").exists()


def _all(hosts: list[LineWorker], line: str) -> list[str]:
    """Send ``line`` to every host at once, then collect the answers."""
    for host in hosts:
        host.send(line)
    return [host.recv() for host in hosts]


def _after_the_cache_bound() -> None:
    time.sleep(REVALIDATE_SECS * 1.2)


@pytest.mark.slow
def test_every_host_derives_the_same_visitor_id_from_one_salt_and_secret(
        hosts: list[LineWorker], s3_server: S3Server, prefix: str) -> None:
    ids = _all(hosts, f"visitor shop.example {IP} {UA}")  # the three race to create today's salt
    assert len(set(ids)) == 1 and len(ids[0]) == 64
    assert len(set(_all(hosts, "secret"))) == 1
    assert hosts[0].ask(f"visitor other.example {IP} {UA}") != ids[0]
    salts = ObjectState(boto3.client("s3", endpoint_url=s3_server.endpoint, aws_access_key_id=ACCESS_KEY,
                                     aws_secret_access_key=SECRET_KEY, region_name=REGION),
                        BUCKET, prefix).names("salts/")
    assert len(salts) == 1 and salts[0].endswith(".salt")
    assert len(_object(s3_server, f"{prefix}/state/{salts[0]}")) == 32


@pytest.mark.slow
def test_salts_rotate_and_older_ones_are_deleted_in_the_bucket(s3_server: S3Server, prefix: str,
                                                               tmp_path: Path) -> None:
    settings = Settings(lake_url=f"s3://{BUCKET}/{prefix}", **s3_server.options())
    one, two = (Salts(shared_state(settings, tmp_path)) for _ in range(2))
    day = datetime(2026, 12, 4, 9, tzinfo=UTC)
    first, previous, _ = one.salts(day)
    assert previous is None and two.salts(day)[0] == first
    second, previous, _ = two.salts(day + timedelta(days=1))
    assert previous == first and second != first
    third, previous, _ = one.salts(day + timedelta(days=2))
    assert previous == second and third not in (first, second)
    state = shared_state(settings, tmp_path)
    assert state.names("salts/") == ["salts/2026-12-05.salt", "salts/2026-12-06.salt"]


@pytest.mark.slow
def test_one_admin_password_and_its_sessions_for_every_host(hosts: list[LineWorker]) -> None:
    passwords = ["first_password_0", "second_password_1"]
    for host, password in zip(hosts, passwords, strict=False):  # two hosts race to set it up
        host.send(f"setup {password}")
    answers = [host.recv() for host in hosts[:2]]
    assert sorted(answers) == ["lost AlreadyConfiguredError", "won"]
    winner, loser = passwords if answers[0] == "won" else passwords[::-1]
    assert _all(hosts, f"verify {winner}") == ["True"] * 3
    assert _all(hosts, f"verify {loser}") == ["False"] * 3
    token = hosts[0].ask("session")
    assert _all(hosts, f"check-session {token}") == ["True"] * 3

    assert hosts[2].ask("set-password changed_password_2") == "ok"  # ends every session
    _after_the_cache_bound()
    assert _all(hosts, "verify changed_password_2") == ["True"] * 3
    assert _all(hosts, f"verify {winner}") == ["False"] * 3
    assert _all(hosts, f"check-session {token}") == ["False"] * 3


@pytest.mark.slow
def test_a_logout_on_one_host_holds_on_every_other(hosts: list[LineWorker], s3_server: S3Server,
                                                   prefix: str) -> None:
    assert hosts[0].ask("setup the_admin_password") == "won"
    kept, gone = hosts[0].ask("session"), hosts[1].ask("session")
    assert _all(hosts, f"check-session {gone}") == ["True"] * 3  # cached as valid everywhere
    assert hosts[2].ask(f"logout {gone}") == "True"
    _after_the_cache_bound()
    assert _all(hosts, f"check-session {gone}") == ["False"] * 3
    assert _all(hosts, f"check-session {kept}") == ["True"] * 3
    logouts = json.loads(_object(s3_server, f"{prefix}/state/revoked_sessions.json"))
    assert list(logouts) == [gone.split(".")[2]]  # the nonce and the expiry only


@pytest.mark.slow
def test_an_api_key_revoked_on_one_host_is_refused_by_every_other(hosts: list[LineWorker]) -> None:
    plain = hosts[0].ask("create-key ci")
    assert _all(hosts, f"check-key {plain}") == ["Admin"] * 3
    assert hosts[1].ask(f"revoke-key {plain}") == "True"
    _after_the_cache_bound()
    assert _all(hosts, f"check-key {plain}") == ["None"] * 3


@pytest.mark.slow
def test_failed_logins_add_up_across_hosts(hosts: list[LineWorker], s3_server: S3Server,
                                           prefix: str) -> None:
    assert _all(hosts, f"fail {IP} 10") == ["0"] * 3  # 30 failures at once from 3 hosts: none lost
    entries = json.loads(_object(s3_server, f"{prefix}/state/login_failures.json"))
    assert [entry[0] for entry in entries.values()] == [30]
    assert hosts[0].ask(f"fail {IP} 1") == "300"  # the 31st locks the client out
    _after_the_cache_bound()
    assert all(int(seconds) in range(295, 301) for seconds in _all(hosts, f"lockout {IP}"))
    assert _all(hosts, "lockout 198.51.100.1") == ["0"] * 3
    raw = _object(s3_server, f"{prefix}/state/login_failures.json")
    assert IP.encode() not in raw and b"203.0.113" not in raw


@pytest.mark.slow
def test_goals_funnels_and_shared_links_are_seen_by_every_host(hosts: list[LineWorker]) -> None:
    for i in range(5):
        _all(hosts, f"goal shop.example Signup{i}")  # the same goals from every host at once: one each
    _all(hosts, "goal shop.example Mine")
    for host, name in zip(hosts, ("a", "b", "c"), strict=True):
        host.send(f"funnel shop.example {name}")
    ids = [host.recv() for host in hosts]
    assert len(set(ids)) == 3  # three funnels saved at once: three ids
    _after_the_cache_bound()
    assert _all(hosts, "goals shop.example") == [",".join([f"Signup{i}" for i in range(5)] + ["Mine"])] * 3
    funnels = _all(hosts, "funnels shop.example")
    assert [sorted(answer.split(",")) for answer in funnels] == [["a", "b", "c"]] * 3

    secret = hosts[0].ask("share shop.example Investors")
    link_id = hosts[1].ask(f"find-share {secret}").split()[0]
    assert hosts[2].ask(f"revoke-share shop.example {link_id}") == "True"
    _after_the_cache_bound()
    assert _all(hosts, f"find-share {secret}") == [f"{link_id} True"] * 3


@pytest.mark.slow
def test_a_refused_credential_is_said_plainly_never_quoted(s3_server: S3Server, prefix: str,
                                                           tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, lake_url=f"s3://{BUCKET}/{prefix}", s3_region=REGION,
                        s3_endpoint_url=s3_server.endpoint, s3_access_key_id=ACCESS_KEY,
                        s3_secret_access_key="not-the-secret-0042")
    with pytest.raises(StorageError) as caught:
        load_secret(shared_state(settings, tmp_path / "state"), None)
    message = str(caught.value)
    assert f"s3://{BUCKET}/{prefix}/state/secret" in message and "check s3_secret_access_key" in message
    assert ACCESS_KEY not in message and "not-the-secret-0042" not in message
