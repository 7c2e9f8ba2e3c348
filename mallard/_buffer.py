"""EventBuffer: a bounded in-memory batch of events, flushed by count, by interval and on close.

``offer()`` never blocks on I/O beyond one journal append and never raises into the caller: when the
buffer is full the event is refused and counted. A background thread flushes when ``flush_at`` events
are waiting or every ``flush_interval`` seconds. A failed flush keeps its events (and their journal
segments) and is retried with exponential back-off, so nothing accepted is dropped silently.

Invariant (tested): ``offered == flushed + pending + dropped_full``.

The buffer knows nothing about Parquet. Its ``sink`` stores a batch and may return a *publish* callable;
the buffer calls it under :attr:`view_lock` together with clearing the batch, so a reader that takes the
same lock to list stored files and :meth:`snapshot` the buffer never counts an event twice or misses it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ._events import Event, Row

log = logging.getLogger("mallard.buffer")

Publish = Callable[[], None]
Sink = Callable[[Sequence[Row]], Publish | None]


class Journal(Protocol):
    """Durable record of accepted events until they are stored (the Store's spool)."""

    def append(self, event: Row) -> None: ...
    def rotate(self) -> object: ...
    def release(self, tokens: Sequence[object]) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BufferStats:
    offered: int
    accepted: int
    flushed: int
    pending: int
    dropped_full: int
    journal_failures: int
    flush_failures: int
    last_error: str | None


class EventBuffer:
    """Bounded, thread-safe event buffer with a background flusher."""

    def __init__(self, sink: Sink, *, journal: Journal | None = None, max_events: int = 100_000,
                 flush_at: int = 1000, flush_interval: float = 5.0,
                 max_backoff: float = 60.0, min_flush_gap: float = 0.0) -> None:
        self._sink = sink
        self._journal = journal
        self.max_events = max_events
        self.flush_at = flush_at
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        # Count-triggered flushes are at least this far apart unless the buffer is half full: under
        # heavy traffic that makes few large Parquet files instead of many small ones (a file costs
        # milliseconds whatever its size).
        self.min_flush_gap = min_flush_gap
        self._last_flush = 0.0
        self._urgent = threading.Event()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.view_lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Plain tuples, not Events: see events.Row (the garbage collector skips them once untracked).
        self._pending: list[Row] = []
        self._inflight: list[Row] = []
        self._tokens: list[object] = []
        self._offered = self._flushed = self._dropped_full = 0
        #: Changes to the events held (added, stored, erased): two snapshots with the same count hold
        #: the same events (:meth:`marked_snapshot`).
        self._changes = 0
        self._journal_failures = self._flush_failures = 0
        self._consecutive_failures = 0
        self._last_error: str | None = None
        #: Why the last refused :meth:`offer` was refused: ``buffer_full``, ``storage_unavailable``
        #: (the journal could not be written: a full disk) or ``unencodable``.
        self.refusal = "buffer_full"
        #: The journal's last write error (e.g. "No space left on device"), None once a write succeeds.
        self.journal_error: str | None = None

    # -- producer side ----------------------------------------------------------------------------
    def offer(self, event: Event) -> bool:
        """Add an event; False (and counted) when the buffer is full or the journal failed."""
        with self._lock:
            self._offered += 1
            if len(self._pending) + len(self._inflight) >= self.max_events:
                self._dropped_full += 1
                self.refusal = "buffer_full"
                return False
            if self._journal is not None:
                try:
                    self._journal.append(event)
                except (OSError, ValueError, TypeError) as exc:
                    # Not durable, so not acknowledged: refuse rather than pretend. (TypeError and
                    # ValueError: the journal cannot encode the event, e.g. a lone surrogate.)
                    self._journal_failures += 1
                    self._dropped_full += 1
                    if isinstance(exc, OSError):
                        self.refusal = "storage_unavailable"
                        self.journal_error = str(exc.strerror or exc)
                    else:
                        self.refusal = "unencodable"
                    self._last_error = f"journal: {self.journal_error if isinstance(exc, OSError) else exc}"
                    return False
                if self.journal_error is not None:
                    self.journal_error = None
            self._pending.append(tuple(event))
            self._changes += 1
            waiting = len(self._pending)
        # is_set() first: set() takes a lock and notifies, and under load every offer past
        # flush_at would pay for it until the flusher runs.
        if waiting >= self.flush_at and not self._wake.is_set():
            self._wake.set()
        if waiting >= self.max_events // 2 and not self._urgent.is_set():
            self._urgent.set()
        return True

    # -- consumer side ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Store everything waiting now (in the caller's thread). Returns the events stored.

        Raises:
            Exception: whatever the sink raised; the events stay buffered for a retry.
        """
        with self._flush_lock:
            with self._lock:
                if self._pending:
                    self._inflight.extend(self._pending)
                    self._pending = []
                    if self._journal is not None:
                        self._tokens.append(self._journal.rotate())
                batch = list(self._inflight)
                stale = [] if batch else self._tokens
                if stale:
                    self._tokens = []
            if not batch:
                if stale and self._journal is not None:  # segments of erased events only
                    self._journal.release(stale)
                return 0
            try:
                publish = self._sink(batch)
                with self.view_lock:
                    if publish is not None:
                        publish()
                    with self._lock:
                        self._inflight = []
                        self._changes += 1
                        tokens, self._tokens = self._tokens, []
                        self._flushed += len(batch)
            except Exception as exc:
                with self._lock:
                    self._flush_failures += 1
                    self._consecutive_failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                raise
            self._consecutive_failures = 0
            if self._journal is not None:
                try:
                    self._journal.release(tokens)
                except OSError as exc:  # stored already; a leftover segment would replay as duplicates
                    log.error("could not remove stored spool segments: %s", exc)
            return len(batch)

    def snapshot(self) -> list[Row]:
        """Events not yet published to storage (call under :attr:`view_lock` with the file listing), as
        plain tuples in :class:`~mallard._events.Event` field order (``Event(*row)`` rebuilds one)."""
        return self.marked_snapshot()[0]

    def marked_snapshot(self) -> tuple[list[Row], int]:
        """:meth:`snapshot`, and a mark of it: snapshots with the same mark hold the same events (what
        is computed from one serves the other)."""
        with self._lock:
            return self._inflight + self._pending, self._changes

    def discard(self, keep: Callable[[Row], bool]) -> int:
        """Remove buffered events (rows, as :meth:`snapshot` gives them) for which ``keep`` is false
        (erasure). Returns how many."""
        with self._flush_lock, self._lock:
            before = len(self._pending) + len(self._inflight)
            self._pending = [e for e in self._pending if keep(e)]
            self._inflight = [e for e in self._inflight if keep(e)]
            removed = before - len(self._pending) - len(self._inflight)
            self._changes += 1
            self._offered -= removed  # erased, neither flushed nor dropped
            if removed and self._journal is not None:
                self._rejournal()
            return removed

    def _rejournal(self) -> None:
        """Rewrite the journal without erased events (a crash must not bring them back).

        The survivors are appended to fresh segments before the old ones are deleted, so a crash in
        between can duplicate survivors but never lose one. As everywhere, in-flight events end up in
        finished segments (tokens) and pending ones in the current segment. Caller holds both locks.
        """
        journal = self._journal
        assert journal is not None
        old = [*self._tokens, journal.rotate()]
        fresh: list[object] = []
        try:
            if self._inflight:
                for event in self._inflight:
                    journal.append(event)
                fresh.append(journal.rotate())
            for event in self._pending:
                journal.append(event)
        except (OSError, ValueError, TypeError) as exc:
            # Keep the old segments (the survivors are durable only there): the erased events stay
            # on disk until the next successful flush deletes every finished segment.
            with contextlib.suppress(OSError):
                fresh.append(journal.rotate())  # so partial copies are deleted with the rest
            self._tokens = old + fresh
            self._journal_failures += 1
            self._last_error = f"journal: {exc}"
            log.error("could not rewrite the spool after erasure: %s", exc)
            return
        self._tokens = fresh
        try:
            journal.release(old)
        except OSError as exc:
            log.error("could not remove spool segments after erasure: %s", exc)

    @property
    def failing(self) -> bool:
        """Whether the last flush failed (its events are kept and retried)."""
        return self._consecutive_failures > 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._inflight)

    def stats(self) -> BufferStats:
        with self._lock:
            return BufferStats(
                offered=self._offered, accepted=self._offered - self._dropped_full,
                flushed=self._flushed, pending=len(self._pending) + len(self._inflight),
                dropped_full=self._dropped_full, journal_failures=self._journal_failures,
                flush_failures=self._flush_failures, last_error=self._last_error,
            )

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mallard-flusher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.flush_interval
            if self._consecutive_failures:
                delay = min(self.max_backoff,
                            self.flush_interval * 2 ** min(self._consecutive_failures, 16))
            self._wake.wait(delay)
            self._wake.clear()
            gap = self.min_flush_gap - (time.monotonic() - self._last_flush)
            if gap > 0 and not self._stop.is_set():
                self._urgent.wait(gap)
            self._urgent.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception as exc:
                log.error("flush failed (events kept, retrying): %s", exc)
            self._last_flush = time.monotonic()

    def close(self, timeout: float | None = 30.0) -> bool:
        """Stop the flusher and flush what is left, within ``timeout`` seconds.

        Returns True when everything was stored. Events that could not be stored stay in the journal
        and are recovered by the next process that opens the data directory.
        """
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        thread, self._thread = self._thread, None
        deadline = None if timeout is None else time.monotonic() + timeout
        if thread is not None:
            thread.join(timeout)
        ok = False
        while True:
            try:
                self.flush()
                ok = True
                break
            except Exception as exc:
                log.error("final flush failed: %s", exc)
                if deadline is None or time.monotonic() + 0.2 > deadline:
                    break
                time.sleep(0.2)
        if self._journal is not None and ok:
            self._journal.close()
        return ok
