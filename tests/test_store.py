"""Store: the Parquet lake on disk, its read path, compaction, recovery, retention and erasure."""

from __future__ import annotations

import fcntl
import itertools
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mallard
from mallard import EventBuffer, StorageError, Store
from mallard.events import COLUMN_NAMES, COLUMNS, Event
from mallard.store.lake import Lake, partitions
from mallard.store.spool import Spool, encode

from .concurrency import Progress, offer_until
from .factories import BASE_TIME, full_event, make_event, make_events

ROOT = Path(__file__).resolve().parents[1]
DAY = BASE_TIME.date()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    try:
        yield s
    finally:
        s.close()


def read_all(store: Store, site: str | None = None, first: date | None = None,
             last: date | None = None) -> list[dict[str, Any]]:
    with store.reading(site, first, last) as reader:
        src, params = reader.source()
        return reader.execute(f"{src} ORDER BY timestamp, pathname", params).to_pylist()


def count(store: Store, site: str | None = None) -> int:
    with store.reading(site, None, None) as reader:
        src, params = reader.source()
        n = reader.execute(f"SELECT count(*) AS n FROM ({src})", params).column(0)[0].as_py()
        assert isinstance(n, int)
        return n


def store_events(store: Store, events: Sequence[Event]) -> None:
    store.write_batch(events)()


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def visible_files(root: Path) -> list[Path]:
    return [p for p in parquet_files(root) if not p.name.startswith(".")]


def partition_dir(store: Store, site: str, day: date) -> Path:
    enc = site.replace(":", "%3A")
    return store.events_dir / f"site_id={enc}" / f"date={day.isoformat()}"


def as_row(event: Event) -> dict[str, Any]:
    return dict(event._asdict())


# -- round trip and layout ------------------------------------------------------------------------
def test_round_trip_of_every_column(store: Store) -> None:
    events = [
        full_event(),
        full_event(timestamp=datetime(2024, 2, 29, 0, 0, 0, 1), revenue_amount=Decimal("0.01"),
                   pathname="/ünïcödé/🦆"),
        make_event(site_id="shop.example:8443", timestamp=datetime(2024, 2, 29, 8, 30, 0, 123_456)),
        make_event(site_id="shop.example:8443", timestamp=datetime(2024, 3, 1, 0, 0),
                   revenue_amount=Decimal("-5.50"), revenue_currency="JPY"),
    ]
    publish = store.write_batch(events)
    assert count(store) == 0, "written but unpublished files must be invisible"
    publish()
    got = read_all(store)
    want = sorted((as_row(e) for e in events), key=lambda r: (r["timestamp"], r["pathname"]))
    assert got == want
    assert [type(r["revenue_amount"]) for r in got if r["revenue_amount"] is not None] == [Decimal] * 3
    # filtering by site and partition dates
    assert len(read_all(store, "shop.example:8443", date(2024, 3, 1), date(2024, 3, 1))) == 1
    assert read_all(store, "other.example") == []


def test_partition_layout_and_zstd_compression(store: Store) -> None:
    events = [make_event(site_id=site, timestamp=datetime(2024, 3, day, 10), pathname=f"/{site}/{day}")
              for site in ("a.example", "b.example") for day in (1, 2, 2)]
    store_events(store, events)
    files = visible_files(store.events_dir)
    rel = sorted(str(p.parent.relative_to(store.events_dir)) for p in files)
    assert rel == ["site_id=a.example/date=2024-03-01", "site_id=a.example/date=2024-03-02",
                   "site_id=b.example/date=2024-03-01", "site_id=b.example/date=2024-03-02"]
    for path in files:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_columns == len(COLUMNS)
        for rg in range(meta.num_row_groups):
            for col in range(meta.num_columns):
                assert meta.row_group(rg).column(col).compression == "ZSTD"
        table = pq.read_table(path)
        assert table.schema.names == list(COLUMN_NAMES)
        assert table.schema.field("timestamp").type == pa.timestamp("us")
        assert table.schema.field("revenue_amount").type == pa.decimal128(12, 2)
        site = path.parent.parent.name.removeprefix("site_id=")
        day = path.parent.name.removeprefix("date=")
        assert set(table.column("site_id").to_pylist()) == {site}
        assert {t.date().isoformat() for t in table.column("timestamp").to_pylist()} == {day}
    # Anyone can read the lake: pandas (see test_pandas_reads_the_lake_directory), polars, DuckDB.
    assert len(pd.read_parquet(store.events_dir, partitioning=None)) == len(events)
    assert len(pl.read_parquet(store.events_dir / "**" / "*.parquet")) == len(events)


@pytest.mark.xfail(strict=True, raises=pa.ArrowTypeError,
                   reason="reported: site_id is both a column of every file and a hive partition key; "
                          "pyarrow infers the key as dictionary<string> and refuses to merge it")
def test_pandas_reads_the_lake_directory(store: Store) -> None:
    store_events(store, [make_event(site_id="a:b"), make_event(site_id="c")])
    assert sorted(pd.read_parquet(store.events_dir)["site_id"]) == ["a:b", "c"]


def test_site_ids_with_colons(store: Store) -> None:
    store_events(store, [make_event(site_id="a:b"), make_event(site_id="a"), make_event(site_id="a:b:c")])
    assert (store.events_dir / "site_id=a%3Ab").is_dir()
    assert store.sites() == ["a", "a:b", "a:b:c"]
    assert count(store, "a:b") == 1 and count(store, "a") == 1 and count(store) == 3
    assert [r["site_id"] for r in read_all(store, "a:b:c")] == ["a:b:c"]
    assert store.first_date("a:b") == DAY


def test_sites_and_first_date_of_an_empty_store(store: Store) -> None:
    assert store.sites() == [] and store.first_date(None) is None and count(store) == 0


# -- files from other tools -----------------------------------------------------------------------
def test_files_written_by_other_tools_are_read(store: Store) -> None:
    part = partition_dir(store, "x:y", DAY)
    part.mkdir(parents=True)
    # pandas: a subset of the columns, in another order, revenue as a double
    pd.DataFrame({
        "pathname": ["/pandas"], "event_name": ["pageview"], "visitor_id": ["v-pandas"],
        "timestamp": [pd.Timestamp("2024-03-01 13:00:00.000001")], "site_id": ["x:y"],
        "revenue_amount": [19.99], "extra_column": [42],
    }).to_parquet(part / "pandas.parquet")
    # pyarrow: nanosecond timestamps
    pq.write_table(pa.table({
        "site_id": ["x:y"], "visitor_id": ["v-ns"],
        "timestamp": pa.array([1_709_301_600_123_456_789], pa.timestamp("ns")),
        "event_name": ["signup"], "pathname": ["/ns"],
    }), part / "nanos.parquet")
    assert pq.read_schema(part / "nanos.parquet").field("timestamp").type == pa.timestamp("ns")
    # pyarrow: a time-zone-aware timestamp (15:30 in Berlin is 14:30 UTC)
    berlin = timezone(timedelta(hours=1))
    pq.write_table(pa.table({
        "timestamp": pa.array([datetime(2024, 3, 1, 15, 30, tzinfo=berlin)],
                              pa.timestamp("us", tz="Europe/Berlin")),
        "site_id": ["x:y"], "visitor_id": ["v-tz"], "event_name": ["pageview"], "pathname": ["/tz"],
        "revenue_amount": pa.array([2.5], pa.float32()), "revenue_currency": ["usd"],
    }), part / "tz.parquet")
    store_events(store, [make_event(site_id="x:y", pathname="/ours")])

    rows = {r["pathname"]: r for r in read_all(store, "x:y")}
    assert set(rows) == {"/pandas", "/ns", "/tz", "/ours"}
    assert rows["/pandas"]["revenue_amount"] == Decimal("19.99")
    assert rows["/pandas"]["timestamp"] == datetime(2024, 3, 1, 13, 0, 0, 1)
    assert rows["/pandas"]["hostname"] is None and rows["/pandas"]["user_id"] is None
    # 123456789 ns: DuckDB rounds to the microsecond
    assert rows["/ns"]["timestamp"] - datetime(2024, 3, 1, 14, 0, 0, 123_456) <= timedelta(microseconds=1)
    assert rows["/tz"]["timestamp"] == datetime(2024, 3, 1, 14, 30)
    assert rows["/tz"]["revenue_amount"] == Decimal("2.50")
    assert set(rows["/ours"]) == set(COLUMN_NAMES)


def test_hive_partitioned_writes_by_pandas_are_read(store: Store) -> None:
    """``df.to_parquet(events_dir, partition_cols=["site_id", "date"])`` stores the partition values in
    the directory names only; the rows still belong to their site."""
    pd.DataFrame({
        "site_id": ["x:y", "x:y", "plain"], "date": ["2024-03-01", "2024-03-02", "2024-03-01"],
        "visitor_id": ["v1", "v2", "v3"], "event_name": ["pageview"] * 3, "pathname": ["/a", "/b", "/c"],
        "timestamp": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 10:00", "2024-03-01 11:00"]),
    }).to_parquet(store.events_dir, partition_cols=["site_id", "date"])
    assert (store.events_dir / "site_id=x%3Ay" / "date=2024-03-02").is_dir()
    assert store.sites() == ["plain", "x:y"]
    assert [r["pathname"] for r in read_all(store, "x:y")] == ["/a", "/b"]
    assert [r["site_id"] for r in read_all(store, "x:y")] == ["x:y", "x:y"]
    assert count(store, "plain") == 1
    # compaction keeps the site of such rows
    store_events(store, [make_event(site_id="x:y", timestamp=datetime(2024, 3, 1, 12))])
    assert store.compact(min_files=2, target_bytes=10**9) == 1
    assert [r["pathname"] for r in read_all(store, "x:y", DAY, DAY)] == ["/a", "/"]


def test_site_ids_that_look_like_numbers_stay_text(store: Store) -> None:
    pd.DataFrame({
        "site_id": ["007", "123"], "date": ["2024-03-01"] * 2, "visitor_id": ["v1", "v2"],
        "event_name": ["pageview"] * 2, "pathname": ["/a", "/b"],
        "timestamp": pd.to_datetime(["2024-03-01 10:00", "2024-03-01 11:00"]),
    }).to_parquet(store.events_dir, partition_cols=["site_id", "date"])
    store_events(store, [make_event(site_id="007")])
    assert count(store, "007") == 2 and count(store, "123") == 1
    assert sorted(r["site_id"] for r in read_all(store)) == ["007", "007", "123"]


def test_files_of_an_older_schema_read_new_columns_as_null(store: Store) -> None:
    old = list(COLUMN_NAMES[:25])
    event = full_event(site_id="old.example")
    table = pa.table({name: [getattr(event, name)] for name in old},
                     schema=pa.schema([(c.name, pa.timestamp("us") if c.name == "timestamp" else
                                        pa.decimal128(12, 2) if c.name == "revenue_amount" else pa.string())
                                       for c in COLUMNS[:25]]))
    part = partition_dir(store, "old.example", event.timestamp.date())
    part.mkdir(parents=True)
    pq.write_table(table, part / "v1.parquet", compression="zstd")
    store_events(store, [full_event(site_id="old.example", pathname="/new")])
    rows = {r["pathname"]: r for r in read_all(store, "old.example")}
    assert rows[event.pathname] == {**as_row(event), **dict.fromkeys(COLUMN_NAMES[25:])}
    assert rows["/new"]["user_id"] == "cd" * 32
    assert store.compact(min_files=2, target_bytes=10**9) == 1
    assert {r["pathname"]: r for r in read_all(store, "old.example")} == rows


def test_hidden_and_temporary_files_are_never_read(store: Store) -> None:
    store_events(store, make_events(3))
    part = partition_dir(store, "example.com", DAY)
    stray = pa.Table.from_pylist([as_row(make_event(pathname="/stray"))])
    for name in (".half-written.parquet.tmp", ".hidden.parquet", "notes.txt.tmp",
                 ".merge-1-2.parquet.tmp"):
        pq.write_table(stray, part / name)
    pending = store.write_batch(make_events(2, prefix="/pending/"))  # leaves .<segment>.parquet.tmp
    assert any(p.name.endswith(".parquet.tmp") and p.name.startswith(".") for p in part.iterdir())
    assert count(store) == 3
    assert "/stray" not in {r["pathname"] for r in read_all(store)}
    pending()
    assert count(store) == 5


def test_stale_temporaries_are_removed_by_recovery(store: Store) -> None:
    part = partition_dir(store, "example.com", DAY)
    store_events(store, make_events(1))
    store.write_batch(make_events(1, prefix="/fresh/"))  # a live writer's file: young
    old = part / ".dead-writer.parquet.tmp"
    old.write_bytes(b"half a file")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    store.recover()
    assert not old.exists()
    assert [p for p in part.iterdir() if p.name.startswith(".")] != [], "young temporaries are kept"


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


# -- retention and erasure ------------------------------------------------------------------------
def _dated(site: str, days: Sequence[date]) -> list[Event]:
    return [make_event(site_id=site, timestamp=datetime.combine(d, datetime.min.time()) + timedelta(hours=h),
                       pathname=f"/{d}/{h}") for d in days for h in (0, 23)]


def test_retention_deletes_old_partitions_and_nothing_newer(store: Store) -> None:
    today = date(2024, 3, 10)
    days = [today - timedelta(days=n) for n in range(8)] + [today + timedelta(days=1)]
    store_events(store, _dated("a", days) + _dated("b:c", days[:3]))
    assert store.apply_retention(0, today) == 0  # 0 keeps everything
    deleted = store.apply_retention(3, today)
    kept = sorted({d for s in ("a", "b:c") for d in store.lake.dates(s)})
    assert kept == [today - timedelta(days=n) for n in (3, 2, 1, 0)] + [today + timedelta(days=1)]
    assert deleted == 4  # days 4..7 of site a
    assert {r["timestamp"].date() for r in read_all(store)} == set(kept)
    assert count(store, "b:c") == 6
    assert store.apply_retention(3, today) == 0


def test_erase_deletes_exactly_the_site_and_dates(store: Store) -> None:
    days = [date(2024, 3, d) for d in (1, 2, 3, 4)]
    store_events(store, _dated("a", days) + _dated("a:b", days) + _dated("ab", days))
    assert store.erase("a", date(2024, 3, 2), date(2024, 3, 3)) == 2
    assert store.lake.dates("a") == [days[0], days[3]]
    assert store.lake.dates("a:b") == days and store.lake.dates("ab") == days
    assert count(store, "a") == 4 and count(store) == 20
    assert store.erase("a", date(2024, 1, 1), date(2024, 12, 31)) == 2
    assert "a" not in store.sites() and not (store.events_dir / "site_id=a").exists()
    assert store.erase("nobody", date(2024, 1, 1), date(2024, 12, 31)) == 0


def test_mallard_erase_also_removes_buffered_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    m = mallard.Mallard(data_dir=data, flush_interval_secs=3600, flush_event_count=10**9)
    try:
        def track(site: str, day: int, path: str) -> None:
            assert m.track("pageview", site=site, url=f"https://{site}{path}", ip="192.0.2.1",
                           timestamp=datetime(2024, 3, day, 12, tzinfo=UTC))

        for day in (1, 2, 3):
            track("a.example", day, f"/stored/{day}")
            track("b.example", day, f"/stored/{day}")
        assert m.flush() == 6
        for day in (1, 2, 3):
            track("a.example", day, f"/buffered/{day}")
            track("b.example", day, f"/buffered/{day}")
        result = m.erase("a.example", date(2024, 3, 2), date(2024, 3, 3))
        assert (result.buffered_events_deleted, result.parquet_partitions_deleted) == (2, 2)

        def paths(site: str) -> list[str]:
            rows = m.queries.sql("SELECT pathname FROM events WHERE site_id = ?", [site]).to_pylist()
            return sorted(r["pathname"] for r in rows)

        assert paths("a.example") == ["/buffered/1", "/stored/1"]
        assert len(paths("b.example")) == 6
        visitors = m.queries.query("a.example", metrics=["pageviews"], start_date="2024-03-01",
                                   end_date="2024-03-03").rows[0]["pageviews"]
        assert visitors == 2
    finally:
        assert m.close()
    with mallard.open(data) as q:
        rows = q.sql("SELECT pathname FROM events WHERE site_id = 'a.example' ORDER BY 1").to_pylist()
        assert [r["pathname"] for r in rows] == ["/buffered/1", "/stored/1"]


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
                with store.reading("example.com", None, None, pending=buf.snapshot,
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
    for t in threads:
        t.start()
    try:
        offer_until(offer, progress, lambda: progress.reads > 20 and sum(compactions) >= 2, problems)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        assert buf.close(30)
    assert problems == []
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


def test_a_partition_erased_while_a_batch_is_stored_does_not_duplicate_the_rest(store: Store) -> None:
    """Another process erases a partition between our write and publish (it deletes our hidden file):
    the flush still succeeds, the erased partition stays empty, the others hold each event once."""
    other = Store(store.data_dir)  # stands for a second process
    try:
        def sink(batch: Sequence[tuple[Any, ...]]) -> Any:
            publish = store.write_batch(batch)
            if any(Event(*row).site_id == "b" for row in batch):
                other.erase("b", DAY, DAY)
            return publish

        buf = EventBuffer(sink, flush_at=10**6, flush_interval=3600)
        events = make_events(3, site_id="a") + make_events(2, site_id="b") + make_events(2, site_id="c")
        for e in events:
            buf.offer(e)
        assert buf.flush() == 7
        assert buf.close(1)
    finally:
        other.close()
    assert Counter(r["site_id"] for r in read_all(store)) == {"a": 3, "c": 2}


def test_recovery_leaves_the_commit_record_of_a_live_process_alone(store: Store) -> None:
    """Another process starts (and recovers) while this one is between publishing a batch and deleting
    its spool segment: it must neither replay the segment nor act on the commit record."""
    journal = store.journal()
    recovered: list[int] = []

    def sink(batch: Sequence[Event]) -> Any:
        publish = store.write_batch(batch)

        def publish_then_someone_recovers() -> None:
            publish()
            assert any(p.name.endswith(".commit") for p in store.spool_dir.iterdir())
            other = Store(store.data_dir)
            try:
                recovered.append(other.recover())
            finally:
                other.close()
            assert any(p.name.endswith(".commit") for p in store.spool_dir.iterdir())

        return publish_then_someone_recovers

    buf = EventBuffer(sink, journal=journal, flush_at=10**6, flush_interval=3600)
    for e in make_events(5) + make_events(3, site_id="a:b"):
        buf.offer(e)
    assert buf.flush() == 8
    assert recovered == [0]
    assert buf.close(1)
    assert count(store) == 8
    assert list(store.spool_dir.iterdir()) == []


def test_recovery_removes_the_half_written_commit_record_of_a_killed_writer(store: Store) -> None:
    """A writer killed between writing its commit record and renaming it leaves ``.commit.tmp``: the
    publish never happened, so its segment is replayed and the stale record deleted; a live writer's
    record in the same state is left alone."""
    dead = "vm-4242-abcdef"
    (store.spool_dir / f"{dead}.0").write_bytes(b"".join(encode(e) for e in make_events(3)))
    (store.spool_dir / f".{dead}.commit.tmp").write_bytes(b'{"segments": ["vm-42')  # cut short
    (store.spool_dir / f".{dead}.0.recovered.commit.tmp").write_bytes(b"")
    live = Spool(store.spool_dir)  # another process, alive: it holds the lock of its segment
    try:
        live.append(make_event())
        [segment] = [p.name for p in store.spool_dir.iterdir() if p.name[0] != "." and dead not in p.name]
        live_tmp = store.spool_dir / f".{segment.rsplit('.', 1)[0]}.commit.tmp"
        live_tmp.write_bytes(b"{")
        other = Store(store.data_dir)
        try:
            assert other.recover() == 3
        finally:
            other.close()
        assert sorted(p.name for p in store.spool_dir.glob(".*")) == [live_tmp.name]
        assert count(store) == 3
    finally:
        live.close()


def test_recovery_removes_the_unborn_segment_of_a_writer_killed_while_opening_it(store: Store) -> None:
    """A writer killed between creating its next segment under a hidden name and renaming it leaves
    ``.<segment>.new`` (empty: nothing is appended before the rename); recovery deletes it, and a live
    writer's segment, locked, is left alone. (CI found one left behind by a gunicorn worker killed with
    SIGKILL.)"""
    unborn = store.spool_dir / ".vm-4242-abcdef.3.new"
    unborn.write_bytes(b"\0" * 4096)
    live = Spool(store.spool_dir)  # another process, alive, whose segment is locked
    try:
        live.append(make_event())
        held = store.spool_dir / ".vm-4343-fedcba.1.new"
        held_fd = os.open(held, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(held_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a writer between lock and rename
        other = Store(store.data_dir)
        try:
            other.recover()
        finally:
            other.close()
        assert sorted(p.name for p in store.spool_dir.glob(".*")) == [held.name]
        os.close(held_fd)
    finally:
        live.close()


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c:d"]),
                          st.integers(min_value=-3, max_value=3),
                          st.sampled_from([-1, 0, 1, 86_400_000_000 - 1]))))
def test_partitions_split_a_batch_by_site_and_day_in_time_order(spec: list[tuple[str, int, int]]) -> None:
    """Every event lands in exactly one part, of its own (site, UTC date), parts sorted by time and
    stable on equal timestamps; midnight and the microsecond before it fall on their own days."""
    midnight = datetime(2024, 3, 2)
    events = [make_event(site_id=site, pathname=f"/{i}",
                         timestamp=midnight + timedelta(days=day, microseconds=us))
              for i, (site, day, us) in enumerate(spec)]
    seen: list[Event] = []
    keys = []
    for (site, day), rows in partitions(events):
        keys.append((site, day))
        assert rows and all(e.site_id == site and e.timestamp.date() == day for e in rows)
        assert [e.timestamp for e in rows] == sorted(e.timestamp for e in rows)
        for a, b in itertools.pairwise(rows):  # stable: equal times keep arrival order
            if a.timestamp == b.timestamp:
                assert int(a.pathname[1:]) < int(b.pathname[1:])
        seen.extend(rows)
    assert len(keys) == len(set(keys))
    assert Counter(seen) == Counter(events)


def test_an_erasure_between_a_write_and_its_publish_still_holds(store: Store) -> None:
    """Another process records an erasure and deletes the partitions after our batch was filtered and
    written but before the partition directory held our file (the erasure removed nothing of ours):
    publishing then removes our own file of the erased partition, and keeps the rest."""
    other = Store(store.data_dir)  # stands for a second process
    try:
        events = _dated("a", [date(2024, 3, 1), date(2024, 3, 2)])
        publish = store.write_batch(events, applied=set())
        other.tombstones.add("a", date(2024, 3, 1), date(2024, 3, 1))  # what other.erase records first
        publish()  # the erasure's deletion ran before: nothing of the day was there yet
        assert count(store, "a") == 2
        assert sorted(r["pathname"] for r in read_all(store)) == ["/2024-03-02/0", "/2024-03-02/23"]
        # The erasure was made after the batch was filtered: a later batch of this process drops the
        # day's events it still held (received before it knew), then keeps later ones.
        applied: set[Any] = set()
        store.write_batch(_dated("a", [date(2024, 3, 1)]), applied=applied)()
        assert count(store, "a") == 2 and len(applied) == 1
        store.write_batch(_dated("a", [date(2024, 3, 1)]), applied=applied)()
        assert count(store, "a") == 4
    finally:
        other.close()


def test_queries_print_no_progress_bar(tmp_path: Path) -> None:
    """DuckDB draws a progress bar on stdout for a query that runs over 2 s; a library inside a host app
    must not write to its stdout, so the store's connections have it off."""
    code = (
        "import sys, time; from mallard.store import Store; s = Store(sys.argv[1]); "
        "c = s.connection(); c.create_function('nap', lambda i: time.sleep(0.001) or i, ['BIGINT'], "
        "'BIGINT'); c.execute('SELECT sum(nap(i)) FROM range(2600) t(i)').fetchall()"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout == ""
