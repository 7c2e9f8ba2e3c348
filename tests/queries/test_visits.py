"""Per-day rows of the sessions by visit attribute (visits.py): what a stored day holds, when a query
reads them, and that its answers are those of the sessions (and of raw events) either way.

The property test of test_stored_sessions.py checks them too, on generated traffic, through every step
(built, late events, compaction, erasure, rebuilt).
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mallard._events import Event
from mallard._queries import Queries, backfill, visits
from mallard._store import Store

from .conftest import spoil
from .test_stored_sessions import DAYS, GAP_S, SITE, TODAY, _event, _queries, _raw_copy

METRICS = ["visitors", "pageviews", "events"]


def _at(day_index: int, hours: float) -> datetime:
    return datetime.combine(DAYS[day_index], datetime.min.time()) + timedelta(hours=hours)


def _session(person: str, start: datetime, source: str, n: int = 2) -> list[Event]:
    """``n`` pageviews ten minutes apart from ``start``, all from ``source`` (daily ids)."""
    return [_event(person, start + timedelta(minutes=10 * i), "pageview", "/", {"referrer_source": source},
                   False) for i in range(n)]


def _midnight_traffic() -> list[Event]:
    """``a``: a session from 23:50 into the next day, then another that day, both from Google (its key of
    that day is in two start days' Google sessions); ``b`` likewise, but its second visit is from Bing;
    ``c``: one visit two days later."""
    return [*_session("a", _at(1, 23.9), "Google"), *_session("a", _at(2, 12), "Google"),
            *_session("b", _at(1, 23.9), "Google"), *_session("b", _at(2, 12), "Bing", 3),
            *_session("c", _at(3, 9), "Bing")]


def _by_value(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], tuple[int, int]]:
    """(visitors, carried) by (dimension, value)."""
    return {(r["dimension"], r["value"]): (r["visitors"], r["carried"]) for r in rows}


def _answers(q: Queries) -> dict[str, Any]:
    out = {}
    for lo, hi in ((DAYS[0], DAYS[5]), (DAYS[1], DAYS[3]), (DAYS[2], DAYS[3]), (DAYS[2], DAYS[2])):
        rng: dict[str, Any] = {"start_date": lo, "end_date": hi}
        out[f"source {lo} {hi}"] = q.query(SITE, metrics=METRICS, dimensions=["visit:source"], **rng).rows
        out[f"google {lo} {hi}"] = q.query(SITE, metrics=METRICS, dimensions=["visit:source"],
                                           filters=[["is", "visit:source", ["Google"]]], **rng).rows
        out[f"entry {lo} {hi}"] = q.query(SITE, metrics=["visitors", "visits", "bounce_rate"],
                                          dimensions=["visit:entry_page"], **rng).rows
    return out


def _same_as_raw(store: Store, work: Path) -> dict[str, Any]:
    q, raw = _queries(store.data_dir, store), _queries(_raw_copy(store.data_dir, work / "raw"))
    try:
        mine, theirs = _answers(q), _answers(raw)
    finally:
        raw.close()
    assert mine == theirs
    return mine


def _read(store: Store) -> visits.VisitRows | None:
    """The rows a query of visit:source over the six days reads, and whether they add up."""
    with store.reading(SITE, DAYS[0], DAYS[5]) as reader:
        got = visits.rows_for(store, store.reading, reader, SITE, _at(0, 0), _at(5, 24), "visit:source",
                              GAP_S, cache=None)
        assert got is not None and visits.exact(reader, got)
        return got


def test_a_key_carried_over_midnight_counts_once(workdir: Path) -> None:
    """A day's row counts the keys its sessions share with the day before's (same value) as carried, and
    a range counts them once: a's second day's id is in two days' Google sessions."""
    store = Store(workdir / "data")
    try:
        store.write_batch(_midnight_traffic())()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        listing = store.visit_files.listing(SITE)
        assert sorted(listing) == store.lake.dates(SITE)
        second = _by_value(pq.read_table(listing[DAYS[2]].path).to_pylist())
        assert second["visit:source", "Google"] == (1, 1) and second["visit:source", "Bing"] == (1, 0)
        assert second["", None] == (2, 2)
        total = next(r for r in pq.read_table(listing[DAYS[2]].path).to_pylist() if r["dimension"] == "")
        assert len(total["visitor_keys"]) == 2 and total["pageviews"] == 5
        first = _by_value(pq.read_table(listing[DAYS[1]].path).to_pylist())
        assert first["visit:source", "Google"] == (4, 0)  # a's and b's ids of both days
        got = _read(store)
        assert got is not None and not got.live_days  # the stored rows answer, and add up
        answers = _same_as_raw(store, workdir)
        by_source = {r["visit:source"]: r["visitors"] for r in answers[f"source {DAYS[0]} {DAYS[5]}"]}
        assert by_source == {"Google": 4, "Bing": 2}  # a and b: two daily ids each; b and c from Bing
    finally:
        store.close()


def test_days_not_stored_are_computed_from_the_sessions(workdir: Path) -> None:
    """A day whose rows are missing (or stale) is computed by the query from its sessions and the day
    before's, with the same carried keys."""
    store = Store(workdir / "data")
    try:
        store.write_batch(_midnight_traffic())()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        os.unlink(store.visit_files.listing(SITE)[DAYS[2]].path)
        got = _read(store)
        assert got is not None and got.live_days == {DAYS[2]} and got.live is not None
        assert _by_value(got.live.to_pylist())["visit:source", "Google"] == (1, 1)
        _same_as_raw(store, workdir)
    finally:
        store.close()


def test_a_session_over_two_midnights_reads_the_sessions(workdir: Path) -> None:
    """A session lasting from one evening to the second morning after carries three days' ids into its
    start day; one of them also starts a visit two days later: the days do not add up, and the query
    reads the sessions instead (same answers)."""
    marathon = [_event("m", _at(1, 22) + timedelta(minutes=25 * i), "pageview", "/",
                       {"referrer_source": "Google"}, False) for i in range(int(27 * 60 / 25))]
    store = Store(workdir / "data")
    try:
        store.write_batch([*_midnight_traffic(), *marathon, *_session("m", _at(3, 15), "Google")])()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        with store.reading(SITE, DAYS[0], DAYS[5]) as reader:
            got = visits.rows_for(store, store.reading, reader, SITE, _at(0, 0), _at(5, 24), "visit:source",
                                  GAP_S, cache=None)
            assert got is not None and not visits.exact(reader, got)
        _same_as_raw(store, workdir)
    finally:
        store.close()


def test_rows_computed_for_a_day_serve_while_its_sessions_do(workdir: Path, monkeypatch: Any) -> None:
    """The rows of the days not stored are computed once while the session rows they come from serve,
    and again once those change (a late event)."""
    store = Store(workdir / "data")
    computed: list[list[date]] = []
    real = visits.rows

    def counted(source: str, days: Any, dimensions: Any) -> Any:
        computed.append(list(days))
        return real(source, days, dimensions)

    try:
        store.write_batch([*_midnight_traffic(), *_session("e", _at(5, 10), "Bing")])()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        for day in DAYS[1:4]:  # as a late event into the second day will make them
            os.unlink(store.visit_files.listing(SITE)[day].path)
        monkeypatch.setattr(visits, "rows", counted)
        q = _queries(store.data_dir, store)
        ask = {"metrics": METRICS, "dimensions": ["visit:source"], "start_date": DAYS[0], "end_date": DAYS[5]}
        first = q.query(SITE, **ask).rows
        assert q.query(SITE, **ask).rows == first and computed == [DAYS[1:4]]
        store.write_batch(_session("d", _at(2, 18), "Google"))()
        later = q.query(SITE, **ask).rows
        assert computed == [DAYS[1:4], DAYS[1:4]]
        assert {r["visit:source"]: r["visitors"] for r in later}["Google"] == 5
    finally:
        store.close()


def test_an_unreadable_file_is_answered_from_the_sessions(workdir: Path) -> None:
    """A damaged visit rows file does not fail the question: it is answered from the sessions (the same
    as raw), and the file deleted for maintenance to build again."""
    store = Store(workdir / "data")
    try:
        store.write_batch(_midnight_traffic())()
        backfill.build_settled(store, GAP_S, today=TODAY, budget_secs=60)
        victim = spoil(store.visit_files.listing(SITE)[DAYS[2]].path)
        _same_as_raw(store, workdir)
        assert not victim.exists()
    finally:
        store.close()
