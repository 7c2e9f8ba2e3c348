"""Events into a shared lake (mallard/_store/objectbatch.py), on a real S3 server (SeaweedFS): an
erasure committed meanwhile keeps its files out, and a commit whose answer is lost is stored once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mallard
from mallard._store.objectbatch import commit, upload
from mallard._store.objectlog import ObjectLog, Tombstone
from mallard._store.sharedstore import SharedStore

from ..factories import make_event
from ..s3server import BUCKET, S3Server
from .test_sharedstore import SITE, client, host

pytestmark = pytest.mark.slow  # a real S3 server
NOW = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)


def _events(n: int, days: int = 2) -> list[Any]:
    return [make_event(site_id=SITE, timestamp=NOW - timedelta(days=i % days, seconds=i), pathname=f"/{i}")
            for i in range(n)]


def test_a_commit_leaves_out_the_files_an_erasure_committed_meanwhile_covers(
        tmp_path: Path, s3_server: S3Server) -> None:
    url = f"s3://{BUCKET}/batch-{uuid.uuid4().hex[:10]}"
    m = host(tmp_path, "a", url, s3_server)
    try:
        store = m.store
        assert isinstance(store, SharedStore)
        entries = upload(store._client, store.shared, _events(20))
        assert len(entries) == 2
        other = ObjectLog(client(s3_server), BUCKET, url.split("/", 3)[3], writer="eraser")
        yesterday = (NOW - timedelta(days=1)).date()
        at = time.time()
        other.commit(erase=[Tombstone(SITE, yesterday, yesterday, at)])
        done = commit(store.shared, entries, known=set())
        assert [e.path for e in done] == [e.path for e in entries if f"date={NOW.date()}" in e.path]
        assert store.lake.dates(SITE) == [NOW.date()]
        # an erasure the events were already filtered by is no reason to leave anything out
        again = upload(store._client, store.shared, _events(4))
        assert commit(store.shared, again, known={(SITE, yesterday, yesterday, at)}) == again
    finally:
        m.close()


@pytest.mark.parametrize("answer_lost", [True, False], ids=["committed, answer lost", "not committed"])
def test_a_commit_whose_outcome_is_unknown_is_stored_once(tmp_path: Path, s3_server: S3Server,
                                                          answer_lost: bool) -> None:
    """The batch waits in the spool with its commit record; recovery asks the log whether the objects
    were committed: if so the segment goes, else it is replayed. Never twice, never lost."""
    url = f"s3://{BUCKET}/batch-{uuid.uuid4().hex[:10]}"
    m = host(tmp_path, "a", url, s3_server)
    try:
        store = m.store
        assert isinstance(store, SharedStore)
        spool = store.journal()
        events = _events(6)
        for e in events:
            spool.append(e)
        token = spool.rotate()
        real = store.shared.commit

        def failing(*args: Any, **kwargs: Any) -> int:
            if answer_lost:
                real(*args, **kwargs)
            raise ConnectionError("the store's answer never came")

        store.shared.commit = failing  # type: ignore[method-assign]
        store.write_batch(events)()
        store.shared.commit = real  # type: ignore[method-assign]
        spool.release([token])  # as the buffer does after a publish: the deferred segment stays
        assert "cannot be written" in " ".join(store.warnings())
        waiting = [p.name for p in store.spool_dir.iterdir()]
        assert any(n.endswith(".deferred.commit") for n in waiting)
        assert store.recover() == (0 if answer_lost else len(events))
        assert store.warnings() == []
        with mallard.open(url, **s3_server.options()) as q:
            rows = q.sql("SELECT pathname FROM events ORDER BY pathname").to_pylist()
        assert sorted(r["pathname"] for r in rows) == sorted(e.pathname for e in events)
        spool.close()
        assert [p for p in store.spool_dir.iterdir() if not p.name.startswith(".")] == []
    finally:
        m.close()
