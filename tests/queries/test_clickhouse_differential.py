"""The ClickHouse engine answers every query shape as the DuckDB engine does (issue 13).

Generated traffic (clickhouse_traffic.py) is written to a lake; a ``Queries`` per engine reads it, and
every shape (presets, each dimension and breakdown, filters of every operator, goals, behaviour
filters, time series in four intervals and three time zones, comparisons, funnels, sequences,
retention, flow, property lists, exports) must give the same result: exactly, but for floating-point
sums added in another order (1e-9). Twice: from events alone, and with the settled days' sessions,
rollups and attributed events stored (maintenance's files, which ClickHouse then reads). A property
test draws other traffic for a subset of shapes. chdb is real: these are slow tests.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._events import Event
from mallard._queries import Queries, backfill
from mallard._settings import Settings
from mallard._store import Store

from .clickhouse_traffic import GAP_S, SITE, Shape, shapes, traffic
from .dialect_check import same

pytestmark = pytest.mark.slow  # ClickHouse (chdb) runs every statement

SHAPES = shapes()
NOW = datetime(2024, 5, 3, 18, 0)  # the last day is open (realtime sees its last minutes: none)


def write(data_dir: Path, events: list[Event], seed: int) -> Path:
    """Write ``events`` shuffled, in two batches (several files per partition)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    rows = list(events)
    random.Random(seed).shuffle(rows)
    store = Store(data_dir)
    try:
        for batch in (rows[:len(rows) // 2], rows[len(rows) // 2:]):
            if batch:
                store.write_batch(batch)()
    finally:
        store.close()
    return data_dir


def engines(data_dir: Path) -> tuple[Queries, Queries]:
    """(DuckDB, ClickHouse) queries over ``data_dir``, with the site's goals."""
    out = []
    for engine in ("duckdb", "clickhouse"):
        q = Queries(Store(data_dir, read_only=True), Settings(data_dir=data_dir, engine=engine),
                    clock=lambda: NOW.astimezone())
        out.append(q)
    if not out[0].goals.list(SITE):
        out[0].goals.add(SITE, event_name="signup", display_name="Signup")
        out[0].goals.add(SITE, page_path="/blog/*", display_name="Blog")
        out[0].goals.add(SITE, event_name="Purchase", currency="EUR")
        out[0].goals.add_segment(SITE, "Mobile from Google", [["is", "visit:device", ["mobile"]],
                                                              ["is", "visit:source", ["Google"]]])
    return out[0], out[1]


def answer(q: Queries, shape: Shape) -> object:
    """The shape's result, or the error it raises (the engines must fail alike too)."""
    try:
        return shape(q)
    except Exception as exc:  # compared across engines
        return ("error", type(exc).__name__)


@pytest.fixture(scope="module", params=["events", "stored", "open"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Queries,
                                                                                                        Queries]]:
    """Both engines over one lake of generated traffic; ``stored``: with the settled days' derived files;
    ``open``: with those of the days settled by NOW, the last two computed by each query."""
    data_dir = write(tmp_path_factory.mktemp("ch-lake"), traffic(random.Random(13)), seed=1)
    if request.param != "events":
        store = Store(data_dir)
        today = date(2024, 5, 10) if request.param == "stored" else NOW.date()
        assert backfill.build_settled(store, GAP_S, today=today, budget_secs=120).built
        store.close()
        assert any((data_dir / "attributed").rglob("*.parquet"))
    duck, ch = engines(data_dir)
    yield duck, ch
    duck.close()
    ch.close()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_same_answers(pair: tuple[Queries, Queries], name: str) -> None:
    duck, ch = pair
    expected = answer(duck, SHAPES[name])
    assert same(answer(ch, SHAPES[name]), expected), f"{name}: DuckDB gave {str(expected)[:2000]}"


PROPERTY_SHAPES = sorted(n for n in SHAPES if n in (
    "main", "sessions", "breakdown sources by visit", "breakdown pages", "timeseries hour Europe/Berlin",
    "timeseries week UTC", "funnel / source and country", "funnel repeated step", "sequence",
    "retention / page", "flow / entry page", "flow previous", "v2 goals", "properties / has done",
    "breakdown entry-pages by visit", "query visit:exit_page_hostname", "main / has not done"))


@pytest.mark.heavy
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rnd=st.randoms(use_true_random=False), people=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_same_answers_on_drawn_traffic(tmp_path: Path, rnd: random.Random, people: int, seed: int) -> None:
    duck, ch = engines(write(tmp_path / "lake", traffic(rnd, people), seed))
    try:
        for name in PROPERTY_SHAPES:
            expected = answer(duck, SHAPES[name])
            assert same(answer(ch, SHAPES[name]), expected), f"{name}: DuckDB gave {str(expected)[:2000]}"
    finally:
        duck.close()
        ch.close()


def test_every_shape_answers(pair: tuple[Queries, Queries]) -> None:
    """The comparisons are not of two failures: DuckDB answers every shape."""
    duck, _ = pair
    assert [n for n in SHAPES if isinstance(r := answer(duck, SHAPES[n]), tuple) and r[0] == "error"] == []


def test_an_id_on_a_settled_day_and_an_open_day_is_counted_once(tmp_path: Path) -> None:
    """Visitors add up over the stored rollups only while no id occurs on two days: checked for the
    settled days' files, then for the days computed by the query against them. A visitor of the first
    (settled) day coming back on the last (open) day under the same id is one visitor, on both engines."""
    days = [date(2024, 5, 1) + timedelta(days=i) for i in range(5)]
    data_dir = write(tmp_path / "lake", [
        Event(site_id=SITE, visitor_id=f"v{i}-{day}", event_name="pageview", pathname=f"/{i % 3}",
              timestamp=datetime.combine(day, datetime.min.time()) + timedelta(hours=i))
        for day in days for i in range(5)], seed=1)
    store = Store(data_dir)
    assert backfill.build_settled(store, GAP_S, today=days[-1], budget_secs=120).built  # 3 settled
    store.close()
    rng = {"start_date": str(days[0]), "end_date": str(days[-1])}
    for back, visitors in ((False, 25), (True, 25)):
        if back:
            store = Store(data_dir)
            back_at = datetime.combine(days[-1], datetime.min.time()) + timedelta(hours=20)
            store.write_batch([Event(site_id=SITE, visitor_id=f"v0-{days[0]}", event_name="pageview",
                                     pathname="/back", timestamp=back_at)])()
            store.close()
        duck, ch = engines(data_dir)
        try:
            for q in (duck, ch):
                assert q.query(SITE, metrics=["visitors"], **rng).rows == [{"visitors": visitors}], back
                rows = q.query(SITE, metrics=["visitors"], dimensions=["event:page"], **rng).rows
                assert sum(r["visitors"] for r in rows) == visitors + back  # /0 and /back share a visitor
        finally:
            duck.close()
            ch.close()
