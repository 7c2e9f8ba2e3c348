"""Shared fixtures: a frozen, advanceable clock, a temporary data directory and a Mallard over one."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mallard

from .s3server import S3Server, seaweedfs

#: The instant every frozen clock starts at: a Wednesday, mid-day UTC.
START: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FrozenClock:
    """A clock for injection (``clock=`` arguments): returns a fixed UTC instant until advanced."""

    def __init__(self, now: datetime = START) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new time."""
        self.now += (delta or timedelta()) + timedelta(**kwargs)
        return self.now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (naive values are taken as UTC); returns it."""
        self.now = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at :data:`START`."""
    return FrozenClock()


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """An empty, existing data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def m(tmp_path: Path) -> Iterator[mallard.Mallard]:
    """A Mallard over an empty data directory, closed after the test (modules needing another one
    define their own ``m``)."""
    instance = mallard.Mallard(data_dir=tmp_path / "data")
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Generator[S3Server, None, None]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for this test session (one per xdist worker); tests
    write under a prefix of their own in its bucket (:data:`tests.s3server.BUCKET`)."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Let Hypothesis report a failing example instead of an INTERNALERROR.

    To print a failing example Hypothesis imports libcst, which warns (DeprecationWarning, attributed to
    libcst) while being imported; under ``filterwarnings = error`` that warning replaces the real failure.
    Import it quietly first, and only after a failure, so passing runs pay nothing.
    """
    if call.excinfo is not None and "hypothesis.extra._patching" not in sys.modules:
        with warnings.catch_warnings(), contextlib.suppress(ImportError):
            warnings.simplefilter("ignore", DeprecationWarning)
            import hypothesis.extra._patching  # noqa: F401
    return (yield)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the modules holding a test marked ``heavy`` (minutes each) first, the others by their number
    of tests (most first); each module's tests keep their order.

    scripts/test runs the suite on xdist workers by module (``--dist loadscope``), handing modules out
    in this order (``--no-loadscope-reorder``: xdist's own order is by number of tests only, which
    left the property tests of a few tests each, four to five minutes apiece, to start last and finish
    alone on one worker while the others idled).
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def order(tests: list[pytest.Item]) -> tuple[bool, int]:
        return not any(t.get_closest_marker("heavy") for t in tests), -len(tests)

    items[:] = [t for tests in sorted(modules.values(), key=order) for t in tests]
