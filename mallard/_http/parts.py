"""Parts of one answer computed at once: the dashboard view's panels on a small pool of threads.

Most of a view's statements are small (a few days of rollup rows, a page of sessions), so one of them
keeps one core busy planning and scanning while the other waits; two at once keep both. Each part runs
on a worker thread with that thread's own DuckDB connection (Store.connection) under what is left of
the request's time limit, and what the parts share (the open days' sessions and rollups) is still
computed once: the live cache (queries/freshness.py) makes a part that needs rows another part is
computing wait for them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Final, TypeVar

__all__ = ["WORKERS", "Parts"]

T = TypeVar("T")
#: Worker threads: one per core, at most four (each part's statements use DuckDB's threads too).
WORKERS: Final = min(4, os.cpu_count() or 1)


class Parts:
    """Runs the parts of an answer on ``workers`` threads; ``time_limit(seconds)`` is the store's (it
    stops the calling thread's queries past the limit); ``seconds`` the request's limit (None: none).
    With one worker the parts run on the calling thread, one after the other."""

    def __init__(self, time_limit: Callable[[float | None, float | None], AbstractContextManager[None]],
                 seconds: float | None, workers: int = WORKERS) -> None:
        self._time_limit = time_limit
        self._seconds = seconds
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, jobs: Mapping[str, Callable[[], T]]) -> dict[str, T]:
        """Each job's answer by name, started in the order given; the first failure (in that order) is
        raised once every started job has ended, and the jobs not started yet are cancelled."""
        futures = self._start(jobs)
        try:
            return {name: f.result() for name, f in futures.items()}
        finally:
            for f in futures.values():
                f.cancel()
            for f in futures.values():
                if not f.cancelled():
                    f.exception()  # wait: no part outlives the request

    def _start(self, jobs: Mapping[str, Callable[[], T]]) -> dict[str, Future[T]]:
        """The jobs started (queued on the workers, in order); run inline with one worker."""
        deadline = None if not self._seconds else time.monotonic() + self._seconds
        pool = self._executor()
        futures: dict[str, Future[T]] = {}
        failed = False
        for name, job in jobs.items():
            if pool is not None:
                futures[name] = pool.submit(self._limited, job, deadline)
                continue
            done: Future[T] = Future()
            futures[name] = done
            if failed:  # one after the other: the jobs after a failure do not run
                done.cancel()
                continue
            try:
                done.set_result(job())
            except BaseException as exc:  # raised by result(), as from a worker
                done.set_exception(exc)
                failed = True
        return futures

    def _limited(self, job: Callable[[], T], deadline: float | None) -> T:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        with self._time_limit(left, self._seconds):
            return job()

    def _executor(self) -> ThreadPoolExecutor | None:
        if self._workers <= 1:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="mallard-part")
            return self._pool

    def close(self) -> None:
        """Stop the workers once the parts queued have run."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
