"""Nothing acknowledged is lost, nothing is stored twice: real processes, killed with SIGKILL."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import mallard
from tests import ledger
from tests.ledger import assert_exactly_once

# real servers or processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SITE = "durable.example"
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0 Safari/537.36")


class Child:
    """``python -m tests.procs.ingest``; collects its stdout lines as they arrive.

    Use as a context manager: a child still running at the end (a failed test) is killed.
    """

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.procs.ingest", str(data_dir), *args],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.finish()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def acks(self) -> list[str]:
        return [line[4:] for line in list(self.lines) if line.startswith("ack ")]

    def wait_for(self, predicate: Callable[[Child], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.proc.poll() is not None:
                self._reader.join(5)
                if predicate(self):
                    return
                raise AssertionError(f"child exited ({self.proc.returncode}): {self.finish()}")
            if time.monotonic() > deadline:
                self.proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
                time.sleep(1)
                self.kill()
                raise AssertionError(f"child timed out after {len(self.acks)} acks; last lines "
                                     f"{self.lines[-3:]}; stderr:\n{self.finish()}")
            time.sleep(0.01)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def finish(self, timeout: float = 60.0) -> str:
        """Wait for the exit, read the rest of the output; return stderr."""
        if self.proc.stdout is not None and self.proc.stdout.closed:
            return self.stderr
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self._reader.join(10)
            assert self.proc.stderr is not None
            self.stderr = self.proc.stderr.read()
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        return self.stderr


@contextmanager
def reopened(data_dir: Path, **options: object) -> Iterator[mallard.Mallard]:
    """A new Mallard on ``data_dir``: its start recovers what stopped processes left."""
    m = mallard.Mallard(data_dir=data_dir, flush_interval_secs=3600, flush_event_count=10**9,
                        compact_after_files=0, **options)  # type: ignore[arg-type]
    try:
        m.start()
        yield m
    finally:
        assert m.close()


def stored_paths(m: mallard.Mallard, site: str = SITE) -> dict[str, int]:
    return ledger.stored_paths(m.queries, site)


def spool_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spool").iterdir())


# -- SIGKILL ---------------------------------------------------------------------------------------
def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Child(data, "--prefix", "/k/", "--days", "2") as child:
        child.wait_for(lambda c: len(c.acks) >= 300)
        child.kill()
    assert child.proc.returncode == -signal.SIGKILL
    acked = child.acks
    assert not list((data / "events").rglob("*.parquet")), "nothing was flushed before the kill"
    assert spool_files(data)
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), acked, "/k/")
        assert m.stats().buffer.pending == 0  # replayed into the lake, not into the buffer
    assert spool_files(data) == []


def test_sigkill_during_a_flush_loop_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acked: list[str] = []
    for round_ in range(3):
        with Child(data, "--prefix", f"/r{round_}/", "--flush-count", "7", "--flush-interval", "0.01",
                   "--days", "3") as child:
            child.wait_for(lambda c: len(c.acks) >= 400)
            child.kill()
        acked += child.acks
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), acked, "/r")


@pytest.mark.parametrize("fault", ["after-publish", "mid-publish"])
def test_crash_between_publishing_and_releasing_the_spool(tmp_path: Path, fault: str) -> None:
    """The process dies after (some of) a flushed batch's files are in the lake, before its spool
    segment is deleted: recovery completes the publish instead of replaying the segment."""
    data = tmp_path / "data"
    with Child(data, "--prefix", "/f/", "--flush-count", "30", "--days", "3", "--count", "1000",
               "--pause-every", "10", "--fault", fault) as child:
        child.finish()
    assert child.proc.returncode == -signal.SIGKILL, child.stderr
    acked = child.acks
    assert len(acked) >= 29
    assert list((data / "events").rglob("*.parquet")), "the fault struck before anything was published"
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), acked, "/f/")
    assert spool_files(data) == []
    # A second recovery changes nothing.
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), acked, "/f/")


def test_erased_events_do_not_come_back_after_a_crash(tmp_path: Path) -> None:
    """``Mallard.erase`` removes buffered events from the spool too, not only from memory."""
    data = tmp_path / "data"
    with Child(data, "--prefix", "/x/", "--days", "2", "--count", "40", "--erase-after", "40") as child:
        child.wait_for(lambda c: "done" in c.lines)
        assert "erased" in child.lines
        child.kill()
    first_day = {p for p in child.acks if int(p.rsplit("/", 1)[1]) % 2 == 0}
    with reopened(data) as m:
        stored = stored_paths(m)
    assert not first_day & set(stored), "erased events were resurrected from the spool"
    assert_exactly_once(stored, [p for p in child.acks if p not in first_day], "/x/")


FIRST_DAY = date(2024, 3, 1)  # tests.procs.ingest's START: with --days 2, even events fall on it


@pytest.mark.parametrize("then", ["flushes", "dies"])
def test_an_erasure_holds_against_events_another_process_holds(tmp_path: Path, then: str) -> None:
    """Another worker erases a day while this one holds acknowledged events of it (in memory and in its
    spool). If it then flushes, the flush drops them; if it dies, the recovery that replays its spool
    leaves them out. The other day's events are stored exactly once either way."""
    data, go = tmp_path / "data", tmp_path / "go"
    close = ["--then", "close", "--close-when", str(go)] if then == "flushes" else []
    with Child(data, "--prefix", "/b/", "--days", "2", "--count", "40", *close) as child:
        child.wait_for(lambda c: "done" in c.lines)
        with reopened(data) as m:
            m.erase(SITE, FIRST_DAY, FIRST_DAY)
        if then == "flushes":
            go.touch()
            child.wait_for(lambda c: "closed" in c.lines)
        else:
            child.kill()
    kept = [p for p in child.acks if int(p.rsplit("/", 1)[1]) % 2 == 1]
    with reopened(data) as m:
        stored = stored_paths(m)
    assert not set(stored) - set(kept), f"events of the erased day came back after the holder {then}"
    assert_exactly_once(stored, kept, "/b/")


def test_an_erasure_does_not_hold_against_events_after_a_restart(tmp_path: Path) -> None:
    """Events of an erased day that a process receives after it started (knowing of the erasure) are
    stored: an erasure deletes what existed, not the day forever."""
    data = tmp_path / "data"
    with reopened(data) as m:
        m.erase(SITE, FIRST_DAY, FIRST_DAY)
    with reopened(data) as m:
        assert m.track("pageview", site=SITE, url=f"https://{SITE}/after", ip="192.0.2.7",
                       user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                       timestamp=datetime(2024, 3, 1, 15, tzinfo=UTC))
        assert m.flush() == 1
        assert stored_paths(m) == {"/after": 1}


def test_close_in_a_child_leaves_nothing_to_recover(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Child(data, "--prefix", "/c/", "--count", "250", "--flush-count", "100", "--then", "close") as child:
        assert "Traceback" not in child.finish()
    assert child.proc.returncode == 0 and child.lines[-1] == "closed"
    assert spool_files(data) == []
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), child.acks, "/c/")


@pytest.mark.slow
def test_a_running_process_replays_the_spool_of_one_that_died_after_it_started(tmp_path: Path) -> None:
    """A worker killed after the others started (gunicorn starts its replacement lazily) has its spool
    replayed by a live process's maintenance thread, without any new start."""
    m = mallard.Mallard(data_dir=tmp_path, flush_interval_secs=0.2, compact_after_files=0)
    m.start()
    try:
        with Child(tmp_path, "--count", "40", "--prefix", "/late/") as child:
            child.wait_for(lambda c: "done" in c.lines)
            child.kill()
            child.finish()
            acked = child.acks
        deadline = time.monotonic() + 60  # the orphan scan runs every max(10 s, 6 flush intervals)
        while len(ledger.stored_paths(m.queries, SITE)) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert_exactly_once(ledger.stored_paths(m.queries, SITE), acked, "/late/")
    finally:
        assert m.close()


def test_recovery_leaves_the_spool_of_a_live_process_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Child(data, "--prefix", "/live/", "--count", "50") as child:
        child.wait_for(lambda c: "done" in c.lines)
        with reopened(data) as m:  # recovers, but the child is alive: its events are its own
            assert stored_paths(m) == {}
        assert len(spool_files(data)) >= 1
    with reopened(data) as m:
        assert_exactly_once(stored_paths(m), child.acks, "/live/")


# -- clean shutdown ------------------------------------------------------------------------------------
def test_close_flushes_everything_and_a_restart_answers_the_same(tmp_path: Path) -> None:
    data = tmp_path / "data"
    span = {"start_date": "2024-03-01", "end_date": "2024-03-03"}
    metrics = ["visitors", "visits", "pageviews", "events", "bounce_rate"]
    m = mallard.Mallard(data_dir=data, flush_interval_secs=3600, flush_event_count=10**9)
    try:
        for i in range(120):
            ts = datetime(2024, 3, 1 + i % 3, 9, tzinfo=UTC) + timedelta(minutes=i)
            assert m.track("pageview" if i % 4 else "signup", site=SITE, url=f"https://{SITE}/p/{i % 7}",
                           ip=f"203.0.113.{i % 40}", user_agent=UA, timestamp=ts)
        assert m.flush() == 120
        for i in range(30):  # some stay buffered until close
            assert m.track("pageview", site=SITE, url=f"https://{SITE}/late/{i}", ip="203.0.113.200",
                           user_agent=UA, timestamp=datetime(2024, 3, 2, 18, i, tzinfo=UTC))
        assert m.stats().buffer.pending == 30
        before = m.queries.query(SITE, metrics=metrics, **span).rows
        pages = m.queries.breakdown(SITE, "pages", limit=100, **span).rows
        assert before[0]["events"] == 150
    finally:
        assert m.close() is True
    assert spool_files(data) == []
    assert sorted(p.name for p in (data / "spool").iterdir()) == []
    with reopened(data) as again:
        assert again.queries.query(SITE, metrics=metrics, **span).rows == before
        assert again.queries.breakdown(SITE, "pages", limit=100, **span).rows == pages
    with mallard.open(data) as q:
        assert q.query(SITE, metrics=metrics, **span).rows == before


# -- privacy -------------------------------------------------------------------------------------------
def _ip_spellings(ip: str) -> set[bytes]:
    addr = ipaddress.ip_address(ip)
    out = {ip, str(addr), addr.exploded}
    if addr.version == 6:
        out.add(addr.exploded.replace(":", ""))
    return {s.encode() for s in out} | ({addr.packed} if addr.version == 6 else set())


def _files_containing(data_dir: Path, needles: set[bytes]) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        blob = path.read_bytes()
        hits = [n for n in needles if n in blob]
        if hits:
            found[str(path.relative_to(data_dir))] = hits
    return found


def test_no_raw_ip_reaches_any_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ips = [f"198.18.{i}.{255 - i}" for i in range(100, 200)]
    ips += [f"2001:db8:{i:x}::{i * 7:x}" for i in range(1, 80)]
    ips += [f"::ffff:192.0.2.{i}" for i in range(100, 140)]  # IPv4-mapped spellings
    needles = set().union(*(_ip_spellings(ip) for ip in ips))
    m = mallard.Mallard(data_dir=data, flush_interval_secs=3600, flush_event_count=10**9)
    try:
        for n, ip in enumerate(ips):
            headers = {"User-Agent": UA, "X-Forwarded-For": ip}
            assert m.track("pageview", site=SITE, url=f"https://{SITE}/ip/{n}?ref=x", ip=ip,
                           headers=headers, referrer="https://search.example/?q=analytics",
                           props={"n": n}, user_id=f"user-{n}")
            if n == len(ips) // 2:
                assert m.flush() > 0
        assert m.stats().buffer.pending > 0
        assert any(p.stat().st_size for p in spool_files(data)), "the spool should hold events now"
        assert _files_containing(data, needles) == {}  # while running: spool, lake, state
    finally:
        assert m.close()
    assert _files_containing(data, needles) == {}
    with reopened(data) as again:
        assert len(stored_paths(again)) == len(ips)
    assert _files_containing(data, needles) == {}


def test_recovery_of_an_empty_or_torn_spool(tmp_path: Path) -> None:
    """A segment cut off in the middle of a line (power loss) replays its complete lines only."""
    data = tmp_path / "data"
    with Child(data, "--prefix", "/t/", "--count", "20") as child:
        child.wait_for(lambda c: "done" in c.lines)
    (segment,) = [p for p in spool_files(data) if p.stat().st_size]
    blob = segment.read_bytes().rstrip(b"\0")  # a live (unfinished) segment ends in its map's zeros
    segment.write_bytes(blob[: blob.rindex(b"\n", 0, len(blob) - 1) + 40])  # tear the last line
    (data / "spool" / "otherhost-1-abc.1").write_bytes(b"")
    with reopened(data) as m:
        stored = stored_paths(m)
    assert sorted(stored) == sorted(child.acks[:-1]) and set(stored.values()) == {1}
    assert spool_files(data) == []


def test_recovery_is_idempotent_for_a_date_far_in_the_past(tmp_path: Path) -> None:
    """Recovery writes into the partitions of the events' own dates, whatever the current date."""
    data = tmp_path / "data"
    with Child(data, "--prefix", "/d/", "--count", "10", "--days", "5") as child:
        child.wait_for(lambda c: "done" in c.lines)
    with reopened(data) as m:
        days = m.store.lake.dates(SITE)
        assert days == [date(2024, 3, d) for d in range(1, 6)]
        assert_exactly_once(stored_paths(m), child.acks, "/d/")


def test_events_buffered_at_interpreter_exit_are_stored_without_errors(tmp_path: Path) -> None:
    """A script that tracks and simply ends: the exit hook's final flush stores the event and logs nothing
    (pyarrow's lazy pandas import used to fail during interpreter shutdown)."""
    data = tmp_path / "data"
    code = (f"import mallard\nfrom mallard._http import Api\nm = mallard.Mallard(data_dir={str(data)!r})\n"
            f"Api.for_mallard(m)\nm.track('pageview', site={SITE!r}, url='https://{SITE}/exit', "
            f"ip='192.0.2.1', user_agent={UA!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    with mallard.open(data) as q:
        assert q.sql("SELECT pathname FROM events").to_pylist() == [{"pathname": "/exit"}]
