"""The lake's files: every column round-trips, the partition layout, ZSTD, files written by other
tools, hidden and temporary files, how a batch splits into partitions."""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mallard import Store
from mallard._events import COLUMN_NAMES, COLUMNS, Event
from mallard._store.lake import partitions

from ..factories import full_event, make_event, make_events
from .conftest import (
    DAY,
    as_row,
    count,
    partition_dir,
    read_all,
    store_events,
    visible_files,
)


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
