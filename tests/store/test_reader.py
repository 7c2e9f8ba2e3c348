"""The read path: read-only stores, queries that see each event exactly once while flushing, nested
readers and a waiting writer, no progress bar."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

import mallard
from mallard import EventBuffer, StorageError, Store

from ..concurrency import Progress, offer_while_running
from ..factories import BASE_TIME, make_event, make_events
from .conftest import (
    DAY,
    count,
    store_events,
)


# -- read-only stores -----------------------------------------------------------------------------
def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(StorageError):
        Store(data, read_only=True)  # no such directory
    writable = Store(data)
    store_events(writable, make_events(3))
    writable.close()
    ro = Store(data, read_only=True)
    try:
        for attempt in (lambda: ro.write_batch(make_events(1)), ro.journal,
                        lambda: ro.compact(min_files=2, target_bytes=10**9),
                        lambda: ro.erase("example.com", DAY, DAY), lambda: ro.apply_retention(1, DAY)):
            with pytest.raises(StorageError, match="read-only"):
                attempt()
        assert ro.recover() == 0
        assert count(ro) == 3
    finally:
        ro.close()
    with mallard.open(data) as q:
        assert q.sql("SELECT count(*) AS n FROM events").to_pylist() == [{"n": 3}]
        assert q.query("example.com", metrics=["pageviews"], start_date="2024-03-01",
                       end_date="2024-03-01").rows == [{"pageviews": 3}]
        with pytest.raises(StorageError):
            q._store.write_batch(make_events(1))
    assert sorted(p.name for p in (data / "spool").iterdir()) == []


# -- the view: flusher + readers through the real Store ------------------------------------------
def test_queries_see_each_event_exactly_once_while_flushing(store: Store) -> None:
    """Readers counting through the Store's view while a flusher publishes and a compactor merges see
    each event once: never fewer than were acknowledged before, never more than were offered."""
    buf = EventBuffer(store.write_batch, journal=store.journal(), flush_at=25, flush_interval=0.01)
    buf.start()
    progress = Progress()
    stop = threading.Event()
    problems: list[str] = []
    compactions: list[int] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                before = progress.acked
                with store.reading("example.com", None, None, pending=buf.marked_snapshot,
                                   view_lock=buf.view_lock) as r:
                    src, params = r.source()
                    n, distinct = r.execute(f"SELECT count(*), count(DISTINCT pathname) FROM ({src})",
                                            params).to_pylist()[0].values()
                after = progress.offering
                if n != distinct:
                    problems.append(f"{n - distinct} events counted twice")
                if not before <= n <= after:
                    problems.append(f"count {n} outside [{before}, {after}]")
                progress.reads += 1
        finally:
            store.close()  # this thread's connection

    def compactor() -> None:
        try:
            while not stop.wait(0.1):
                compactions.append(store.compact(min_files=2, target_bytes=10**9))
        finally:
            store.close()

    def offer(i: int) -> None:
        assert buf.offer(make_event(pathname=f"/p/{i}", timestamp=BASE_TIME + timedelta(microseconds=i)))

    threads = [threading.Thread(target=reader) for _ in range(2)] + [threading.Thread(target=compactor)]
    offer_while_running(threads, stop, lambda: buf.close(30), offer, progress,
                        lambda: progress.reads > 20 and sum(compactions) >= 2, problems)
    assert count(store) == progress.acked
    assert list(store.spool_dir.iterdir()) == []


def test_nested_readers_do_not_deadlock_with_a_waiting_writer(store: Store) -> None:
    """A thread that reads again while it reads passes the compactor's turnstile."""
    store_events(store, make_events(3))
    writer_in = threading.Event()

    def writer() -> None:
        with store.lake.locked(exclusive=True):
            writer_in.set()

    def turnstile_taken() -> bool:
        fd = os.open(store.state_dir / "lake.lock.gate", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    with store.reading(None, None, None):
        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 10
        while not turnstile_taken():  # the writer holds the turnstile and waits for us
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not writer_in.is_set()
        done = threading.Event()

        def nested() -> None:
            with store.lake.locked(exclusive=False):
                done.set()

        nested()  # same thread: must not block
        assert done.is_set()
        # another thread queues behind the writer instead of starving it
        late = threading.Thread(target=lambda: count(store))
        late.start()
        time.sleep(0.1)
        assert late.is_alive()
    t.join(10)
    late.join(10)
    assert writer_in.is_set() and not late.is_alive()


@pytest.mark.slow
def test_queries_print_no_progress_bar(tmp_path: Path) -> None:
    """DuckDB draws a progress bar on stdout for a query that runs over 2 s; a library inside a host app
    must not write to its stdout, so the store's connections have it off."""
    code = (
        "import sys, time; from mallard._store import Store; s = Store(sys.argv[1]); "
        "c = s.connection(); c.create_function('nap', lambda i: time.sleep(0.001) or i, ['BIGINT'], "
        "'BIGINT'); c.execute('SELECT sum(nap(i)) FROM range(2600) t(i)').fetchall()"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout == ""
