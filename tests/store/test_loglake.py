"""The events of a shared lake as its commit log says they are (mallard/_store/loglake.py), on a real S3
server (SeaweedFS): readers take the log's snapshot, never a LIST, and keep it for a whole reading."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

import mallard
from mallard._store.loglake import LogLake, partition_of
from mallard._store.objectstore import LISTING_SECS

from ..s3server import BUCKET, S3Server
from .test_sharedstore import SITE, host, track_all, visits

pytestmark = pytest.mark.slow  # a real S3 server


def _count(q: mallard.Queries) -> int:
    n = q.sql("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
    assert isinstance(n, int)
    return n


def test_a_reading_keeps_its_snapshot_while_another_host_compacts(tmp_path: Path,
                                                                  s3_server: S3Server) -> None:
    url = f"s3://{BUCKET}/loglake-{uuid.uuid4().hex[:10]}"
    calls = visits(datetime.now(UTC) - timedelta(minutes=2), 120)
    a, b = host(tmp_path, "a", url, s3_server), host(tmp_path, "b", url, s3_server)
    try:
        for part in (calls[0::2], calls[1::2]):
            track_all(a, part)
            a.flush()
        with mallard.open(url, **s3_server.options()) as q:
            store = q._store
            assert isinstance(store.lake, LogLake)
            with store.reading(SITE, None, None) as reader:
                before = reader.files
                assert b.compact() > 0  # another host: the merged files in, the sources out
                src, params = reader.source()
                n = reader.execute(f"SELECT count(*) FROM ({src})", params).column(0)[0].as_py()
                assert n == len(calls) and reader.files == before  # the reading's snapshot
                assert store.lake.files(SITE, None, None) == list(before)  # pinned for nested use too
            time.sleep(LISTING_SECS)  # another host's commit: seen once the snapshot is renewed
            after = store.lake.files(SITE, None, None)
            assert len(after) < len(before)
            # a LIST sees the merged files beside their sources (until the vacuum): the snapshot does not
            # (a partition of one file, e.g. the previous day's when the test runs around midnight, has
            # nothing to merge: its file is in both)
            listed = {"s3://" + i.path for i in s3_server.filesystem().get_file_info(pafs.FileSelector(
                f"{url[5:]}/events", recursive=True)) if i.type == pafs.FileType.File}
            assert listed == set(before) | set(after) and not set(after) <= set(before)
            assert _count(q) == len(calls)
    finally:
        a.close()
        b.close()


def test_an_object_no_commit_names_is_not_read(tmp_path: Path, s3_server: S3Server) -> None:
    """An upload of a writer that died before its commit is invisible (and left to the vacuum)."""
    url = f"s3://{BUCKET}/loglake-{uuid.uuid4().hex[:10]}"
    a = host(tmp_path, "a", url, s3_server)
    try:
        track_all(a, visits(datetime.now(UTC) - timedelta(minutes=2), 30))
        a.flush()
        with mallard.open(url, **s3_server.options()) as q:
            stored = _count(q)
            first = q._store.lake.files(SITE, None, None)[0]
        fs = s3_server.filesystem()
        fs.copy_file(first[5:], first[5:].rsplit("/", 1)[0] + "/0000000000000000-orphan.parquet")
        with mallard.open(url, **s3_server.options()) as q:
            assert _count(q) == stored == 30
            assert all(partition_of(a.store.lake.relative(f)) for f in q._store.lake.files(SITE, None, None))
    finally:
        a.close()
