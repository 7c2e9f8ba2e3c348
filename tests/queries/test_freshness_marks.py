"""What a query computes from this process's buffered events is kept with the buffer's mark and serves
only readings holding the very same events: a new event, a flush or an erasure of buffered events is
seen by the next query (freshness.py, mallard/_buffer.py ``marked_snapshot``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import mallard
from mallard._queries import Queries
from mallard._queries.freshness import Computed, LiveCache, Same
from mallard._store.derived import fingerprint
from tests.conftest import FrozenClock

SITE = "example.com"
NOW = datetime(2024, 5, 10, 15, 0, tzinfo=UTC)
RANGE = {"start_date": "2024-05-01", "end_date": "2024-05-10"}
SOURCES = ["https://www.google.com/", "https://news.ycombinator.com/", None]


def _answers(q: Queries) -> dict[str, Any]:
    """What a dashboard view asks: totals, visit metrics, a session breakdown, event breakdowns."""
    return {
        "main": q.main(SITE, **RANGE).values,
        "pages": q.breakdown(SITE, "pages", **RANGE).rows,
        "sources": q.breakdown(SITE, "sources", **RANGE).rows,
        "by page": q.query(SITE, metrics=["visitors", "pageviews"], dimensions=["event:page"], **RANGE).rows,
        "visitors": q.query(SITE, metrics=["visitors"], **RANGE).rows,
    }


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[mallard.Mallard, Callable[[str, datetime, int], None]]]:
    """A lake of ten days, the settled ones stored, and today's events held in the buffer."""
    m = mallard.Mallard(data_dir=tmp_path / "data", flush_interval_secs=3600, flush_event_count=10**9,
                        filter_bots=False, clock=FrozenClock(NOW))

    def track(path: str, when: datetime, who: int) -> None:
        assert m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip=f"192.0.2.{who}",
                       timestamp=when, referrer=SOURCES[who % 3],
                       user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")

    for day in range(1, 11):
        for who in range(1, 6):
            track(f"/p{who % 3}", datetime(2024, 5, day, 9 + who, tzinfo=UTC), who + day)
    assert m.flush() == 50
    m.build_sessions()
    try:
        yield m, track
    finally:
        m.close()


def test_answers_follow_the_buffer_through_new_events_erasure_and_flush(
        app: tuple[mallard.Mallard, Callable[[str, datetime, int], None]]) -> None:
    """At each step the process's queries (their computations kept) answer as a fresh Queries object
    over the same lake and buffer does: nothing computed from other buffered events is served."""
    m, track = app

    def fresh() -> dict[str, Any]:
        q = Queries(m.store, m.settings, buffer=m._ingestion.current_buffer, clock=lambda: NOW)
        try:
            return _answers(q)
        finally:
            q.close()

    steps: list[tuple[str, Callable[[], object]]] = [
        ("an event held", lambda: track("/held", NOW - timedelta(hours=1), 40)),
        ("the same events", lambda: None),
        ("another held", lambda: track("/later", NOW - timedelta(minutes=30), 41)),
        ("held ones erased", lambda: m.erase(SITE, date(2024, 5, 10), date(2024, 5, 10))),
        ("a new one held", lambda: track("/again", NOW - timedelta(minutes=10), 42)),
        ("flushed", m.flush),
    ]
    seen = []
    for name, step in steps:
        step()
        got = _answers(m.queries)
        assert got == fresh(), name
        assert _answers(m.queries) == got, f"{name}, asked again"
        seen.append(got["visitors"][0]["visitors"])
    assert seen[0] == seen[1] and seen[2] == seen[1] + 1 and seen[3] < seen[2] and seen[4] == seen[3] + 1


def _computed(mark: int | None, store: Any) -> Computed:
    """Rows of today computed from its files as they are (and buffered events under ``mark``)."""
    files = store.lake.files(SITE, date(2024, 5, 10), date(2024, 5, 10))
    return Computed(pa.table({"n": [1]}), SITE, date(2024, 5, 10), date(2024, 5, 10), files,
                    fingerprint(files, 1), mark)


def test_a_computation_with_buffered_events_serves_their_mark_only(
        app: tuple[mallard.Mallard, Callable[[str, datetime, int], None]]) -> None:
    m, _ = app
    today = {date(2024, 5, 10)}
    cache = LiveCache()
    cache.put("held", _computed(7, m.store), today)
    assert cache.get("held", m.store, 1, today, 7) is not None
    assert cache.get("held", m.store, 1, today, 8) is None  # other buffered events
    assert cache.get("held", m.store, 1, set(), None) is None  # none: they were erased or stored
    cache.put("files", _computed(None, m.store), set())
    assert cache.get("files", m.store, 1, set(), 3) is not None
    assert cache.get("files", m.store, 1, today, 3) is None  # computed without today's held events
    cache.put("unmarked", _computed(None, m.store), today)  # read held events without a mark: not kept
    assert cache.get("unmarked", m.store, 1, set(), None) is None


def test_a_lasting_fact_is_established_once_for_every_process(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A fact about stored files (whose names change with their content), kept in ``lasting``, is known
    to the next LiveCache over the same directory (another worker, the next server) without being
    established again; other facts are not kept; a read-only one keeps nothing; the oldest go beyond
    the limit."""
    facts = tmp_path / "facts"
    asked: list[str] = []

    def establish(name: str, value: bool) -> Callable[[], bool]:
        return lambda: asked.append(name) or value

    first = LiveCache(lasting=facts)
    assert first.fact(("day_local", ("a.parquet", "b.parquet")), establish("ab", True), lasting=True)
    assert not first.fact(("visits_exact", ("c.parquet",)), establish("c", False), lasting=True)
    assert first.fact(("day_local_open", "x"), establish("x", True))  # not lasting
    second = LiveCache(lasting=facts)
    assert second.fact(("day_local", ("a.parquet", "b.parquet")), establish("ab", False), lasting=True)
    assert not second.fact(("visits_exact", ("c.parquet",)), establish("c", True), lasting=True)
    assert second.fact(("day_local_open", "x"), establish("x", True))
    assert asked == ["ab", "c", "x", "x"]
    reader_only = LiveCache(lasting=facts, writable=False)
    assert reader_only.fact(("day_local", ("a.parquet",)), establish("a", True), lasting=True)
    assert len(list(facts.iterdir())) == 2  # established, not kept
    monkeypatch.setattr("mallard._queries.freshness.LASTING", 3)
    for i in range(5):
        first.fact(("day_local", (f"{i}.parquet",)), establish(str(i), True), lasting=True)
    assert len(list(facts.iterdir())) == 3


def test_rows_derived_from_a_computed_table_serve_while_it_lives_and_keep_it_not() -> None:
    """LiveCache.derived keyed by Same(table): the rows serve the very same table, not an equal one,
    and remembering them does not keep the table alive."""
    cache = LiveCache()
    made: list[int] = []

    def make() -> pa.Table:
        made.append(1)
        return pa.table({"n": [len(made)]})

    table = pa.table({"x": [1, 2]})
    assert cache.derived(("v", Same(table)), make).column("n").to_pylist() == [1]
    assert cache.derived(("v", Same(table)), make).column("n").to_pylist() == [1]  # remembered
    assert cache.derived(("v", Same(pa.table({"x": [1, 2]}))), make).column("n").to_pylist() == [2]
    alive = weakref.ref(table)
    del table
    gc.collect()
    assert alive() is None  # the remembered key did not keep it
    gone = Same(pa.table({"x": [3]}))  # its table is gone at once: the key matches nothing, itself neither
    assert gone != gone and hash(gone) == hash(gone)
