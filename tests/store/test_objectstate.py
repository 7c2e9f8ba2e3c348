"""Shared state on object storage (mallard/_store/objectstate.py), on a real S3 server (SeaweedFS on
127.0.0.1): hosts are ObjectState instances, and in the races separate processes, sharing one prefix of
the bucket."""

from __future__ import annotations

import multiprocessing as mp
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import orjson
import pytest

from mallard._errors import StorageError
from mallard._settings import Settings
from mallard._store.objectstate import REVALIDATE_SECS, ObjectDocument, ObjectState

from ..s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server

pytestmark = pytest.mark.slow
Counter = dict[str, int]


def _client(endpoint: str, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name=REGION,
                        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=2))


def _state(endpoint: str, prefix: str, bucket: str = BUCKET, **keys: str) -> ObjectState:
    return ObjectState(_client(endpoint, **keys), bucket, prefix)


def _counter(state: ObjectState, **kwargs: Any) -> ObjectDocument[Counter]:
    return state.document("counter.json", parse=orjson.loads, dump=orjson.dumps, empty=lambda: {"n": 0},
                          **kwargs)


def _plus_one(doc: Counter) -> Counter:
    return {"n": doc["n"] + 1}


@pytest.fixture
def prefix() -> str:
    return f"objectstate-{uuid.uuid4().hex[:10]}"


def test_write_once_keeps_the_first_content_and_write_replaces(s3_server: S3Server, prefix: str) -> None:
    state = _state(s3_server.endpoint, prefix)
    assert state.read("salts/19723") is None
    assert state.write_once("salts/19723", b"first") == b"first"
    assert state.write_once("salts/19723", b"second") == b"first"
    state.write("admin.json", b"one")
    state.write("admin.json", b"two")
    assert state.read("admin.json") == b"two"
    body = _client(s3_server.endpoint).get_object(Bucket=BUCKET, Key=f"{prefix}/state/salts/19723")
    assert body["Body"].read() == b"first"
    state.write_once("salts/19724", b"next")
    assert state.names("salts/") == ["salts/19723", "salts/19724"]
    state.delete("salts/19723")
    state.delete("salts/19723")  # already gone: nothing to do
    assert state.names("salts/") == ["salts/19724"] and state.read("salts/19723") is None


# -- several processes ------------------------------------------------------------------------------------
def _race(target: Any, processes: int, *args: Any) -> list[Any]:
    """Run ``target(*args, start, out)`` in ``processes`` spawned processes, released together by
    ``start``; what each put in ``out``."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def _create_salt(endpoint: str, prefix: str, start: Any, out: Any) -> None:
    state = _state(endpoint, prefix)
    mine = uuid.uuid4().bytes
    start.wait(60)
    out.put((mine, state.write_once("salts/19723", mine)))


def test_processes_racing_to_create_a_salt_all_use_the_one_that_won(s3_server: S3Server,
                                                                    prefix: str) -> None:
    results = _race(_create_salt, 6, s3_server.endpoint, prefix)
    won = {got for _, got in results}
    assert len(won) == 1
    assert won.pop() in {mine for mine, _ in results}
    assert len({mine for mine, _ in results}) == 6  # each proposed its own
    assert _state(s3_server.endpoint, prefix).read("salts/19723") == results[0][1]


def _increment(endpoint: str, prefix: str, times: int, start: Any, out: Any) -> None:
    doc = _counter(_state(endpoint, prefix))
    start.wait(60)
    for _ in range(times):
        doc.update(_plus_one)
    out.put(doc.lost_races)


def test_processes_incrementing_a_counter_lose_no_update(s3_server: S3Server, prefix: str) -> None:
    lost = _race(_increment, 4, s3_server.endpoint, prefix, 25)
    assert _counter(_state(s3_server.endpoint, prefix)).read() == {"n": 100}
    print(f"lost races retried: {lost}")


def _increment_once(endpoint: str, prefix: str) -> None:
    _counter(_state(endpoint, prefix)).update(_plus_one)


def test_the_cache_sees_another_process_update_within_the_bound(s3_server: S3Server, prefix: str) -> None:
    now = [0.0]
    doc = _counter(_state(s3_server.endpoint, prefix), clock=lambda: now[0])
    doc.update(_plus_one)
    first = doc.read()
    assert first == {"n": 1}
    proc = mp.get_context("spawn").Process(target=_increment_once, args=(s3_server.endpoint, prefix))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 0
    gets = s3_server.requests().get("GET", 0)
    now[0] += REVALIDATE_SECS * 0.9
    for _ in range(20):
        assert doc.read() is first  # younger than the bound: the cache, not the store
    assert s3_server.requests().get("GET", 0) == gets
    now[0] += REVALIDATE_SECS * 0.2
    second = doc.read()
    assert second == {"n": 2}
    assert s3_server.requests().get("GET", 0) == gets + 1
    now[0] += REVALIDATE_SECS * 2
    assert doc.read() is second  # revalidated (304 Not Modified): the cached document is kept
    assert doc.read(force=True) is second
    assert s3_server.requests().get("GET", 0) == gets + 3


def test_an_update_from_a_stale_etag_is_refused_and_applied_again(s3_server: S3Server, prefix: str) -> None:
    """a's first put carries the ETag it read before b's update landed: the store refuses it (412),
    a reads b's document and applies its change again."""
    a, b = (_counter(_state(s3_server.endpoint, prefix)) for _ in range(2))
    b.update(_plus_one)
    seen: list[int] = []

    def change(doc: Counter) -> Counter:
        seen.append(doc["n"])
        if len(seen) == 1:
            b.update(_plus_one)  # lands between a's read and a's put
        return {"n": doc["n"] + 10}

    assert a.update(change) == {"n": 12}
    assert seen == [1, 2] and a.lost_races == 1 and b.lost_races == 0
    assert b.read(force=True) == {"n": 12}


def test_too_many_lost_races_fail_clearly_and_write_nothing(s3_server: S3Server, prefix: str) -> None:
    a = _counter(_state(s3_server.endpoint, prefix), max_tries=2)
    b = _counter(_state(s3_server.endpoint, prefix))

    def always_overtaken(doc: Counter) -> Counter:
        b.update(_plus_one)
        return {"n": -1}

    with pytest.raises(StorageError, match=rf"Cannot update s3://{BUCKET}/{prefix}/state/counter.json: "
                                           r"2 tries in a row lost the race"):
        a.update(always_overtaken)
    assert a.lost_races == 2
    assert b.read(force=True) == {"n": 2}


def test_an_unchanged_or_refused_change_writes_nothing(s3_server: S3Server, prefix: str) -> None:
    state = _state(s3_server.endpoint, prefix)
    doc = _counter(state)
    assert doc.update(lambda d: d) == {"n": 0}
    assert state.read("counter.json") is None  # no document was created
    doc.update(_plus_one)
    client = _client(s3_server.endpoint)
    etag = client.head_object(Bucket=BUCKET, Key=state.key("counter.json"))["ETag"]

    def refuse(d: Counter) -> Counter:
        raise ValueError("no such key")

    with pytest.raises(ValueError, match="no such key"):
        doc.update(refuse)
    assert doc.update(lambda d: d) == {"n": 1}
    assert client.head_object(Bucket=BUCKET, Key=state.key("counter.json"))["ETag"] == etag


# -- errors -----------------------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize(("keys", "bucket", "says"), [
    ({}, "no-such-bucket-mallard", "the bucket does not exist: check the bucket of lake_url"),
    ({"secret_key": "not-the-secret-4242"}, BUCKET, "check s3_secret_access_key"),
    ({"access_key": "unknown-key-id-4242"}, BUCKET, "check s3_access_key_id"),
])
def test_errors_name_the_object_and_what_to_check_never_a_credential(
        s3_server: S3Server, prefix: str, keys: dict[str, str], bucket: str, says: str) -> None:
    state = _state(s3_server.endpoint, prefix, bucket, **keys)
    attempts = [lambda: state.write_once("salts/1", b"x"), lambda: _counter(state).read(),
                lambda: _counter(state).update(_plus_one), lambda: state.names("salts/")]
    if bucket == BUCKET:  # SeaweedFS creates a missing bucket on a plain PUT by an admin identity
        attempts.append(lambda: state.write("admin.json", b"{}"))
    for attempt in attempts:
        with pytest.raises(StorageError) as caught:
            attempt()
        message = str(caught.value)
        assert f"s3://{bucket}/{prefix}/state/" in message and says in message, message
        for secret in (ACCESS_KEY, SECRET_KEY, *keys.values()):
            assert secret not in message


def test_an_unreachable_store_is_said_plainly(prefix: str) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    state = _state(endpoint, prefix)
    with pytest.raises(StorageError, match=rf"Cannot read s3://{BUCKET}/{prefix}/state/salts/1: no answer "
                                           rf"from the store at {endpoint} \(EndpointConnectionError\): "
                                           "check s3_endpoint_url"):
        state.write_once("salts/1", b"x")


# -- from the settings -------------------------------------------------------------------------------------
def test_from_settings_reaches_the_lake_and_a_forked_child_gets_its_own_client(s3_server: S3Server,
                                                                               prefix: str) -> None:
    """A pre-forking server's workers must not share the parent's connection pool. The fork happens in a
    fresh interpreter, as a server's master forks its workers: forked from a test worker, whose other
    tests left threads (chdb's, DuckDB's) that may hold a lock at the fork, the child could hang."""
    script = """
import os, sys
from mallard._settings import Settings
from mallard._store.objectstate import ObjectState
state = ObjectState.from_settings(Settings(lake_url=sys.argv[1], s3_endpoint_url=sys.argv[2],
    s3_region=sys.argv[3], s3_access_key_id=sys.argv[4], s3_secret_access_key=sys.argv[5]))
assert state.write_once("secret", b"parent") == b"parent"  # the parent's client is in use
parents = state._client
pid = os.fork()
if pid == 0:
    code = 1
    try:
        ok = state.write_once("salts/x.salt", b"child") == b"child" and state._client is not parents
        code = 0 if ok and state.read("secret") == b"parent" else 2
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert state._client is parents and state.read("salts/x.salt") == b"child"
print("ok")
"""
    options = s3_server.options()
    done = subprocess.run([sys.executable, "-c", script, f"s3://{BUCKET}/{prefix}/",
                           options["s3_endpoint_url"], options["s3_region"], options["s3_access_key_id"],
                           options["s3_secret_access_key"]], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    state = ObjectState.from_settings(Settings(lake_url=f"s3://{BUCKET}/{prefix}/", **options))
    assert state.read("secret") == b"parent" and state.read("salts/x.salt") == b"child"
    assert state.where("secret") == f"s3://{BUCKET}/{prefix}/state/secret"
