"""Compaction: small files merged with identical content, readers never see a different count, one
compactor per partition, an interrupted compaction completed by recovery."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from mallard import Store
from mallard._events import COLUMN_NAMES
from mallard._store.lake import Lake

from ..factories import BASE_TIME, full_event, make_event, make_events
from .conftest import (
    DAY,
    ROOT,
    count,
    partition_dir,
    read_all,
    store_events,
    visible_files,
)


# -- compaction -----------------------------------------------------------------------------------
def test_compaction_merges_small_files_with_identical_content(store: Store) -> None:
    for i in range(12):
        store_events(store, make_events(5, prefix=f"/batch{i}/", start=BASE_TIME + timedelta(seconds=i)))
    store_events(store, [full_event(site_id="example.com", timestamp=BASE_TIME + timedelta(minutes=5))])
    store_events(store, [make_event(site_id="other.example")])  # a partition with one file
    before = read_all(store)
    part = partition_dir(store, "example.com", DAY)
    assert len(visible_files(part)) == 13
    assert store.compact(min_files=2, target_bytes=10**9) == 1
    merged = visible_files(part)
    assert len(merged) == 1
    assert read_all(store) == before
    def key(row: dict[str, Any]) -> bytes:
        return orjson.dumps(row, default=str)

    assert Counter(map(key, before)) == Counter(
        map(key, pq.read_table(merged[0]).to_pylist() + read_all(store, "other.example")))
    meta = pq.ParquetFile(merged[0]).metadata
    assert {meta.row_group(0).column(c).compression for c in range(meta.num_columns)} == {"ZSTD"}
    assert pq.read_schema(merged[0]).names == list(COLUMN_NAMES)
    assert [p.name for p in part.iterdir() if p.name.startswith(".")] == []
    assert list((store.state_dir / "compaction").glob("*")) == []
    assert store.compact(min_files=2, target_bytes=10**9) == 0  # nothing left to do


def test_compaction_leaves_big_files_and_quiet_partitions_alone(store: Store) -> None:
    store_events(store, make_events(20_000, prefix="/big/", visitor_id="x" * 64))
    part = partition_dir(store, "example.com", DAY)
    (big,) = visible_files(part)
    big_stat = big.stat()
    for i in range(3):
        store_events(store, [make_event(pathname=f"/small/{i}")])
    store_events(store, [make_event(site_id="quiet.example", pathname=f"/q/{i}") for i in range(2)])
    store_events(store, [make_event(site_id="quiet.example", pathname="/q/again")])
    target = big_stat.st_size  # the big file is not smaller than the target
    assert store.compact(min_files=4, target_bytes=target) == 0  # only 3 small files
    assert store.compact(min_files=3, target_bytes=target, site_id="example.com", day=DAY) == 1
    files = visible_files(part)
    assert len(files) == 2 and big in files
    assert (big.stat().st_ino, big.stat().st_mtime_ns) == (big_stat.st_ino, big_stat.st_mtime_ns)
    assert len(visible_files(partition_dir(store, "quiet.example", DAY))) == 2  # not asked for
    assert count(store) == 20_006


def _reads_grow(seen: list[int], by: int = 3, timeout: float = 60.0) -> bool:
    """Poll until the readers appended ``by`` more counts, within a generous hang guard."""
    target = len(seen) + by
    deadline = time.monotonic() + timeout
    while len(seen) < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _compact_beside_readers(store: Store) -> list[int]:
    compacted: list[int] = []

    def compact() -> None:
        try:
            compacted.append(store.compact(min_files=2, target_bytes=10**9))
        finally:
            store.close()  # this thread's connection

    compactor = threading.Thread(target=compact)
    compactor.start()
    compactor.join(120)
    return compacted


def _read_counts_while(store: Store, stop: threading.Event, seen: list[int]) -> None:
    try:
        while not stop.is_set():
            seen.append(count(store))
    finally:
        store.close()  # this thread's connection


def test_readers_never_see_a_different_count_during_compaction(store: Store) -> None:
    total = 0
    for round_ in range(4):
        for i in range(15):
            store_events(store, make_events(3, prefix=f"/r{round_}/{i}/",
                                            start=BASE_TIME + timedelta(seconds=i)))
            total += 3
        stop = threading.Event()
        seen: list[int] = []
        readers = [threading.Thread(target=_read_counts_while, args=(store, stop, seen))
                   for _ in range(3)]
        for t in readers:
            t.start()
        try:
            assert _reads_grow(seen)  # the readers are reading
            # flock prefers nobody: overlapping readers must not starve the compactor (were it
            # starved, this would never return: compact in a thread, with a generous hang guard)
            assert _compact_beside_readers(store) == [1]
            assert _reads_grow(seen)  # and they go on reading the merged file
        finally:
            stop.set()
            for t in readers:
                t.join(10)
        assert seen and set(seen) == {total}, Counter(seen)
        assert len(visible_files(partition_dir(store, "example.com", DAY))) == 1


def test_threads_compacting_at_once_compact_each_partition_once(store: Store) -> None:
    for i in range(10):
        store_events(store, make_events(2, prefix=f"/{i}/"))
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(store.compact(min_files=2, target_bytes=10**9))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sum(results) == 1 and count(store) == 20
    assert len(visible_files(store.events_dir)) == 1


def _read_line(stream: Any, into: list[str]) -> None:
    into.append(stream.readline())


def test_readers_never_see_a_different_count_while_another_process_compacts(store: Store) -> None:
    child = subprocess.Popen([sys.executable, "-m", "tests.procs.compactor", str(store.data_dir),
                              str(10**9)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        total = 0
        for round_ in range(4):
            for i in range(12):
                site = "a:b" if i % 2 else "example.com"
                store_events(store, make_events(4, prefix=f"/r{round_}/{i}/", site_id=site))
                total += 4
            seen: list[int] = []
            child.stdin.write("go\n")
            child.stdin.flush()
            answer: list[str] = []
            reply = threading.Thread(target=_read_line, args=(child.stdout, answer))
            reply.start()
            while reply.is_alive():
                seen.append(count(store))
            reply.join()
            seen.append(count(store))
            assert answer[0].strip() == "done 2", answer
            assert set(seen) == {total}, Counter(seen)
            assert len(visible_files(store.events_dir)) == 2
        child.stdin.close()
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for stream in (child.stdout, child.stderr, child.stdin):
            if stream is not None and not stream.closed:
                stream.close()


class Crash(Exception):
    """Stands for the compacting process dying at this point."""


@pytest.mark.parametrize("state", ["before-swap", "sources-partly-deleted", "renamed", "tmp-lost"])
def test_recover_completes_an_interrupted_compaction(store: Store, state: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        store_events(store, make_events(3, prefix=f"/{i}/", start=BASE_TIME + timedelta(seconds=i)))
    before = read_all(store)
    part = partition_dir(store, "example.com", DAY)
    sources = visible_files(part)

    def crash(*args: object) -> None:
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(Lake, "_finish_swap", staticmethod(crash))
        with pytest.raises(Crash):
            store.compact(min_files=2, target_bytes=10**9)
    (intent,) = (store.state_dir / "compaction").glob("*.json")
    spec = orjson.loads(intent.read_bytes())
    tmp, final = Path(spec["tmp"]), Path(spec["final"])
    assert tmp.exists() and not final.exists()
    assert sorted(spec["sources"]) == [str(p) for p in sources]
    assert read_all(store) == before  # the merged temporary is invisible
    if state == "sources-partly-deleted":
        for src in sources[:2]:
            src.unlink()
    elif state == "renamed":
        for src in sources:
            src.unlink()
        tmp.rename(final)
    elif state == "tmp-lost":
        tmp.unlink()

    store.recover()
    assert not intent.exists() and not tmp.exists()
    assert read_all(store) == before
    files = visible_files(part)
    if state == "tmp-lost":
        assert files == sources  # nothing to swap in: the sources stay
    else:
        assert files == [final]
