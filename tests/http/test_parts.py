"""The view workers (mallard/_http/parts.py): parts run at once, each under the request's time limit on
its own thread's connection; the first failure (in the order given) is raised once no part runs; with
one worker the parts run one after the other on the calling thread, none after a failure."""

from __future__ import annotations

import threading
import time

import pytest

import mallard
from mallard._http.parts import Parts


def test_parts_run_at_once_and_answer_by_name(m: mallard.Mallard) -> None:
    parts = Parts(m.store.time_limit, 30, workers=2)
    meet = threading.Barrier(2, timeout=10)  # broken (an error) unless both parts wait at once

    def part(n: int) -> tuple[int, str]:
        meet.wait()
        return n, threading.current_thread().name

    try:
        done = parts.run({"a": lambda: part(1), "b": lambda: part(2)})
    finally:
        parts.close()
    assert [v[0] for v in done.values()] == [1, 2] and list(done) == ["a", "b"]
    assert {v[1] for v in done.values()} != {threading.current_thread().name}


def test_the_first_failure_is_raised_once_the_started_parts_ended(m: mallard.Mallard) -> None:
    parts = Parts(m.store.time_limit, 30, workers=2)
    ended: list[str] = []

    def slow() -> str:
        time.sleep(0.3)
        ended.append("slow")
        return "slow"

    def bad(message: str) -> str:
        raise ValueError(message)

    try:
        with pytest.raises(ValueError, match="first"):
            parts.run({"slow": slow, "bad": lambda: bad("first"), "worse": lambda: bad("second")})
        assert ended == ["slow"]  # it had started: the failure waited for it
    finally:
        parts.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("mallard-part")]


def test_each_part_runs_under_the_time_limit(m: mallard.Mallard) -> None:
    parts = Parts(m.store.time_limit, 0.2, workers=2)
    try:
        started = time.monotonic()
        with pytest.raises(mallard.QueryTimeoutError, match=r"longer than 0\.2 s"):
            parts.run({"quick": lambda: m.queries.sql("SELECT 1 AS n").to_pylist(),
                       "endless": lambda: m.queries.sql("SELECT count(*) AS n FROM range(100000000000) a")})
        assert time.monotonic() - started < 10
        assert parts.run({"again": lambda: m.queries.sql("SELECT 42 AS n").to_pylist()}) == {
            "again": [{"n": 42}]}  # the worker's connection works on
    finally:
        parts.close()


def test_one_worker_runs_the_parts_in_order_on_the_calling_thread(m: mallard.Mallard) -> None:
    parts = Parts(m.store.time_limit, 30, workers=1)
    ran: list[tuple[str, str]] = []

    def part(name: str, fail: bool = False) -> str:
        ran.append((name, threading.current_thread().name))
        if fail:
            raise ValueError(name)
        return name

    with pytest.raises(ValueError, match="b"):
        parts.run({"a": lambda: part("a"), "b": lambda: part("b", fail=True), "c": lambda: part("c")})
    me = threading.current_thread().name
    assert ran == [("a", me), ("b", me)]  # c did not run
    assert parts.run({"x": lambda: part("x")}) == {"x": "x"}
