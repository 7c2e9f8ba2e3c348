"""Provisional rollups (queries/provisional.py, rollups.py): an open day's rollups stored up to a horizon
and completed when read with the rows of the events since it.

The traffic of test_rollups (daily ids, sometimes one id on two days, custom properties) is written up to
a drawn horizon (a midnight, a second after, mid-day, the last second of a day); the settled days' rollups
are stored and the horizon's day gets a provisional partition; then events arrive at or after the
horizon (the partition stays fresh and is completed: visitors seen before and after the horizon are
counted once), then before it (late: it goes stale and the day is computed from events), the lake is
compacted and a day erased. After each step every question the rollups answer equals plain SQL over
the events, also through a Queries object that kept its computations from an earlier step.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import Queries, backfill, provisional, rollups
from mallard._store import Store

from .test_rollups import DAYS, LAST, SITE, TODAY, _check, _check_props, _queries, traffic

_MIDNIGHTS = [datetime.combine(d, datetime.min.time()) for d in DAYS]
HORIZONS = st.builds(lambda m, s: m + timedelta(seconds=s), st.sampled_from(_MIDNIGHTS),
                     st.sampled_from([0, 1, 3600, 43_200, 86_399]))


def _rows(store: Store, day: date, dimension: str = "event:page") -> rollups.RollupRows | None:
    """The rollup rows a query of ``dimension`` over ``day`` reads."""
    return _read(store, day, dimension)[0]


def _read(store: Store, day: date, dimension: str = "event:page"
          ) -> tuple[rollups.RollupRows | None, list[tuple[str, str | None, int, int]]]:
    """The rollup rows a query of ``dimension`` over ``day`` reads, and their (dimension, value,
    visitors, pageviews), ordered."""
    lower = datetime.combine(day, datetime.min.time())
    with store.reading(SITE, day, day) as reader:
        got = rollups.for_query(store, store.reading, reader, SITE, lower, lower + timedelta(days=1),
                                dimension, cache=None)
        if got is None:
            return None, []
        sql = "SELECT dimension, value, visitors, pageviews FROM (" + got.relation() + ") ORDER BY ALL"
        return got, [tuple(r.values()) for r in reader.execute(sql.text, sql.params).to_pylist()]


def _build(store: Store, horizon: datetime) -> None:
    """The settled days' rollups, and the horizon's day's provisional ones."""
    backfill.build_settled(store, 1800, today=TODAY, budget_secs=60)
    if horizon.date() in store.lake.dates(SITE):
        assert provisional.build_rollups(store, SITE, horizon.date(), horizon) is not None


def _check_all(store: Store, step: str, kept: Queries) -> None:
    _check(store, step)
    _check_props(store, step)
    _check(store, f"{step} (a Queries object of an earlier step)", kept)


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.timeout(900)
@settings(max_examples=10, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(first=traffic("p"), later=traffic("q"), late=traffic("r"), horizon=HORIZONS,
       compact=st.booleans(), erase=st.sampled_from([None, *DAYS]))
def test_provisional_rollups_equal_the_raw_answer(workdir: Path, first: list[Event], later: list[Event],
                                                  late: list[Event], horizon: datetime, compact: bool,
                                                  erase: date | None) -> None:
    data = workdir / "data"
    if data.exists():
        shutil.rmtree(data)
    store = Store(data)
    try:
        before = [e for e in first if e.timestamp < horizon]
        if before:
            store.write_batch(before)()
        _build(store, horizon)
        kept = _queries(store)
        _check_all(store, "built", kept)
        # at or after the horizon: the rest of the traffic, and the people of `later` moved just after it
        after = [e for e in first if e.timestamp >= horizon]
        after += [e._replace(timestamp=horizon + (e.timestamp - datetime.combine(
            e.timestamp.date(), datetime.min.time())) / 2) for e in later]
        if after:
            store.write_batch(after)()
            part = store.rollup_files.listing(SITE).get(horizon.date())
            if part is not None and part.horizon is not None:
                got = _rows(store, horizon.date())
                assert got is not None and part.path in got.files, "a fresh provisional file is read"
            _check_all(store, "completed", kept)
        if late:  # before the horizon: the provisional partition goes stale
            store.write_batch([e._replace(timestamp=min(e.timestamp, horizon - timedelta(seconds=1)))
                               for e in late])()
            _check_all(store, "late", kept)
        if compact:
            store.compact(min_files=2, target_bytes=1 << 30)
            _check_all(store, "compacted", kept)
        if erase is not None:
            store.erase(SITE, erase, erase)
            _check_all(store, "erased", kept)
    finally:
        store.close()


def test_visitors_before_and_after_the_horizon_are_counted_once(workdir: Path) -> None:
    """The provisional file holds the rows before the horizon; the rows since add only what is new:
    a visitor back after the horizon on the same page is not counted again, a new page of theirs is."""
    day = LAST
    noon = datetime.combine(day, datetime.min.time()) + timedelta(hours=12)
    store = Store(workdir / "data")

    def hit(visitor: str, minutes: int, page: str) -> Event:
        return Event(site_id=SITE, visitor_id=visitor, event_name="pageview", pathname=page,
                     timestamp=noon + timedelta(minutes=minutes))

    try:
        store.write_batch([hit("a", -30, "/"), hit("b", -20, "/")])()
        part = provisional.build_rollups(store, SITE, day, noon)
        assert part is not None and part.horizon == noon
        q = _queries(store)
        assert q.main(SITE, start_date=day, end_date=day)["unique_visitors"] == 2
        store.write_batch([hit("a", 5, "/"), hit("a", 6, "/pricing"), hit("c", 7, "/")])()
        got, rows = _read(store, day)
        assert got is not None and got.files == (part.path,) and got.live_days == {day}
        assert got.live is None and got.since is not None
        # "/": a and b as stored; since: c new, a back (not counted again), 2 more pageviews; "/pricing": a
        assert [r for r in rows if r[0] == "event:page"] == [
            ("event:page", "/", 1, 2), ("event:page", "/", 2, 2), ("event:page", "/pricing", 1, 1)]
        assert q.main(SITE, start_date=day, end_date=day)["unique_visitors"] == 3
        assert q.breakdown(SITE, "pages", start_date=day, end_date=day).rows == [
            {"value": "/", "visitors": 3, "pageviews": 4},
            {"value": "/pricing", "visitors": 1, "pageviews": 1}]
        store.write_batch([hit("d", -1, "/")])()  # late: before the horizon
        assert not provisional.fresh(store, SITE, part, rollups.VERSION, None)
        stale = _rows(store, day)
        assert stale is None or part.path not in stale.files
        assert q.breakdown(SITE, "pages", start_date=day, end_date=day).rows[0] == {
            "value": "/", "visitors": 4, "pageviews": 5}
    finally:
        store.close()


def test_maintenance_builds_todays_provisional_rollups_and_settles_them(workdir: Path) -> None:
    today = LAST
    now = datetime.combine(today, datetime.min.time()) + timedelta(hours=6)
    store = Store(workdir / "data")
    try:
        store.write_batch([Event(site_id=SITE, visitor_id="a", event_name="pageview", pathname="/",
                                 timestamp=now - timedelta(hours=1))])()
        backfill.build_open(store, 1800, now)
        part = store.rollup_files.listing(SITE)[today]
        assert part.horizon == provisional.horizon_at(now)
        assert backfill.build_open(store, 1800, now + timedelta(minutes=1)) == 0  # fresh, recent
        tomorrow = now + timedelta(days=1)
        backfill.build_open(store, 1800, tomorrow)  # the day is over: its rollups for good
        assert store.rollup_files.listing(SITE)[today].horizon is None
    finally:
        store.close()
