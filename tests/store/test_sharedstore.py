"""A host writing a shared lake on object storage (mallard/_store/sharedstore.py), on a real S3 server
(SeaweedFS on 127.0.0.1): ingestion through the spool and the commit log answers as a local lake of the
same events; compaction, retention, erasure and the vacuum go through the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import mallard
from mallard import Mallard
from mallard._store.loglake import partition_of
from mallard._store.objectlog import ObjectLog
from mallard._store.sharedstore import SharedStore

from ..lake_answers import answers, assert_same
from ..s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server

pytestmark = pytest.mark.slow  # a real S3 server
SITE = "shop.example"
UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.4 Mobile/15E148 Safari/604.1")
REFERRERS = (None, "https://www.google.com/", "https://t.co/x")


def visits(end: datetime, n: int = 400) -> list[dict[str, Any]]:
    """track() arguments of ``n`` events over the three days before ``end`` (aware UTC)."""
    calls = []
    for i in range(n):
        when = end - timedelta(minutes=7 * i + (i % 5))
        page = ("/", "/pricing", "/docs", "/signup")[i % 4]
        name = "Signup" if page == "/signup" and i % 3 == 0 else "pageview"
        calls.append({"name": name, "site": SITE, "url": f"https://{SITE}{page}?utm_source=news" if i % 9 == 0
                      else f"https://{SITE}{page}", "ip": f"10.1.{i % 23}.{i % 7}", "user_agent": UA[i % 2],
                      "referrer": REFERRERS[i % 3], "timestamp": when,
                      "props": {"plan": "pro"} if name == "Signup" else None})
    return calls


def track_all(m: Mallard, calls: list[dict[str, Any]]) -> None:
    for call in calls:
        kwargs = dict(call)
        assert m.track(kwargs.pop("name"), **kwargs).accepted


def client(s3_server: S3Server) -> Any:
    return boto3.client("s3", endpoint_url=s3_server.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION)


@pytest.fixture
def url() -> str:
    return f"s3://{BUCKET}/shared-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Mallard]:
    """A Mallard on a local lake, its salts made (the hosts copy its state/ for the same visitor ids)."""
    m = Mallard(data_dir=tmp_path / "local", compact_after_files=0)
    m.start()
    m.goals.add(SITE, event_name="Signup")
    try:
        yield m
    finally:
        m.close()


def host(tmp_path: Path, name: str, url: str, s3_server: S3Server, local: Mallard | None = None,
         **options: Any) -> Mallard:
    """A host of the shared lake with its own data_dir; with ``local``, the goals of ``local`` in the
    shared state (in the bucket) when no host added them yet."""
    m = Mallard(data_dir=tmp_path / name, lake_url=url, compact_after_files=0, **s3_server.options(),
                **options)
    if local is not None and not m.goals.list(SITE):
        for goal in local.goals.list(SITE):
            m.goals.add(SITE, event_name=goal.event_name)
    return m


def test_a_host_answers_as_a_local_lake_of_the_same_events(tmp_path: Path, s3_server: S3Server, url: str,
                                                           local: Mallard) -> None:
    end = datetime.now(UTC) - timedelta(minutes=2)
    calls = visits(end)
    shared = host(tmp_path, "h1", url, s3_server, local)
    assert isinstance(shared.store, SharedStore)
    try:
        for m in (local, shared):
            for part in (calls[0::2], calls[1::2]):  # two flushes: two files per partition
                track_all(m, part)
                assert m.flush() == len(part)
        first, last = (end - timedelta(days=3)).date(), end.date()
        assert_same(answers(shared.queries, SITE, first, last), answers(local.queries, SITE, first, last))
        with mallard.open(url, **s3_server.options()) as q:  # a notebook: the log's snapshot, the goals
            assert_same(answers(q, SITE, first, last), answers(local.queries, SITE, first, last))
        # stored sessions and rollups: built by the host, in its own data_dir, from the shared events
        assert shared.build_sessions() == local.build_sessions() > 0
        assert list((tmp_path / "h1" / "sessions").rglob("*.parquet"))
        assert_same(answers(shared.queries, SITE, first, last), answers(local.queries, SITE, first, last))
        # compaction: one commit adds the merged file and removes its sources
        assert shared.compact() == local.compact() > 0
        assert_same(answers(shared.queries, SITE, first, last), answers(local.queries, SITE, first, last))
        snap = ObjectLog(client(s3_server), BUCKET, url.split("/", 3)[3]).snapshot()
        days = [partition_of(p) for p in snap.files]
        assert len(days) == len(set(days))  # one file per partition after it
        assert len(snap.removed) == 2 * len(days)
        # the same layout and schema as a local lake
        names = {p.rsplit("/", 1)[0] for p in snap.files}
        local_names = {str(p.parent.relative_to(local.store.events_dir))
                       for p in local.store.events_dir.rglob("*.parquet")}
        assert {n.removeprefix("events/") for n in names} == local_names
    finally:
        shared.close()


def test_compaction_retention_erasure_and_vacuum_go_through_the_log(
        tmp_path: Path, s3_server: S3Server, url: str, local: Mallard) -> None:
    end = datetime.now(UTC) - timedelta(minutes=2)
    calls = visits(end, 300)
    a = host(tmp_path, "a", url, s3_server, local)
    b = host(tmp_path, "b", url, s3_server, local)
    try:
        track_all(a, calls[0::2])
        track_all(b, calls[1::2])
        a.flush()
        b.flush()
        track_all(local, calls)
        local.flush()
        day = end.date()
        # an erasure on b holds against a's buffered events of the range (received before it)
        track_all(a, [dict(c, timestamp=end - timedelta(minutes=1)) for c in calls[:10]])
        erased = b.erase(SITE, day, day)
        assert erased.parquet_partitions_deleted == 1
        assert a.flush() == 10
        local.erase(SITE, day, day)
        first = (end - timedelta(days=3)).date()
        for m in (a, b):
            assert_same(answers(m.queries, SITE, first, day), answers(local.queries, SITE, first, day))
            assert m.queries.main(SITE, start_date=day, end_date=day).to_dict()["total_pageviews"] == 0
        # retention through the log, on another host than the one that wrote
        removed = b.store.apply_retention(1, day + timedelta(days=1))  # keeps tomorrow, today only
        assert removed >= 1
        assert a.store.lake.dates(SITE) == b.store.lake.dates(SITE) == []  # today was erased
        # vacuum: nothing within its grace period; past it, every removed object goes
        store = a.store
        assert isinstance(store, SharedStore)
        assert store.vacuum(force=True) == 0
        live = set(store.shared.snapshot(fresh=True).files)
        store.log._clock = lambda: datetime.now(UTC).timestamp() + 3600  # an hour later
        assert store.vacuum(force=True) > 0
        keys = {o["Key"].split("/", 1)[1] for o in client(s3_server).list_objects_v2(
            Bucket=BUCKET, Prefix=url.split("/", 3)[3] + "/events/").get("Contents", [])}
        assert keys == live
    finally:
        a.close()
        b.close()


def test_a_host_starts_and_accepts_events_while_the_store_is_unreachable(tmp_path: Path) -> None:
    """Nothing asks the store when a host is built or started: events go to the spool at once."""
    m = Mallard(data_dir=tmp_path / "h", lake_url="s3://nowhere/lake", s3_endpoint_url="http://127.0.0.1:9",
                s3_access_key_id="AKIDEXAMPLE42", s3_secret_access_key="not-a-real-secret-42",
                flush_interval_secs=3600)
    try:
        assert m.track("pageview", site=SITE, url=f"https://{SITE}/", ip="10.0.0.1",
                       user_agent=UA[0]).accepted
        m.flush()  # deferred: the segment waits in the spool for recovery
        store = m.store
        assert isinstance(store, SharedStore)
        warnings = " ".join(m.warnings())
        assert "cannot be written" in warnings and "127.0.0.1:9" in warnings
        assert "not-a-real-secret-42" not in warnings and "AKIDEXAMPLE42" not in warnings
        assert [p for p in (tmp_path / "h" / "spool").iterdir() if not p.name.startswith(".")]
    finally:
        assert m.close() is True


def test_a_copied_lake_is_adopted_by_the_first_writer(tmp_path: Path, s3_server: S3Server, url: str,
                                                      local: Mallard) -> None:
    end = datetime.now(UTC) - timedelta(minutes=2)
    track_all(local, visits(end, 60))
    local.flush()
    copied = s3_server.upload(local.store.data_dir, url.split("/", 3)[3])
    shared = host(tmp_path, "h", copied, s3_server, local)
    try:
        day = end.date()
        first = day - timedelta(days=3)
        assert_same(answers(shared.queries, SITE, first, day), answers(local.queries, SITE, first, day))
        track_all(shared, visits(end, 5))
        shared.flush()
        snap = ObjectLog(client(s3_server), BUCKET, url.split("/", 3)[3]).snapshot()
        assert snap.version == 1  # the adoption, then the flush
        assert len(snap.files) == len(list(local.store.events_dir.rglob("*.parquet"))) + len(
            {(c["timestamp"].date()) for c in visits(end, 5)})
    finally:
        shared.close()



def test_past_s3_spool_max_bytes_events_are_refused_as_on_a_full_disk(tmp_path: Path) -> None:
    m = Mallard(data_dir=tmp_path / "h", lake_url="s3://nowhere/lake", s3_endpoint_url="http://127.0.0.1:9",
                s3_spool_max_bytes=1 << 20, flush_interval_secs=3600, max_buffered_events=100_000)
    try:
        long = "x" * 1800
        sent = 0
        while sent < 800:  # about 1.5 MiB in the spool, deferred by the flush
            assert m.track("pageview", site=SITE, url=f"https://{SITE}/{long}/{sent}", ip="10.0.0.1",
                           user_agent=UA[0]).accepted
            sent += 1
        m.flush()
        m.store.retry_spool()  # what the maintenance thread does every 2 s: counts what waits
        assert m.store.waiting_bytes() > 1 << 20
        refused = m.track("pageview", site=SITE, url=f"https://{SITE}/late", ip="10.0.0.1", user_agent=UA[0])
        assert not refused.accepted and refused.reason == "storage_unavailable"
        assert any("s3_spool_max_bytes" in p for p in m.problems())
    finally:
        m.close()
