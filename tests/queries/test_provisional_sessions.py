"""Provisional session partitions (queries/provisional.py): an open day's sessions stored up to a
horizon and completed when read; and the open day's attributed events (attributed.py) stored the same way.

The traffic of test_stored_sessions (sessions across midnights, daily ids chained by
``visitor_id_prev``, sessions longer than a day, ties at the session window) is written; every day gets
provisional partitions (sessions, then attributed events) at a drawn horizon (around midnights, a
session window before and after them, mid-day); then events arrive after the horizon (the common case:
the partitions stay fresh and are completed) and before it (late: they go stale), the lake is compacted
and a day erased. After each step the session rows a query reads equal the definition over every event,
row for row, and every answer equals the one from the events alone.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import attributed, backfill, provisional
from mallard._queries.sessions import version as sessions_version
from mallard._store import Store

from .conftest import spoil
from .test_stored_sessions import (
    DAYS,
    GAP_S,
    SITE,
    VISIT_DIMS,
    _check,
    _event,
    _rows_by_definition,
    _rows_gathered,
    compact_and_erase,
    traffic,
)

_MIDNIGHTS = [datetime.combine(d, datetime.min.time()) for d in DAYS[1:]]
HORIZONS = st.builds(lambda m, s: m + timedelta(seconds=s), st.sampled_from(_MIDNIGHTS),
                     st.sampled_from([-GAP_S - 1, -GAP_S, -60, 0, 1, 60, GAP_S, GAP_S + 1, 12 * 3600]))


def _shifted(events: list[Event], horizon: datetime, after: bool) -> list[Event]:
    """``events`` moved to start just after (or end just before) ``horizon``."""
    if not events:
        return []
    first = min(e.timestamp for e in events)
    last = max(e.timestamp for e in events)
    delta = (horizon - first) if after else (horizon - timedelta(seconds=1) - last)
    moved = [e._replace(timestamp=e.timestamp + delta) for e in events]
    return [e for e in moved if DAYS[0] <= e.timestamp.date() <= DAYS[-1]]


def _build_all(store: Store, horizon: datetime) -> int:
    """Provisional sessions, then provisional attributed events (they read the sessions), of every day."""
    days = store.lake.dates(SITE)
    built = sum(provisional.build(store, SITE, day, GAP_S, horizon) is not None for day in days)
    return built + sum(attributed.build_open(store, SITE, day, GAP_S, horizon) is not None for day in days)


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.timeout(900)
@settings(max_examples=8, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(first=traffic("p"), later=traffic("q"), late=traffic("r"), horizon=HORIZONS,
       compact=st.booleans(), erase=st.sampled_from([None, *DAYS]),
       dims=st.lists(st.sampled_from(VISIT_DIMS), min_size=1, max_size=3, unique=True))
def test_provisional_partitions_equal_the_raw_answer(workdir: Path, first: list[Event], later: list[Event],
                                                     late: list[Event], horizon: datetime, compact: bool,
                                                     erase: date | None, dims: list[str]) -> None:
    data = workdir / "data"
    if data.exists():
        shutil.rmtree(data)
    store = Store(data)
    try:
        before = [e for e in first if e.timestamp < horizon]
        if before:
            store.write_batch(before)()
        _build_all(store, horizon)
        _check(store, workdir, "built", dims)
        after = [e for e in first if e.timestamp >= horizon] + _shifted(later, horizon, after=True)
        if after:  # flushed after the build, every event at or after the horizon: still fresh
            store.write_batch(after)()
            listing = store.session_files.listing(SITE)
            base = sessions_version(GAP_S)
            assert all(provisional.fresh(store, SITE, p, base, None) for p in listing.values())
            attributed_base = attributed.version(GAP_S)
            assert all(provisional.fresh(store, SITE, p, attributed_base, None)
                       for p in store.attributed_files.listing(SITE).values())
            if listing:
                assert _rows_gathered(store)[1].files, "fresh provisional partitions are read"
            _check(store, workdir, "completed", dims)
        if late:  # an event before the horizon arrives late: its partitions go stale
            store.write_batch(_shifted(late, horizon, after=False))()
            _check(store, workdir, "late", dims)
        compact_and_erase(store, workdir, dims, compact, erase)
        _build_all(store, horizon + timedelta(hours=1))
        _check(store, workdir, "rebuilt", dims)
    finally:
        store.close()


def _person(name: str, start: datetime, minutes: list[int]) -> list[Event]:
    attrs = {"referrer_source": "Google", "browser": "Chrome", "country_code": "DE"}
    return [_event(name, start + timedelta(minutes=m), "pageview", "/", attrs, True) for m in minutes]


@pytest.mark.slow
def test_an_open_session_is_completed_and_a_closed_one_read_as_stored(workdir: Path) -> None:
    """At a horizon one visitor's session is closed and another's open (it started before midnight);
    events after the horizon extend the open one. The stored file holds the closed session only; the
    reader computes the open one from its visitor's events and those after the horizon."""
    day = DAYS[2]
    midnight = datetime.combine(day, datetime.min.time())
    horizon = midnight + timedelta(hours=2)
    store = Store(workdir / "data")
    try:
        store.write_batch(_person("closed", midnight + timedelta(minutes=10), [0, 5, 20])
                          + _person("open", midnight - timedelta(minutes=20), list(range(0, 140, 20))))()
        part = provisional.build(store, SITE, day, GAP_S, horizon)
        assert part is not None and part.horizon == horizon
        assert part.since == midnight - timedelta(minutes=20)  # the open session's start, the day before
        assert store.session_files.listing(SITE)[day] == part
        assert pq.read_table(part.path).num_rows == 1  # the closed one
        store.write_batch(_person("open", midnight - timedelta(minutes=20), [140, 150])
                          + _person("new", horizon + timedelta(minutes=1), [0, 1]))()
        rows, got = _rows_gathered(store)
        assert part.path in got.files and got.live is not None
        assert len(rows) == 3  # closed, open (the day before: not this day's), new
        _check(store, workdir, "completed", ["visit:source"])
    finally:
        store.close()


def test_a_buffered_event_before_the_horizon_makes_it_stale(workdir: Path) -> None:
    day = DAYS[2]
    horizon = datetime.combine(day, datetime.min.time()) + timedelta(hours=3)
    store = Store(workdir / "data")
    try:
        store.write_batch(_person("a", horizon - timedelta(hours=1), [0, 10]))()
        part = provisional.build(store, SITE, day, GAP_S, horizon)
        assert part is not None
        base = sessions_version(GAP_S)
        assert provisional.fresh(store, SITE, part, base, None)
        assert provisional.fresh(store, SITE, part, base, horizon)
        assert not provisional.fresh(store, SITE, part, base, horizon - timedelta(microseconds=1))
        assert not provisional.fresh(store, SITE, part, sessions_version(GAP_S + 60), None)  # another window
    finally:
        store.close()


@pytest.mark.slow
def test_maintenance_builds_the_open_days_and_settles_them_later(workdir: Path) -> None:
    """build_open stores yesterday and today (not settled days: their sessions and attributed events),
    leaves a fresh recent one alone, builds a stale or old one again; the settled build replaces a
    provisional partition for good."""
    today = DAYS[3]
    now = datetime.combine(today, datetime.min.time()) + timedelta(hours=6)
    store = Store(workdir / "data")
    try:
        for d in DAYS[:4]:
            store.write_batch(_person(f"v{d}", datetime.combine(d, datetime.min.time()) + timedelta(hours=1),
                                      [0, 5]))()
        assert backfill.build_open(store, GAP_S, now) == 5  # and today's provisional rollups
        listing = store.session_files.listing(SITE)
        opened = store.attributed_files.listing(SITE)
        assert sorted(listing) == sorted(opened) == [DAYS[2], today]
        assert all(p.horizon == provisional.horizon_at(now) for p in [*listing.values(), *opened.values()])
        assert backfill.build_open(store, GAP_S, now + timedelta(minutes=1)) == 0  # fresh, recent
        assert backfill.build_open(store, GAP_S, now + provisional.REFRESH + provisional.LAG) == 5
        again = now + provisional.REFRESH + provisional.LAG
        store.write_batch(_person("old", datetime.combine(DAYS[0], datetime.min.time()), [0]))()
        assert backfill.build_open(store, GAP_S, again) == 0  # outside both partitions' days
        store.write_batch(_person("late", now - timedelta(hours=2), [0]))()  # before the horizon
        assert backfill.build_open(store, GAP_S, again) == 5  # today's, yesterday's (reads today), rollups
        backfill.build_settled(store, GAP_S, today=today + timedelta(days=2), budget_secs=60)
        for listing in (store.session_files.listing(SITE), store.attributed_files.listing(SITE)):
            assert listing[DAYS[2]].horizon is None and listing[today].horizon is None
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("read_only", [False, True])
def test_an_unreadable_provisional_file_is_not_fatal(workdir: Path, read_only: bool) -> None:
    """A damaged provisional file: the day is computed from events (the same rows as the definition),
    and a writable store deletes the file for maintenance to build it again."""
    day = DAYS[2]
    horizon = datetime.combine(day, datetime.min.time()) + timedelta(hours=3)
    data = workdir / "data"
    store = Store(data)
    try:
        store.write_batch(_person("a", horizon - timedelta(minutes=40), [0, 10, 30, 50]))()
        part = provisional.build(store, SITE, day, GAP_S, horizon)
        assert part is not None
        victim = spoil(part.path)
    finally:
        store.close()
    reader = Store(data, read_only=read_only)
    try:
        rows, got = _rows_gathered(reader)
        assert rows == _rows_by_definition(reader) and len(rows) == 1
        assert not got.files
        assert victim.exists() == read_only
    finally:
        reader.close()


def test_the_earliest_event_of_a_file(workdir: Path) -> None:
    """From the footer's statistics, from the column when a writer left them out, in UTC when the
    column has a time zone; a damaged file counts as the earliest possible (its partitions go stale)."""
    import pyarrow as pa

    store = Store(workdir / "data")
    try:
        when = datetime(2024, 5, 1, 12, 30, 15, 123456)
        plain, bare, zoned, bad, empty = (str(workdir / f"{n}.parquet")
                                          for n in ("plain", "bare", "zoned", "bad", "empty"))
        times = pa.array([when + timedelta(hours=1), when], pa.timestamp("us"))
        pq.write_table(pa.table({"timestamp": times}), plain)
        pq.write_table(pa.table({"timestamp": times}), bare, write_statistics=False)
        pq.write_table(pa.table({"timestamp": times.cast(pa.timestamp("us", tz="Europe/Berlin"))}), zoned)
        pq.write_table(pa.table({"timestamp": pa.array([], pa.timestamp("us"))}), empty)
        Path(bad).write_bytes(b"PAR1 not parquet PAR1")
        assert store.lake.earliest(plain) == when
        assert store.lake.earliest(bare) == when
        assert store.lake.earliest(zoned) == when
        assert store.lake.earliest(empty) is None
        assert store.lake.earliest(bad) == datetime.min
        with pytest.raises(FileNotFoundError):
            store.lake.earliest(str(workdir / "gone.parquet"))
    finally:
        store.close()
