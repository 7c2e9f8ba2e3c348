"""Retention and erasure: exactly the site and dates, buffered events too, and erasures that hold
against batches on their way to the lake."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import mallard
from mallard import EventBuffer, Store
from mallard._events import Event

from ..factories import make_event, make_events
from .conftest import (
    DAY,
    count,
    read_all,
    store_events,
)


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
