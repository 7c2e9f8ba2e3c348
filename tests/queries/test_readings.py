"""Readings: the Store's reading with the buffered events, its statements run by the chosen engine."""

from __future__ import annotations

from pathlib import Path

from mallard._queries.clickhouse import ClickHouseReader
from mallard._queries.readings import Readings
from mallard._settings import Settings
from mallard._store import Reader, Store


def test_the_engine_runs_the_readings(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    try:
        duck = Readings(store, lambda: None, Settings(data_dir=tmp_path / "data"))
        ch = Readings(store, lambda: None, Settings(data_dir=tmp_path / "data", engine="clickhouse"))
        with duck.open(None, None, None) as a, ch.open(None, None, None) as b, \
                ch.duckdb(None, None, None) as c:
            assert type(a) is Reader and isinstance(b, ClickHouseReader) and type(c) is Reader
            assert b.files == a.files == () and b.buffered_dates() == set() and b.buffered_since() is None
        duck.close()
        ch.close()  # no connection opened: nothing to close
    finally:
        store.close()
