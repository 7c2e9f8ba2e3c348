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
from datetime import date, datetime
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


@pytest.fixture(scope="module", params=["events", "stored"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Queries,
                                                                                                        Queries]]:
    """Both engines over one lake of generated traffic; ``stored``: with the settled days' derived files."""
    data_dir = write(tmp_path_factory.mktemp("ch-lake"), traffic(random.Random(13)), seed=1)
    if request.param == "stored":
        store = Store(data_dir)
        assert backfill.build_settled(store, GAP_S, today=date(2024, 5, 10), budget_secs=120).built
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
