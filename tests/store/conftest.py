"""Fixtures and helpers of the Store tests (tests/store/)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mallard import Store
from mallard._events import Event

from ..factories import BASE_TIME

ROOT = Path(__file__).resolve().parents[2]
DAY = BASE_TIME.date()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    try:
        yield s
    finally:
        s.close()


def read_all(store: Store, site: str | None = None, first: date | None = None,
             last: date | None = None) -> list[dict[str, Any]]:
    with store.reading(site, first, last) as reader:
        src, params = reader.source()
        return reader.execute(f"{src} ORDER BY timestamp, pathname", params).to_pylist()


def count(store: Store, site: str | None = None) -> int:
    with store.reading(site, None, None) as reader:
        src, params = reader.source()
        n = reader.execute(f"SELECT count(*) AS n FROM ({src})", params).column(0)[0].as_py()
        assert isinstance(n, int)
        return n


def store_events(store: Store, events: Sequence[Event]) -> None:
    store.write_batch(events)()


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def visible_files(root: Path) -> list[Path]:
    return [p for p in parquet_files(root) if not p.name.startswith(".")]


def partition_dir(store: Store, site: str, day: date) -> Path:
    enc = site.replace(":", "%3A")
    return store.events_dir / f"site_id={enc}" / f"date={day.isoformat()}"


def as_row(event: Event) -> dict[str, Any]:
    return dict(event._asdict())


