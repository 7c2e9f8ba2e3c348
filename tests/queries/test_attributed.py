"""Events attributed to their sessions (attributed.py): what a stored day holds, when it is built and read.

The answers of queries that read them are checked against raw events by the property test of
test_stored_sessions.py (every step: built, late events, compaction, erasure, rebuilt).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from mallard._events import Event
from mallard._queries import attributed, backfill, stored
from mallard._queries.sessions import COLUMNS
from mallard._queries.sql import Sql
from mallard._store import Store

from .test_stored_sessions import DAYS, GAP_S, SITE, TODAY, _event, _fixed_traffic, _queries, _raw_copy

_DAY = timedelta(days=1)


def _at(day_index: int, hours: float = 0) -> datetime:
    return datetime.combine(DAYS[day_index], datetime.min.time()) + timedelta(hours=hours)


def test_outside_gives_the_runs_not_on_stored_days() -> None:
    stored_days = attributed.Attributed(("x",), frozenset({DAYS[1], DAYS[2], DAYS[4]}))
    lower, upper = _at(0, 5), _at(5, 3)
    Run = attributed.Run
    assert stored_days.outside(lower, upper) == [Run(lower, _at(1)), Run(_at(3), _at(4)), Run(_at(5), upper)]
    assert stored_days.outside(_at(1, 2), _at(2, 20)) == []
    assert attributed.Attributed((), frozenset()).outside(lower, upper) == [Run(lower, upper)]
    end = datetime(9999, 12, 31, 1)  # the calendar's last day: no overflow
    assert attributed.Attributed((), frozenset()).outside(end, datetime.max) == [Run(end, datetime.max)]
    # open days stored in part: each its own run, from its earliest joined event, of late sessions only
    ending = _at(3, 11)
    partly = replace(stored_days, opened=((DAYS[3], _at(3, 10), ending), (DAYS[5], _at(4, 23), _at(5, 1))))
    assert partly.outside(lower, upper) == [Run(lower, _at(1)), Run(_at(3, 10), _at(4), ending),
                                            Run(_at(5), upper, _at(5, 1))]
    assert partly.outside(_at(3, 12), _at(3, 13)) == [Run(_at(3, 12), _at(3, 13), ending)]
    assert partly.outside(_at(3, 1), _at(3, 2)) == []  # before the earliest: all stored
    assert Run(lower, upper).sessions() is None
    assert Run(lower, upper, ending).sessions() == Sql("end_time >= ?", (ending,))


def test_a_stored_day_holds_each_event_once_with_its_sessions_columns(workdir: Path) -> None:
    events = _fixed_traffic((-20, -5, 10, 50, 600, 1430), 4)  # sessions across both midnights
    store = Store(workdir / "data")
    try:
        store.write_batch(events)()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        listing = store.attributed_files.listing(SITE)
        assert sorted(listing) == store.lake.dates(SITE)
        sessions = stored.gather(store, store.reading, SITE, DAYS[0], DAYS[-1], GAP_S)
        assert sessions.live is None
        rows = pq.read_table(list(sessions.files)).to_pylist()
        by_start = {(r["visitor_keys"][0], r["start_time"]): r for r in rows}
        seen = 0
        for day, part in listing.items():
            table = pq.read_table(part.path).to_pylist()
            assert {r["timestamp"].date() for r in table} == {day}
            assert len(table) == sum(e.timestamp.date() == day for e in events)
            for r in table:
                session = by_start[(r["s_vk0"], r["s_start"])]
                end = session["start_time"] + timedelta(microseconds=session["duration_us"])
                assert session["start_time"] <= r["timestamp"] <= end
                assert (r["entry_page"], r["exit_page"]) == (session["entry_page"], session["exit_page"])
                for a in attributed.ATTRIBUTES:
                    assert r[f"s_{a}"] == session[a], a
            assert part.first <= day - _DAY and part.last >= day + _DAY
            seen += len(table)
        assert seen == len(events)
        assert set(COLUMNS) >= {*attributed.ATTRIBUTES, *attributed.PAGES}
    finally:
        store.close()


def test_a_day_waits_for_the_sessions_of_the_day_before(workdir: Path) -> None:
    store = Store(workdir / "data")
    try:
        store.write_batch([_event("a", _at(1, 23.9), "pageview", "/", {}, True),
                           _event("a", _at(2, 0.1), "pageview", "/b", {}, True)])()
        stored.build(store, SITE, DAYS[2], GAP_S)  # the day's sessions, not the day before's
        assert not attributed.build(store, SITE, DAYS[2], GAP_S)
        stored.build(store, SITE, DAYS[1], GAP_S)
        assert attributed.build(store, SITE, DAYS[2], GAP_S)
        part = store.attributed_files.listing(SITE)[DAYS[2]]
        (row,) = pq.read_table(part.path).to_pylist()
        assert (row["pathname"], row["s_start"], row["entry_page"]) == ("/b", _at(1, 23.9), "/")
    finally:
        store.close()


def test_a_late_event_makes_the_days_that_read_it_stale(workdir: Path) -> None:
    """A late event on a day stales the attributed days whose window holds it (those that read sessions
    of that day or the day after); the answers stay those of the events (the stale days are joined),
    and the next pass builds them again."""
    events = _fixed_traffic((-20, 10, 600, 2 * 1440 + 600, 3 * 1440 + 600), 3)
    store = Store(workdir / "data")
    try:
        store.write_batch(events)()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        days = store.lake.dates(SITE)
        lower, upper = _at(0), datetime.combine(days[-1] + _DAY, datetime.min.time())
        assert attributed.for_days(store, SITE, lower, upper, GAP_S, ()).days == set(days)
        visit = [["is", "visit:source", ["Google"]]]
        q = _queries(store.data_dir, store)
        before = q.query(SITE, metrics=["visitors", "pageviews"], dimensions=["time:day"], filters=visit,
                         start_date=DAYS[0], end_date=DAYS[-1]).rows
        late = _event("late", _at(1, 12), "pageview", "/a", {"referrer_source": "Google"}, True)
        store.write_batch([late])()
        fresh = attributed.for_days(store, SITE, lower, upper, GAP_S, ()).days
        # DAYS[3] read the sessions of DAYS[3] only (DAYS[2] has no events): from DAYS[2] on
        assert days == [DAYS[0], DAYS[1], DAYS[3], DAYS[4]] and fresh == {DAYS[3], DAYS[4]}
        # events buffered on DAYS[4]: every window holding that day is stale
        assert not attributed.for_days(store, SITE, lower, upper, GAP_S, {DAYS[4]}).days
        after = q.query(SITE, metrics=["visitors", "pageviews"], dimensions=["time:day"], filters=visit,
                        start_date=DAYS[0], end_date=DAYS[-1]).rows
        added = {r["time:day"]: r for r in after}[DAYS[1].isoformat()]
        old = {r["time:day"]: r for r in before}.get(DAYS[1].isoformat(), {"visitors": 0, "pageviews": 0})
        assert (added["visitors"], added["pageviews"]) == (old["visitors"] + 1, old["pageviews"] + 1)
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        assert attributed.for_days(store, SITE, lower, upper, GAP_S, ()).days == set(days)
        assert q.query(SITE, metrics=["visitors", "pageviews"], dimensions=["time:day"], filters=visit,
                       start_date=DAYS[0], end_date=DAYS[-1]).rows == after
    finally:
        store.close()


def test_events_joined_to_their_sessions_meet_those_that_reach_their_day(workdir: Path) -> None:
    """The events of a day whose attributed rows are not stored (a late event made them stale) are
    joined to the sessions that may last into that day only (``SessionRows.reaching``, from the stored
    partitions' windows): a session started two days before and lasting into it is one of them, and the
    answers stay those of the events."""
    start = _at(0, 20)  # an event every 25 minutes until 03:00 two days later: one session, 3 days
    marathon = [_event("m", start + timedelta(minutes=25 * i), "pageview", "/m", {"referrer_source": "Bing"},
                       True) for i in range(75)]
    visits = [_event(p, _at(d, 12), "pageview", "/", {"referrer_source": "Bing"}, True)
              for d in (1, 2, 3) for p in ("a", "b")]
    store = Store(workdir / "data")
    raw = None
    try:
        store.write_batch(marathon + visits)()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        store.write_batch([_event("late", _at(3, 13), "pageview", "/", {}, True)])()
        stored_days = attributed.for_days(store, SITE, _at(0), _at(4), GAP_S, ())
        assert DAYS[2] not in stored_days.days and DAYS[1] in stored_days.days
        sessions = stored.gather(store, store.reading, SITE, DAYS[2], DAYS[2], GAP_S, overlap=True)
        assert sessions.live is None or DAYS[0] not in sessions.live_days  # the marathon's file is fresh
        assert sessions.reaching(DAYS[2]) == DAYS[0] and sessions.reaching(DAYS[3]) == DAYS[3]
        assert replace(stored_days, reaching=sessions.reaching).since(_at(2)) == _at(0)
        q = _queries(store.data_dir, store)
        raw = _queries(_raw_copy(store.data_dir, workdir / "raw"))
        bing = [["is", "visit:source", ["Bing"]]]
        for first, last in ((DAYS[1], DAYS[2]), (DAYS[0], DAYS[3])):  # a stored day and a joined one
            rng = {"start_date": first, "end_date": last}
            got = q.query(SITE, metrics=["visitors", "pageviews"], dimensions=["event:page"], filters=bing,
                          **rng).rows
            assert got == raw.query(SITE, metrics=["visitors", "pageviews"], dimensions=["event:page"],
                                    filters=bing, **rng).rows
            assert q.properties(SITE, **rng, filters=bing).rows == raw.properties(SITE, **rng,
                                                                                  filters=bing).rows
        marathon_days = sum(e.timestamp.date() in (DAYS[1], DAYS[2]) for e in marathon)
        rows = q.query(SITE, metrics=["pageviews"], dimensions=["event:page"], filters=bing,
                       start_date=DAYS[1], end_date=DAYS[2]).rows
        assert {r["event:page"]: r["pageviews"] for r in rows} == {"/m": marathon_days, "/": 4}
    finally:
        store.close()
        if raw is not None:
            raw.close()


def test_an_open_day_stores_the_events_of_its_closed_sessions(workdir: Path) -> None:
    """At a horizon one visitor's session is closed and another's open (it started before midnight):
    the provisional file holds the closed session's events of the day, the reader joins the open one's
    (from its start: the file's ``since``) and those after the horizon, each event once."""
    horizon = _at(2, 2)
    google = {"referrer_source": "Google"}

    def person(name: str, start: datetime, minutes: list[int]) -> list[Event]:
        return [_event(name, start + timedelta(minutes=m), "pageview", f"/{name}/{m}", google, True)
                for m in minutes]

    store = Store(workdir / "data")
    raw = None
    try:
        store.write_batch(person("closed", _at(2, 0.2), [0, 5, 20])
                          + person("open", _at(2) - timedelta(minutes=20), list(range(0, 140, 20))))()
        part = attributed.build_open(store, SITE, DAYS[2], GAP_S, horizon)
        assert part is not None and part.horizon == horizon
        assert part.since == _at(2) - timedelta(minutes=20)  # the open session's start, the day before
        assert part.first == DAYS[0] and part.last == DAYS[2]
        rows = pq.read_table(part.path).to_pylist()
        assert sorted(r["pathname"] for r in rows) == ["/closed/0", "/closed/20", "/closed/5"]
        assert attributed.build_open(store, SITE, DAYS[3], GAP_S, horizon) is None  # after the horizon
        store.write_batch(person("open", _at(2) - timedelta(minutes=20), [140, 150])
                          + person("new", horizon + timedelta(minutes=1), [0, 1]))()
        got = attributed.for_days(store, SITE, _at(2), _at(3), GAP_S, (), None)
        assert got.files == (part.path,) and not got.days
        assert got.opened == ((DAYS[2], part.since, horizon - timedelta(seconds=GAP_S)),)
        assert not attributed.for_days(store, SITE, _at(2), _at(3), GAP_S, {DAYS[2]},
                                       horizon - timedelta(seconds=1)).files  # buffered before it
        q = _queries(store.data_dir, store)
        raw = _queries(_raw_copy(store.data_dir, workdir / "raw"))
        only = [["is", "visit:source", ["Google"]]]
        for first, last in ((DAYS[2], DAYS[2]), (DAYS[1], DAYS[2])):
            rng = {"start_date": first, "end_date": last}
            for dims in (["event:page"], ["time:hour"]):
                got_rows = q.query(SITE, metrics=["visitors", "pageviews"], dimensions=dims, filters=only,
                                   **rng).rows
                assert got_rows == raw.query(SITE, metrics=["visitors", "pageviews"], dimensions=dims,
                                             filters=only, **rng).rows
            assert q.flow(SITE, "/closed/0", filters=only, **rng).to_dict() == raw.flow(
                SITE, "/closed/0", filters=only, **rng).to_dict()
        # the range's visits from Google: the closed one, the open one (started the day before, all its
        # events), the new one
        both = q.query(SITE, metrics=["pageviews"], filters=only, start_date=DAYS[1], end_date=DAYS[2]).rows
        assert both == [{"pageviews": 3 + 9 + 2}]
    finally:
        store.close()
        if raw is not None:
            raw.close()
