"""The ClickHouse engine (``engine="clickhouse"``): opening it, the process's buffered events, damaged
files, raw SQL, threads. Its answers against DuckDB's for every query shape:
test_clickhouse_differential.py."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import mallard
from mallard import ConfigurationError, Mallard
from mallard._queries import Queries, backfill
from mallard._queries.clickhouse import ClickHouseReader, engine_for
from mallard._settings import Settings
from mallard._store import Store
from tests.lake_damage import SITE, build_lake, garble

from .conftest import spoil

pytestmark = pytest.mark.slow  # ClickHouse (chdb)

DAYS = [date(2024, 4, 28), date(2024, 4, 29), date(2024, 4, 30)]
RANGE = {"start_date": "2024-04-25", "end_date": "2024-05-01"}


def _lake(tmp_path: Path) -> Path:
    store = Store(tmp_path / "data")
    try:
        build_lake(store, DAYS)
    finally:
        store.close()
    return tmp_path / "data"


def _answers(q: Queries) -> dict[str, object]:
    return {"main": q.main(SITE, **RANGE).to_dict(),
            "pages": q.breakdown(SITE, "pages", metrics=["visitors", "visits"], **RANGE).to_dict(),
            "funnel": q.funnel(SITE, ["page:/a", "page:/b"], **RANGE).to_dict(),
            "flow": q.flow(SITE, "/a", **RANGE).to_dict()}


def test_open_with_the_clickhouse_engine(tmp_path: Path) -> None:
    data = _lake(tmp_path)
    with mallard.open(data) as duck, mallard.open(data, engine="clickhouse") as ch:
        assert _answers(ch) == _answers(duck)
        assert duck.main(SITE, **RANGE).unique_visitors > 0


def test_the_engine_setting(tmp_path: Path) -> None:
    assert engine_for(Settings(data_dir=tmp_path)) is None
    assert engine_for(Settings(data_dir=tmp_path, engine="clickhouse")) is not None
    with pytest.raises(ConfigurationError, match="engine must be one of duckdb, clickhouse; got 'spark'"):
        mallard.open(tmp_path, engine="spark")
    with pytest.raises(ConfigurationError, match="wildcards"):
        engine_for(Settings(data_dir=tmp_path / "a{b}", engine="clickhouse"))
    assert engine_for(Settings(lake_url="s3://bucket/lake", engine="clickhouse")) is not None


def test_buffered_events_are_counted(tmp_path: Path) -> None:
    """A Mallard on the ClickHouse engine answers with its not-yet-flushed events, as on DuckDB."""
    now = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    with Mallard(data_dir=tmp_path / "data", engine="clickhouse", flush_event_count=10_000,
                 flush_interval_secs=3600, clock=lambda: now) as m:
        for i in range(30):
            m.track("pageview", site="b.test", url=f"https://b.test/{i % 4}", ip=f"10.0.0.{i % 7}",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
                    timestamp=datetime(2024, 5, 2, 11, i, tzinfo=UTC))
        assert isinstance(m.queries, Queries)
        duck = Queries(m.store, m.settings.replace(engine="duckdb"),
                       buffer=lambda: m._ingestion.current_buffer(), clock=lambda: now)
        for q in (m.queries, duck):
            assert q.main("b.test", period="day").total_pageviews == 30
        assert m.queries.breakdown("b.test", "pages", period="day").to_dict() == \
            duck.breakdown("b.test", "pages", period="day").to_dict()
        assert m.queries.current_visitors("b.test") == duck.current_visitors("b.test")


def test_a_damaged_lake_file_is_left_out(tmp_path: Path) -> None:
    """Quarantined as on DuckDB; the answer is that of the other files."""
    store = Store(tmp_path / "data")
    files = build_lake(store, DAYS)
    store.close()
    garble(files[DAYS[1]])
    with mallard.open(tmp_path / "data", engine="clickhouse", quarantine_grace_secs=0) as ch:
        damaged = ch.main(SITE, **RANGE).to_dict()
    files[DAYS[1]].unlink(missing_ok=True)
    with mallard.open(tmp_path / "data") as duck:
        assert damaged == duck.main(SITE, **RANGE).to_dict()


def test_a_damaged_stored_file_is_answered_from_events(tmp_path: Path) -> None:
    data = _lake(tmp_path)
    store = Store(data)
    assert backfill.build_settled(store, 1800, today=date(2024, 5, 10), budget_secs=60).built
    store.close()
    with mallard.open(data) as duck:
        expected = _answers(duck)
    for path in (data / "sessions").rglob("*.parquet"):
        spoil(path)
    with mallard.open(data, engine="clickhouse") as ch:
        assert _answers(ch) == expected


def test_raw_sql_is_duckdb_sql(tmp_path: Path) -> None:
    """``sql()`` runs the caller's SQL, DuckDB's, whatever the engine."""
    with mallard.open(_lake(tmp_path), engine="clickhouse") as ch:
        table = ch.sql("SELECT list_sort(list(DISTINCT pathname)) AS pages FROM events", site=SITE)
    assert table.column(0)[0].as_py() == ["/a", "/b", "/c", "/d"]


def test_threads_share_one_engine(tmp_path: Path) -> None:
    data = _lake(tmp_path)
    with mallard.open(data) as duck:
        expected = _answers(duck)
    with mallard.open(data, engine="clickhouse") as ch:
        got: list[object] = []

        def ask() -> None:
            got.append(_answers(ch))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [expected] * 4
        ch.close()  # and it opens again
        assert _answers(ch) == expected


def test_readers_are_clickhouse_readers(tmp_path: Path) -> None:
    with mallard.open(_lake(tmp_path), engine="clickhouse") as ch, \
            ch.access.reading(SITE, DAYS[0], DAYS[-1]) as reader:
        assert isinstance(reader, ClickHouseReader)
        assert len(reader.files) == 3
        src, params = reader.source()
        assert reader.execute(f"SELECT count(*) FROM ({src}) WHERE site_id = ?", [*params, SITE]) \
            .column(0)[0].as_py() > 0


def test_the_http_api_on_the_clickhouse_engine(tmp_path: Path) -> None:
    """``Mallard(engine="clickhouse")`` answers the stats routes (and the dashboard's view) as on DuckDB."""
    from mallard._http import Api, Request

    data = _lake(tmp_path)
    dates = f"site_id={SITE}&start_date=2024-04-25&end_date=2024-05-01"
    paths = [("/api/stats/main", dates), ("/api/stats/breakdown/pages", dates), ("/api/stats/view", dates),
             ("/api/stats/funnel", f"{dates}&steps=page:/a,page:/b")]
    bodies: list[list[tuple[int, bytes]]] = []
    for engine in ("duckdb", "clickhouse"):
        with Mallard(data_dir=data, engine=engine) as m:
            api = Api.for_mallard(m)
            bodies.append([(r.status, r.body) for r in (
                api.handle(Request("GET", path, query, {"host": "127.0.0.1:8000"}, client="127.0.0.1"))
                for path, query in paths)])
    assert bodies[0] == bodies[1]
    assert [status for status, _ in bodies[0]] == [200, 200, 200, 200]
    assert json.loads(bodies[1][0][1])["unique_visitors"] > 0
