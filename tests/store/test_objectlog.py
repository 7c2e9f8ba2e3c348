"""The commit log of a lake on object storage (mallard/_store/objectlog.py), on a real S3 server
(SeaweedFS on 127.0.0.1): hosts are ObjectLog instances, and in the last tests separate processes,
sharing one prefix of the bucket."""

from __future__ import annotations

import io
import multiprocessing as mp
import time
import uuid
from collections import Counter
from datetime import date
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mallard._store import objectlog
from mallard._store.objectlog import Commit, Conflict, Entry, ObjectLog, Tombstone

from ..s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server

pytestmark = pytest.mark.slow
DAY = date(2025, 6, 1)


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION)


def _log(s3_server: S3Server, prefix: str, writer: str = "", **kwargs: Any) -> ObjectLog:
    return ObjectLog(_client(s3_server.endpoint), BUCKET, prefix, writer=writer, **kwargs)


def _entry(name: str, rows: int = 1) -> Entry:
    return Entry(f"events/site_id=a/date={DAY}/{name}.parquet", rows, 100)


@pytest.fixture
def prefix() -> str:
    return f"objectlog-{uuid.uuid4().hex[:10]}"


def test_hosts_see_each_others_commits_in_order(s3_server: S3Server, prefix: str) -> None:
    a, b = _log(s3_server, prefix, "a"), _log(s3_server, prefix, "b")
    assert a.snapshot().version == -1 and a.snapshot().files == {}
    assert a.commit(add=[_entry("one")]) == 0
    assert b.snapshot().files == {_entry("one").path: _entry("one")}
    assert b.commit(add=[_entry("two")]) == 1
    snap = a.snapshot()
    assert snap.version == 1 and sorted(snap.files) == sorted([_entry("one").path, _entry("two").path])


def test_a_lost_race_is_retried_after_the_winner(s3_server: S3Server, prefix: str) -> None:
    """b reads what it missed (a's commit 1) before its first try; a commits version 2 while b checks,
    so b's try of version 2 is refused (If-None-Match): b reads commit 2, shows it to ``check`` and
    lands at version 3."""
    a, b = _log(s3_server, prefix, "a"), _log(s3_server, prefix, "b")
    a.commit(add=[_entry("base")])
    b.snapshot()
    a.commit(add=[_entry("a1")])
    seen: list[list[Commit]] = []

    def check(missed: list[Commit]) -> None:
        seen.append(missed)
        if len(seen) == 1:
            a.commit(add=[_entry("a2")])

    assert b.commit(add=[_entry("b1")], check=check) == 3
    assert b.lost_races == 1
    assert [[c.version for c in missed] for missed in seen] == [[1], [2]]
    assert seen[1][0].add == (_entry("a2"),) and seen[1][0].writer == "a"
    assert sorted(a.snapshot().files) == sorted(
        e.path for e in (_entry("base"), _entry("a1"), _entry("a2"), _entry("b1")))


def test_two_compactions_of_the_same_files_one_wins(s3_server: S3Server, prefix: str) -> None:
    a, b = _log(s3_server, prefix, "a"), _log(s3_server, prefix, "b")
    sources = [_entry("s1"), _entry("s2")]
    a.commit(add=sources)
    b.snapshot()
    a.commit(add=[_entry("merged-a", 2)], remove=[e.path for e in sources])
    with pytest.raises(Conflict, match="no longer live"):
        b.commit(add=[_entry("merged-b", 2)], remove=[e.path for e in sources])
    snap = b.snapshot()
    assert snap.version == 1 and list(snap.files) == [_entry("merged-a").path]
    assert set(snap.removed) == {e.path for e in sources}


def test_check_sees_an_erasure_that_won_the_race(s3_server: S3Server, prefix: str) -> None:
    """An append of events of an erased day, received before the erasure, must not land after it:
    the erasure commit is among those ``check`` is shown, and ``check`` gives up."""
    host, eraser = _log(s3_server, prefix, "host"), _log(s3_server, prefix, "eraser")
    host.commit(add=[_entry("early")])
    eraser.commit(remove=[_entry("early").path], erase=[Tombstone("a", DAY, DAY, 1.0)])

    class Erased(Exception):
        pass

    def check(missed: list[Commit]) -> None:
        if any(t.covers("a", DAY) for c in missed for t in c.erase):
            raise Erased

    with pytest.raises(Erased):
        host.commit(add=[_entry("late")], check=check)
    snap = eraser.snapshot()
    assert snap.version == 1 and snap.files == {}
    assert snap.tombstones == [Tombstone("a", DAY, DAY, 1.0)]


def test_a_new_host_starts_from_the_newest_checkpoint(s3_server: S3Server, prefix: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objectlog, "CHECKPOINT_EVERY", 4)
    a = _log(s3_server, prefix, "a")
    for i in range(10):
        a.commit(add=[_entry(f"f{i}")], remove=[_entry(f"f{i - 1}").path] if i % 3 == 1 else [])
    client = _client(s3_server.endpoint)
    points = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/_checkpoint/")
              ["Contents"]]
    assert [p.rsplit("/", 1)[1] for p in points] == [f"{v:020d}.json" for v in (4, 8)]
    # the log before the newest checkpoint is not needed: delete it, a new host still reads everything
    for v in range(9):
        client.delete_object(Bucket=BUCKET, Key=f"{prefix}/_log/{v:020d}.json")
    fresh = _log(s3_server, prefix, "b").snapshot()
    assert fresh.version == 9 and fresh.files == a.snapshot().files
    assert fresh.removed.keys() == a.snapshot().removed.keys()


def test_vacuum_deletes_what_no_recent_snapshot_holds(s3_server: S3Server, prefix: str) -> None:
    now = [1_000.0]
    log = _log(s3_server, prefix, "a", clock=lambda: now[0])
    client = _client(s3_server.endpoint)
    for name in ("old", "merged", "live", "orphan"):
        assert log.put_new(_entry(name).path, b"x")
    log.commit(add=[_entry("old"), _entry("live")])
    log.commit(add=[_entry("merged")], remove=[_entry("old").path])  # removed at t=1000
    # a second removal, long after: its file is kept while a reader may hold the older snapshot
    now[0] = 10_000.0
    assert log.put_new(_entry("young").path, b"x")
    log.commit(add=[_entry("young")])
    log.commit(remove=[_entry("young").path])  # removed at t=10000
    # the store's clock says the objects were written just now (far after t=10000): orphans are young
    gone = log.vacuum("events/", grace_secs=60.0)
    assert gone == [_entry("old").path]
    keys = {o["Key"].removeprefix(f"{prefix}/")
            for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/events/")["Contents"]}
    assert keys == {_entry(n).path for n in ("merged", "live", "orphan", "young")}
    now[0] = 1e12  # much later: the orphan of a writer that died and the removed file go too
    assert sorted(log.vacuum("events/", grace_secs=60.0)) == sorted([_entry("orphan").path,
                                                                     _entry("young").path])


def test_put_new_refuses_an_existing_key_and_raises_other_errors(s3_server: S3Server, prefix: str) -> None:
    log = _log(s3_server, prefix)
    assert log.put_new("x", b"1") and not log.put_new("x", b"2")
    body = _client(s3_server.endpoint).get_object(Bucket=BUCKET, Key=f"{prefix}/x")["Body"].read()
    assert body == b"1"
    refused = boto3.client("s3", endpoint_url=s3_server.endpoint, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key="not-the-secret", region_name=REGION)
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        ObjectLog(refused, BUCKET, prefix).put_new("y", b"1")


# -- several processes ------------------------------------------------------------------------------------
def _parquet(tags: list[str]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"tag": tags}), sink)
    return sink.getvalue()


def _writer(endpoint: str, prefix: str, writer: int, commits: int, acks: Any) -> None:
    log = ObjectLog(_client(endpoint), BUCKET, prefix, writer=f"w{writer}")
    for seq in range(commits):
        tags = [f"{writer}-{seq}-{i}" for i in range(5)]
        path = f"events/site_id=a/date={DAY}/w{writer}-{seq}-{uuid.uuid4().hex[:8]}.parquet"
        body = _parquet(tags)
        assert log.put_new(path, body)
        log.commit(add=[Entry(path, len(tags), len(body))])
        acks.put(f"{writer}-{seq}")


def _compactor(endpoint: str, prefix: str, done: Any, out: Any) -> None:
    """Merge every live file into one, again and again, until the writers are done (and at least
    once after that)."""
    client = _client(endpoint)
    log = ObjectLog(client, BUCKET, prefix, writer="compactor")
    merged = conflicts = 0
    last = False
    while not last:
        last = done.is_set()
        sources = sorted(log.snapshot().files)
        if len(sources) < 2:
            time.sleep(0.05)
            continue
        tags: list[str] = []
        for path in sources:
            data = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{path}")["Body"].read()
            tags += pq.read_table(io.BytesIO(data)).column("tag").to_pylist()
        path = f"events/site_id=a/date={DAY}/merged-{uuid.uuid4().hex[:8]}.parquet"
        body = _parquet(tags)
        log.put_new(path, body)
        try:
            log.commit(add=[Entry(path, len(tags), len(body))], remove=sources)
            merged += 1
        except Conflict:
            conflicts += 1
    out.put((merged, conflicts))


def test_concurrent_writer_processes_and_compactions_lose_and_repeat_nothing(
        s3_server: S3Server, prefix: str) -> None:
    """Three writer processes append while two compactor processes merge whatever is live: the final
    snapshot holds every acknowledged row exactly once, and every version 0..n exists once."""
    ctx = mp.get_context("spawn")
    acks, out, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    writers = [ctx.Process(target=_writer, args=(s3_server.endpoint, prefix, w, 12, acks)) for w in range(3)]
    compactors = [ctx.Process(target=_compactor, args=(s3_server.endpoint, prefix, done, out))
                  for _ in range(2)]
    for p in writers + compactors:
        p.start()
    for p in writers:
        p.join(timeout=240)
        assert p.exitcode == 0
    done.set()
    for p in compactors:
        p.join(timeout=240)
        assert p.exitcode == 0
    acked = {acks.get(timeout=5) for _ in range(36)}
    results = [out.get(timeout=5) for _ in compactors]
    client = _client(s3_server.endpoint)
    log = ObjectLog(client, BUCKET, prefix)
    snap = log.snapshot()
    counts: Counter[str] = Counter()
    for entry in snap.files.values():
        data = client.get_object(Bucket=BUCKET, Key=f"{prefix}/{entry.path}")["Body"].read()
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == entry.rows
        counts.update(table.column("tag").to_pylist())
    assert len(acked) == 36
    assert set(counts) == {f"{a}-{i}" for a in acked for i in range(5)}
    assert set(counts.values()) == {1}
    assert snap.version == 36 + sum(m for m, _ in results) - 1
    assert sum(m for m, _ in results) >= 1  # 36 files were live at some point: one was merged
