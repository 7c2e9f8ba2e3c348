"""Fixtures of the telemetry tests: one ProcessCounters, and worker processes on the same directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mallard._telemetry import ProcessCounters

from .helpers import Worker


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[ProcessCounters]:
    m = ProcessCounters(tmp_path / "state")
    yield m
    m.close()


@pytest.fixture
def spawn() -> Iterator[Callable[[Path, int], list[Worker]]]:
    started: list[Worker] = []

    def start(state_dir: Path, n: int) -> list[Worker]:
        workers = [Worker(state_dir) for _ in range(n)]
        started.extend(workers)
        return [w.ready() for w in workers]

    yield start
    for worker in started:
        worker.cleanup()
