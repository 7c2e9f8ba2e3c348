"""Fixtures of the query tests: the hand-made lake of ``data.py`` and read-only Queries over it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mallard._events import Event
from mallard._queries import Queries
from mallard._settings import Settings
from mallard._store import Store

from .data import dataset, noise, write_lake

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)  # "today" is 2024-05-02, the dataset's second day

QueriesFactory = Callable[..., Queries]


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding ``dataset()`` and ``noise()`` (shared; never written to by tests)."""
    return write_lake(tmp_path_factory.mktemp("lake"), [*dataset(), *noise()])


@pytest.fixture(scope="session")
def open_queries() -> Iterator[QueriesFactory]:
    """``open_queries(data_dir, now=..., **settings)``: read-only Queries with a frozen clock."""
    stores: list[Store] = []

    def factory(data_dir: Path, *, now: datetime = NOW, **options: object) -> Queries:
        store = Store(data_dir, read_only=True)
        stores.append(store)
        return Queries(store, Settings(data_dir=data_dir, **options),  # type: ignore[arg-type]
                       clock=lambda: now)

    yield factory
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def queries(lake: Path, open_queries: QueriesFactory) -> Queries:
    """Queries over the shared lake; today is 2024-05-02 (UTC)."""
    return open_queries(lake)


@pytest.fixture
def make_queries(tmp_path: Path, open_queries: QueriesFactory) -> Callable[..., Queries]:
    """``make_queries(events, now=..., **settings)``: Queries over a fresh lake holding ``events``."""
    counter = iter(range(1_000_000))

    def factory(events: list[Event], **kwargs: object) -> Queries:
        data_dir = write_lake(tmp_path / f"lake{next(counter)}", events)
        return open_queries(data_dir, **kwargs)

    return factory


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch directory, deleted afterwards (hypothesis examples reuse it: rmtree what you make)."""
    path = tmp_path_factory.mktemp("work")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def spoil(path: str | Path) -> Path:
    """Overwrite a stored derived file (sessions, rollups) with bytes no Parquet reader decodes."""
    spoiled = Path(path)
    spoiled.write_bytes(b"PAR1 this is not a parquet file PAR1")
    return spoiled
