"""Exactly-once storage under every multi-worker host, with real servers and real signals.

Each host runs 4 workers (``mallard serve --workers 4``, uvicorn ``--workers 4`` with the Starlette host,
gunicorn ``-w 4`` with the Flask and the bare WSGI hosts) while a load generator posts pageviews with
unique pathnames ``/k/<n>`` and records which were acknowledged (HTTP 202):

* kill -9 of random workers (their replacements replay the dead workers' spools while the server runs),
  then of the master; a restart on the same data directory recovers what the dead processes left: every
  acknowledged event is stored exactly once, nothing never sent appears;
* SIGTERM to the master while a separate process compacts the lake and readers query it (directly and
  over HTTP): every acknowledged event is in the lake when the server has exited, the spool is empty
  (nothing left to recover), and no reader ever saw a row twice or lost one it had seen.

Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

import mallard
from tests.ledger import assert_exactly_once, duplicates, stored_paths

from .conftest import KINDS, ROOT, Live, eventually, group, kill_all, start, stop, workers

pytestmark = pytest.mark.slow

SITE = "crash.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
PREFIX = "/k/"
WORKERS = 4
WORKER_KILLS = 3
STEP = 100  # acknowledged events between two kills
SHUTDOWN_TIMEOUT = 10  # shutdown_timeout_secs of the SIGTERM test's server
# Small, frequent flushes: kills strike during flushes and publishes, not only between them.
KILL_ENV = {"MALLARD_FLUSH_INTERVAL": "0.2", "MALLARD_FLUSH_COUNT": "40", "MALLARD_MIN_FLUSH_GAP_SECS": "0",
            "MALLARD_COMPACT_AFTER_FILES": "4"}
# Flushes by count only (many small files for the compactor), and a remainder in every worker's buffer
# that only the shutdown flush stores.
SIGTERM_ENV = {"MALLARD_FLUSH_INTERVAL": "3600", "MALLARD_FLUSH_COUNT": "25",
               "MALLARD_MIN_FLUSH_GAP_SECS": "0", "MALLARD_SHUTDOWN_TIMEOUT_SECS": str(SHUTDOWN_TIMEOUT)}


def stuck(live: Live) -> str:
    """What a server that does not stop is doing: the end of its log, and each of its processes' Python
    stacks (py-spy, where installed)."""
    out = [f"log:\n{live.logs()[-4000:]}"]
    spy = shutil.which("py-spy")
    for pid, parent in sorted(group(live.proc.pid).items()):
        dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=30).stdout if spy else "(py-spy is not installed)"
        out.append(f"process {pid} (parent {parent}):\n{dump}")
    return "\n".join(out)


class Background:
    """A daemon thread that runs ``_run`` until :meth:`stop`; failures it saw go to ``problems``."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), f"{type(self).__name__} did not stop"

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by the test, not lost in a thread
            self.problems.append(f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        raise NotImplementedError


class Load:
    """Threads posting pageviews ``PREFIX<n>`` (n unique, from ``first``) to ``POST /api/event``,
    ``limit`` requests at most. A failed request is never retried with the same pathname: its event may
    or may not be stored, but never twice. A connection serves 20 requests, so the load spreads over the
    workers."""

    def __init__(self, base: str, *, limit: int, first: int = 0, threads: int = 4) -> None:
        self.base = base
        self.limit = first + limit
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.failed = 0
        self.statuses: Counter[int] = Counter()
        self._ids = itertools.count(first)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the load generator did not finish"

    def wait_for(self, acked: int, timeout: float = 60) -> bool:
        """Wait until ``acked`` events are acknowledged (True), the load ends or the time is up."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < acked:
            if time.monotonic() > deadline or not any(t.is_alive() for t in self._threads):
                return len(self.acked) >= acked
            time.sleep(0.02)
        return True

    def _post(self, client: httpx.Client, path: str) -> int:
        body = orjson.dumps({"d": SITE, "n": "pageview", "u": f"https://{SITE}{path}"})
        return client.post("/api/event", content=body,
                           headers={"Content-Type": "text/plain", "User-Agent": UA}).status_code

    def _run(self) -> None:
        client: httpx.Client | None = None
        served = 0
        try:
            while not self._stop.is_set():
                n = next(self._ids)
                if n >= self.limit:
                    return
                path = f"{PREFIX}{n}"
                self.sent.append(path)
                if client is None or served >= 20:
                    if client is not None:
                        client.close()
                    client, served = httpx.Client(base_url=self.base, timeout=10), 0
                served += 1
                try:
                    status = self._post(client, path)
                except httpx.HTTPError:
                    with self._lock:
                        self.failed += 1
                    client.close()
                    client = None
                    self._stop.wait(0.05)  # a worker is being replaced: do not spin on refusals
                    continue
                with self._lock:
                    if status == 202:
                        self.acked.append(path)
                    else:
                        self.statuses[status] += 1
        finally:
            if client is not None:
                client.close()


class Compactor(Background):
    """``python -m tests.procs.compactor`` compacting the lake over and over (its own process, so it
    takes the same file locks as another worker would)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.passes = self.partitions = 0
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.procs.compactor", str(data_dir),
                                       str(64 << 20)], cwd=ROOT, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)

    def _run(self) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready"
        while not self._stop.is_set():
            self._proc.stdin.write("go\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline().split()
            assert line[:1] == ["done"], f"compactor said {line}"
            self.passes += 1
            self.partitions += int(line[1])
            self._stop.wait(0.05)  # pace the passes: the workers and readers share 2 cores with it

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                if self._proc.wait(30) != 0:
                    self.problems.append(f"the compactor exited with {self._proc.returncode}")
            finally:
                if self._proc.poll() is None:
                    self._proc.kill()
                    self._proc.wait(10)
                assert self._proc.stdout is not None
                self._proc.stdout.close()


class LakeReader(Background):
    """Reads the lake directly (``mallard.open``) over and over: no pathname twice in one answer, and
    every pathname of one answer in the next (the lake only grows here)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.reads = 0

    def _run(self) -> None:
        seen: set[str] = set()
        with mallard.open(self.data_dir) as q:
            while not self._stop.is_set():
                paths = [r["pathname"] for r in q.sql("SELECT pathname FROM events WHERE site_id = ?",
                                                      [SITE]).to_pylist()]
                now = set(paths)
                if len(now) != len(paths):
                    self.problems.append(f"read {len(paths)} rows of {len(now)} events")
                if not seen <= now:
                    self.problems.append(f"{len(seen - now)} stored events vanished from a read")
                seen = now
                self.reads += 1


class HttpReader(Background):
    """Queries the server's stats over new connections (any worker): the total is never below what the
    lake held just before the request, and no page is counted twice."""

    def __init__(self, base: str, data_dir: Path) -> None:
        super().__init__()
        self.base = base
        self.data_dir = data_dir
        self.reads = 0
        today = datetime.now(UTC).date()
        self.params = {"site_id": SITE, "start_date": (today - timedelta(days=1)).isoformat(),
                       "end_date": (today + timedelta(days=1)).isoformat()}

    def _run(self) -> None:
        with mallard.open(self.data_dir) as q:
            while not self._stop.is_set():
                floor = q.sql("SELECT count(*) AS n FROM events WHERE site_id = ?",
                              [SITE]).to_pylist()[0]["n"]
                main = httpx.get(self.base + "/api/stats/main", params=self.params, timeout=30)
                top = httpx.get(self.base + "/api/stats/breakdown/pages", timeout=30,
                                params={**self.params, "limit": "1"})
                assert main.status_code == 200 and top.status_code == 200, (main.text, top.text)
                total = main.json()["total_pageviews"]
                if total < floor:
                    self.problems.append(f"a worker counted {total} pageviews, the lake held {floor}")
                rows = top.json()
                if rows and rows[0]["pageviews"] != 1:
                    self.problems.append(f"page counted twice: {rows[0]}")
                self.reads += 1


def figures(kind: str, test: str, **values: object) -> None:
    print(f"\n[crash-safety] {kind} {test}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def spool(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "spool").iterdir())


@contextmanager
def lake(data_dir: Path) -> Iterator[dict[str, int]]:
    with mallard.open(data_dir) as q:
        yield stored_paths(q, SITE)


def settled_count(data_dir: Path) -> int:
    """The number of events stored once it stops changing (flushes in progress are done)."""
    counts: list[int] = []

    def settled() -> bool:
        with lake(data_dir) as stored:
            counts.append(len(stored))
        if len(counts) > 1 and counts[-1] == counts[-2]:
            return True
        time.sleep(0.3)  # a flush in progress takes milliseconds: read again a little later
        return False

    eventually(settled, 30)
    return counts[-1]


def stop_and_wait(live: Live) -> None:
    """SIGTERM the whole server (as a service manager does) and wait until every process is gone."""
    stop(live)
    eventually(lambda: not group(live.proc.pid), 30)


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_of_workers_and_master_then_restart_stores_each_event_once(kind: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    began = time.monotonic()
    rng = random.Random(f"crash-{kind}")
    live = start(kind, data, workers=WORKERS, env=KILL_ENV)
    killed: list[int] = []
    try:
        with Load(live.base, limit=3000) as load:
            for round_ in range(1, WORKER_KILLS + 1):
                assert load.wait_for(round_ * STEP), f"only {len(load.acked)} acknowledged:\n{live.logs()}"
                victim = rng.choice(workers(live))
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            # The host replaces the dead workers and goes on serving; the replacements' start replays
            # the dead workers' spools, so no restart is needed to see their events.
            assert load.wait_for((WORKER_KILLS + 1) * STEP), f"stalled after the kills:\n{live.logs()}"
            before = set(load.acked)
            with mallard.open(data) as q:
                eventually(lambda: before <= set(stored_paths(q, SITE)), 30)
            os.kill(live.proc.pid, signal.SIGKILL)
            # Orphaned workers may go on serving for a while (uvicorn's do; gunicorn's notice the new
            # parent and exit): give them a bounded window, whatever they acknowledge must be stored.
            load.wait_for(len(load.acked) + STEP, timeout=2)
    finally:
        kill_all(live)
    first_run = live.logs()
    # Orphaned uvicorn workers die by SIGKILL with their spools; gunicorn's may have flushed and exited.
    left = len(spool(data))

    again = start(kind, data, workers=WORKERS, env=KILL_ENV, label="-restarted")
    try:
        assert httpx.get(again.base + "/health/ready", timeout=60).status_code == 200  # a worker recovered
        with mallard.open(data) as q:
            eventually(lambda: set(load.acked) <= set(stored_paths(q, SITE)), 60)
    finally:
        stop_and_wait(again)
    assert "Traceback" not in again.logs(), again.logs()
    assert spool(data) == [], "the restarted server left spool files behind"
    with lake(data) as stored:
        assert_exactly_once(stored, load.acked, PREFIX, sent=load.sent)
    assert not load.statuses, f"answers other than 202: {load.statuses}\n{first_run}"
    figures(kind, "kill -9", sent=len(load.sent), acknowledged=len(load.acked), failed=load.failed,
            worker_kills=len(killed), master_kills=1, spool_files_left=left, stored=len(stored),
            stored_unacknowledged=len(set(stored) - set(load.acked)), duplicates=len(duplicates(stored)),
            seconds=round(time.monotonic() - began, 1))


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_flushes_everything_while_compaction_and_readers_run(kind: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    began = time.monotonic()
    live = start(kind, data, workers=WORKERS, env=SIGTERM_ENV)
    try:
        with Compactor(data) as compactor, LakeReader(data) as reader:
            with HttpReader(live.base, data) as http_reader, Load(live.base, limit=600) as load:
                load.join()
            assert load.failed == 0 and not load.statuses, (load.failed, load.statuses)
            # Once the flushes the load triggered are done, what the lake lacks stays buffered: with
            # flush_interval 3600 only the shutdown flush can store it.
            buffered = len(load.acked) - settled_count(data)
            assert buffered > 0, "every event was flushed before the SIGTERM: nothing to test"
            # Then SIGTERM to the master only (a service manager's stop): it must stop its workers,
            # while a second load keeps requests in flight and arriving during the shutdown.
            with Load(live.base, limit=600, first=600) as late:
                assert late.wait_for(1), f"the second load got no answer:\n{live.logs()}"
                sigterm = time.monotonic()
                os.kill(live.proc.pid, signal.SIGTERM)
                try:
                    live.proc.wait(SHUTDOWN_TIMEOUT + 30)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"the server did not stop in {SHUTDOWN_TIMEOUT + 30} s after "
                                         f"SIGTERM:\n{stuck(live)}") from None
                eventually(lambda: not group(live.proc.pid), 30)  # no worker outlives its master
                shutdown = time.monotonic() - sigterm
    finally:
        kill_all(live)
    assert spool(data) == [], "a worker left events to recover instead of flushing them"
    acked, sent = load.acked + late.acked, load.sent + late.sent
    with lake(data) as stored:
        assert_exactly_once(stored, acked, PREFIX, sent=sent)
    assert not late.statuses, f"answers other than 202: {late.statuses}"
    assert "Traceback" not in live.logs(), live.logs()
    assert not (compactor.problems or reader.problems or http_reader.problems), \
        (compactor.problems, reader.problems[:5], http_reader.problems[:5])
    assert compactor.partitions > 0, "the compactor never merged anything"
    assert reader.reads > 0 and http_reader.reads > 0
    figures(kind, "SIGTERM", acknowledged=len(acked), buffered_before_sigterm=buffered,
            acknowledged_by_the_second_load=len(late.acked), failed=late.failed,
            stored=len(stored), duplicates=len(duplicates(stored)), compaction_passes=compactor.passes,
            partitions_compacted=compactor.partitions, lake_reads=reader.reads,
            http_reads=http_reader.reads, shutdown_seconds=round(shutdown, 1),
            seconds=round(time.monotonic() - began, 1))
