"""EventBuffer: flush triggers, non-blocking offer, retries, the view lock, discard, and its invariant."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mallard import Event, EventBuffer
from mallard._store.recovery import read_segment
from mallard._store.spool import Spool

from .concurrency import Progress, check_view, offer_while_running
from .factories import make_event, make_events


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until true; ``timeout`` is a generous hang guard, not a speed bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Lake:
    """A fake lake: ``sink`` stages a batch, the returned publish makes it visible (like a rename)."""

    def __init__(self, *, delay: float = 0.0, fail_times: int = 0,
                 hold: threading.Event | None = None) -> None:
        self.delay = delay
        self.fail_times = fail_times
        self.hold = hold  # when given, the sink waits inside for the test to set it
        self.entered = threading.Event()
        self.held_too_long = False
        self.published: list[Event] = []
        self.calls: list[float] = []
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def sink(self, batch: Sequence[Event]) -> Callable[[], None]:
        with self.lock:
            self.calls.append(time.monotonic())
            if self.fail_times > 0:
                self.fail_times -= 1
                raise OSError("disk on fire")
        if self.hold is not None:
            self.entered.set()
            self.held_too_long = not self.hold.wait(30)
        if self.delay:
            time.sleep(self.delay)
        staged = [Event(*row) for row in batch]  # the buffer hands out plain rows

        def publish() -> None:
            self.published.extend(staged)
            self.batches.append(len(staged))

        return publish


def spool_events(directory: Path) -> list[Event]:
    """Every event a recovering process would replay from ``directory``."""
    out = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        out.extend(read_segment(path))
    return out


# -- flush triggers -------------------------------------------------------------------------------
def test_flush_by_count_wakes_the_background_thread() -> None:
    """Reaching ``flush_at`` wakes the flusher long before its interval."""
    lake = Lake()
    buf = EventBuffer(lake.sink, flush_at=10, flush_interval=3600)
    buf.start()
    try:
        for e in make_events(9):
            assert buf.offer(e)
        time.sleep(0.1)
        assert lake.published == []
        assert buf.offer(make_event(pathname="/tenth"))
        assert wait_for(lambda: len(lake.published) == 10)
        assert buf.stats().flushed == 10 and buf.pending == 0
    finally:
        assert buf.close(5)


def test_flush_by_interval() -> None:
    """A single event is flushed after ``flush_interval`` even though the count is far away."""
    lake = Lake()
    buf = EventBuffer(lake.sink, flush_at=10**6, flush_interval=0.05)
    buf.start()
    try:
        buf.offer(make_event())
        assert wait_for(lambda: len(lake.published) == 1)  # no count can trigger it
    finally:
        assert buf.close(5)


def test_close_flushes_whatever_is_left() -> None:
    lake = Lake()
    buf = EventBuffer(lake.sink, flush_at=10**6, flush_interval=3600)
    buf.start()
    events = make_events(25)
    for e in events:
        buf.offer(e)
    assert lake.published == []
    assert buf.close(5) is True
    assert lake.published == events
    assert buf.stats().pending == 0


def test_close_without_start_and_flush_of_nothing() -> None:
    lake = Lake()
    buf = EventBuffer(lake.sink)
    assert buf.flush() == 0
    assert lake.calls == []  # an empty buffer never calls the sink
    assert buf.close(1) is True


# -- offer ----------------------------------------------------------------------------------------
def test_offer_never_blocks_while_the_sink_is_slow() -> None:
    """The flusher may be held inside the sink; producers are not held up by it: every offer()
    returns while the sink is still held (were offer() waiting for the sink, the sink would have to
    give up its 30 s hold first)."""
    release = threading.Event()
    lake = Lake(hold=release)
    buf = EventBuffer(lake.sink, flush_at=5, flush_interval=3600)
    buf.start()
    flusher = threading.Thread(target=buf.flush)
    try:
        for e in make_events(5):
            buf.offer(e)
        assert lake.entered.wait(30)  # the background flusher is now inside the sink
        for e in make_events(200, prefix="/during/"):
            assert buf.offer(e)
        # A caller-thread flush() waits for the sink; offer() from other threads still does not.
        flusher.start()
        assert buf.offer(make_event(pathname="/while-flush"))
        assert not release.is_set() and lake.published == []
    finally:
        release.set()
        if flusher.ident is not None:
            flusher.join(30)
        assert buf.close(30)
    assert not lake.held_too_long
    assert sorted(e.pathname for e in lake.published) == sorted(
        [f"/p/{i}" for i in range(5)] + [f"/during/{i}" for i in range(200)] + ["/while-flush"])


def test_offer_refuses_when_full_and_counts_it() -> None:
    lake = Lake()
    buf = EventBuffer(lake.sink, max_events=5, flush_at=10**6, flush_interval=3600)
    results = [buf.offer(e) for e in make_events(8)]
    assert results == [True] * 5 + [False] * 3
    s = buf.stats()
    assert (s.offered, s.accepted, s.dropped_full, s.pending) == (8, 5, 3, 5)
    assert buf.flush() == 5
    assert buf.offer(make_event(pathname="/room-again"))
    assert buf.close(1)


def test_events_in_flight_count_against_capacity() -> None:
    """While a failed batch waits for its retry it still occupies the buffer."""
    lake = Lake(fail_times=1)
    buf = EventBuffer(lake.sink, max_events=4, flush_at=10**6, flush_interval=3600)
    for e in make_events(4):
        assert buf.offer(e)
    with pytest.raises(OSError):
        buf.flush()
    assert buf.pending == 4
    assert buf.offer(make_event(pathname="/no-room")) is False
    assert buf.flush() == 4
    assert buf.offer(make_event(pathname="/room"))
    assert buf.close(1)
    s = buf.stats()
    assert s.offered == s.flushed + s.pending + s.dropped_full == 6


def test_journal_failure_refuses_the_event() -> None:
    """An event that could not be journalled is not acknowledged (and is counted)."""

    class BrokenJournal:
        def append(self, event: Event) -> None:
            raise OSError(28, "No space left on device")

        def rotate(self) -> object:
            return None

        def release(self, tokens: Sequence[object]) -> None:
            pass

        def close(self) -> None:
            pass

    buf = EventBuffer(Lake().sink, journal=BrokenJournal())
    assert buf.offer(make_event()) is False
    s = buf.stats()
    assert (s.journal_failures, s.dropped_full, s.pending) == (1, 1, 0)
    assert s.last_error is not None and "No space" in s.last_error
    assert buf.close(1)


# -- failures and retries -------------------------------------------------------------------------
def test_failing_sink_retries_with_backoff_and_stores_each_event_once(tmp_path: Path) -> None:
    lake = Lake(fail_times=3)
    spool = Spool(tmp_path)
    buf = EventBuffer(lake.sink, journal=spool, flush_at=10, flush_interval=0.05, max_backoff=0.4)
    buf.start()
    events = make_events(10)
    try:
        for e in events:
            assert buf.offer(e)
        assert wait_for(lambda: len(lake.published) == 10)
        # Until the batch was stored, its events stayed journalled: nothing to lose on a crash.
    finally:
        assert buf.close(5)
    assert Counter(lake.published) == Counter(events)
    s = buf.stats()
    assert (s.flush_failures, s.flushed, s.pending) == (3, 10, 0)
    gaps = [b - a for a, b in zip(lake.calls, lake.calls[1:], strict=False)]
    # interval * 2**n, capped: 0.1, 0.2, 0.4
    assert gaps[0] >= 0.08 and gaps[1] >= 0.16 and gaps[2] >= 0.3, gaps
    assert list(tmp_path.iterdir()) == []  # closed spool: nothing left to replay


def test_failed_flush_keeps_events_journalled_until_stored(tmp_path: Path) -> None:
    lake = Lake(fail_times=2)
    spool = Spool(tmp_path)
    buf = EventBuffer(lake.sink, journal=spool, flush_at=10**6, flush_interval=3600)
    first = make_events(3, prefix="/a/")
    for e in first:
        buf.offer(e)
    with pytest.raises(OSError):
        buf.flush()
    second = make_events(2, prefix="/b/")
    for e in second:
        buf.offer(e)
    assert Counter(spool_events(tmp_path)) == Counter(first + second)
    with pytest.raises(OSError):
        buf.flush()
    assert Counter(buf.snapshot()) == Counter(first + second)
    assert buf.flush() == 5
    assert Counter(lake.published) == Counter(first + second)
    assert spool_events(tmp_path) == []
    assert buf.close(1)


def test_close_gives_up_after_its_timeout_and_keeps_the_journal(tmp_path: Path) -> None:
    lake = Lake(fail_times=10**6)
    spool = Spool(tmp_path)
    buf = EventBuffer(lake.sink, journal=spool, flush_at=10**6, flush_interval=3600)
    events = make_events(3)
    for e in events:
        buf.offer(e)
    closed: list[bool] = []
    closer = threading.Thread(target=lambda: closed.append(buf.close(0.5)))
    closer.start()
    closer.join(60)  # a hang guard: close() must give up, however loaded the machine
    assert closed == [False]
    assert Counter(spool_events(tmp_path)) == Counter(events)
    spool.close()


# -- snapshot + publish under the view lock -------------------------------------------------------
def test_reader_never_sees_an_event_twice_or_misses_one() -> None:
    """A reader that lists the (fake) lake and snapshots the buffer under ``view_lock`` sees every
    acknowledged event exactly once while a flusher keeps publishing."""
    lake = Lake(delay=0.001)
    buf = EventBuffer(lake.sink, flush_at=7, flush_interval=0.001)
    buf.start()
    progress = Progress()
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            before = progress.acked
            with buf.view_lock:
                seen = [e.pathname for e in lake.published] + [Event(*r).pathname for r in buf.snapshot()]
            check_view([int(p.rsplit("/", 1)[1]) for p in seen], before, progress.offering, problems)
            progress.reads += 1

    def offer(i: int) -> None:
        assert buf.offer(make_event(pathname=f"/p/{i}"))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    offer_while_running(threads, stop, lambda: buf.close(30), offer, progress,
                        lambda: progress.reads > 50 and len(lake.batches) > 10, problems)
    assert sorted(int(e.pathname[3:]) for e in lake.published) == list(range(progress.acked))


# -- discard --------------------------------------------------------------------------------------
def test_discard_removes_pending_and_in_flight_events(tmp_path: Path) -> None:
    lake = Lake(fail_times=1)
    spool = Spool(tmp_path)
    buf = EventBuffer(lake.sink, journal=spool, flush_at=10**6, flush_interval=3600)
    a1 = make_events(3, prefix="/a1/", site_id="a")
    b1 = make_events(2, prefix="/b1/", site_id="b")
    for e in a1 + b1:
        buf.offer(e)
    with pytest.raises(OSError):
        buf.flush()  # a1 + b1 are now in flight
    a2 = make_events(4, prefix="/a2/", site_id="a")
    b2 = make_events(1, prefix="/b2/", site_id="b")
    for e in a2 + b2:
        buf.offer(e)
    assert buf.discard(lambda r: Event(*r).site_id != "a") == 7
    assert Counter(buf.snapshot()) == Counter(b1 + b2)
    s = buf.stats()
    assert s.offered == s.flushed + s.pending + s.dropped_full == 3
    # Erased events must not survive in the journal either: a crash now would resurrect them.
    assert Counter(spool_events(tmp_path)) == Counter(b1 + b2)
    assert buf.flush() == 3
    assert Counter(lake.published) == Counter(b1 + b2)
    assert spool_events(tmp_path) == []
    assert buf.close(1)


def test_discard_of_nothing_changes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    buf = EventBuffer(Lake().sink, journal=spool)
    events = make_events(3)
    for e in events:
        buf.offer(e)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert buf.discard(lambda e: True) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert Counter(spool_events(tmp_path)) == Counter(events)
    assert buf.close(1)


# -- the invariant, under random interleavings ----------------------------------------------------
class FlakyJournal:
    """A real spool whose appends can be made to fail (disk full)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.failing = False

    def append(self, event: Event) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        self.spool.append(event)

    def rotate(self) -> object:
        return self.spool.rotate()

    def release(self, tokens: Sequence[object]) -> None:
        self.spool.release(tokens)

    def close(self) -> None:
        self.spool.close()


class BufferMachine(RuleBasedStateMachine):
    """offered == flushed + pending + dropped_full, and the lake + journal hold exactly the right events."""

    @initialize(max_events=st.integers(1, 12))
    def setup(self, max_events: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mallard-buffer-"))
        self.lake = Lake()
        self.journal = FlakyJournal(Spool(self.dir))
        self.buf = EventBuffer(self.lake.sink, journal=self.journal, max_events=max_events,
                               flush_at=10**6, flush_interval=3600)
        self.next_id = 0
        self.accepted: list[Event] = []
        self.erased: list[Event] = []
        # An erasure while the journal cannot be written leaves the erased events in the old spool
        # segments (logged) until the next successful flush deletes those segments.
        self.journal_dirty = False

    @rule(n=st.integers(1, 5), site=st.sampled_from(["a", "b"]))
    def offer(self, n: int, site: str) -> None:
        for _ in range(n):
            event = make_event(site_id=site, pathname=f"/e/{self.next_id}")
            self.next_id += 1
            if self.buf.offer(event):
                self.accepted.append(event)

    @rule(failures=st.integers(0, 2))
    def flush(self, failures: int) -> None:
        self.lake.fail_times = failures
        try:
            self.buf.flush()
            self.journal_dirty = False
        except OSError:
            pass
        self.lake.fail_times = 0

    @rule(failing=st.booleans())
    def journal_health(self, failing: bool) -> None:
        self.journal.failing = failing

    @rule(site=st.sampled_from(["a", "b"]))
    def erase(self, site: str) -> None:
        before = self.buf.pending
        removed = self.buf.discard(lambda r: Event(*r).site_id != site)
        assert self.buf.pending == before - removed
        if removed and self.journal.failing:
            self.journal_dirty = True
        gone = [e for e in self.accepted if e.site_id == site and e not in self.lake.published]
        self.erased.extend(gone)
        self.accepted = [e for e in self.accepted if e not in gone]

    @invariant()
    def counters_add_up(self) -> None:
        if not hasattr(self, "buf"):
            return
        s = self.buf.stats()
        assert s.offered == s.flushed + s.pending + s.dropped_full
        assert s.accepted == s.offered - s.dropped_full

    @invariant()
    def every_accepted_event_is_stored_or_pending_exactly_once(self) -> None:
        if not hasattr(self, "buf"):
            return
        stored, pending = Counter(self.lake.published), Counter(self.buf.snapshot())
        assert stored + pending == Counter(self.accepted)
        assert not (set(stored) & set(self.erased))
        # What a crash now would replay is exactly what is not stored yet.
        journalled = Counter(spool_events(self.dir))
        if self.journal_dirty:
            assert set(journalled) >= set(pending)
        else:
            assert journalled == pending

    def teardown(self) -> None:
        if hasattr(self, "buf"):
            self.journal.failing = False
            assert self.buf.close(1)
            assert Counter(self.lake.published) == Counter(self.accepted)
            assert spool_events(self.dir) == []
            shutil.rmtree(self.dir, ignore_errors=True)


TestBufferMachine = BufferMachine.TestCase
TestBufferMachine.pytestmark = [pytest.mark.slow]  # 100 runs of 30 steps: ~9 s
TestBufferMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])


def test_an_event_the_journal_cannot_encode_is_refused_not_raised(tmp_path: Path) -> None:
    """``offer()`` never raises into the host, and the counters still add up."""
    spool = Spool(tmp_path)
    buf = EventBuffer(Lake().sink, journal=spool)
    assert buf.offer(make_event(pathname="/lone-\ud800-surrogate")) is False
    assert buf.offer(make_event(pathname="/fine"))
    s = buf.stats()
    assert (s.offered, s.pending, s.dropped_full, s.journal_failures) == (2, 1, 1, 1)
    assert s.offered == s.flushed + s.pending + s.dropped_full
    assert [e.pathname for e in spool_events(tmp_path)] == ["/fine"]
    assert buf.close(1)
