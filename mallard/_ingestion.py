"""Ingestion: the write side of a :class:`~mallard._app.Mallard`, from a raw event to the lake.

:class:`Ingestion` owns what a started instance runs in this process: the recovery of spools left by
stopped processes, the :class:`~mallard._tracker.Tracker` (whose first step is ``intake.validate``), the
:class:`~mallard._buffer.EventBuffer` and its sink into the Store, and the maintenance thread that runs
``maintenance.Maintenance``'s passes. It starts lazily, stops with :meth:`Ingestion.close` (a final
flush) and starts afresh in a forked child. It knows nothing of queries, auth or HTTP: the composition
root hands it callbacks for what those need (invalidating cached answers, counting redactions, a metrics
snapshot on every tick).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from . import _drops as drops
from ._buffer import BufferStats, EventBuffer
from ._enrich.geo import GeoLookup
from ._enrich.useragent import AgentParser
from ._errors import StorageError
from ._events import Row
from ._maintenance import Maintenance
from ._payload import RawEvent
from ._privacy import Salts, load_secret
from ._settings import Settings
from ._sharedstate import SharedState
from ._store import Store
from ._store.tombstones import Tombstone
from ._tracker import ClientContext, Outcome, Tracker

__all__ = ["Ingestion", "Stats"]

log = logging.getLogger("mallard")


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of one process: pipeline outcomes and buffer state."""

    outcomes: Mapping[str, int]
    buffer: BufferStats
    ua_cache_hits: int
    ua_cache_misses: int


class Ingestion:
    """Tracker, buffer, recovery and the background threads of one process over ``store``.

    ``lock`` is the owner's (re-entrant) lock: starting and closing run under it, as does whatever the
    owner builds lazily, so a start that reaches back into the owner (a quarantined file counted in its
    metrics) never waits on a second lock. ``on_publish`` gets the sites whose events were just stored,
    ``on_redact`` the redactions the pipeline made, ``on_tick`` runs with every quick chore of the
    maintenance thread. ``state`` holds the salts and the secret shared with every other process.
    """

    def __init__(self, store: Store, state: SharedState, settings: Settings, upkeep: Maintenance, *,
                 lock: threading.RLock, geo: GeoLookup, clock: Callable[[], datetime],
                 on_publish: Callable[[set[str]], None], on_redact: Callable[[str, int], None],
                 on_tick: Callable[[], None]) -> None:
        self._store = store
        self._state = state
        self._settings = settings
        self._upkeep = upkeep
        self._lock = lock
        self._geo = geo
        self._clock = clock
        self._on_publish = on_publish
        self._on_redact = on_redact
        self._on_tick = on_tick
        #: Started in this process and not closed (reset after fork).
        self.running = False
        self._tracker: Tracker | None = None
        self._buffer: EventBuffer | None = None
        # Erasures whose events this process no longer buffers (see _sink); those made before it
        # started are applied by definition.
        self._erasures_applied: set[Tombstone] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Why the last start() failed, or the recovery of stopped processes' spools (retried by the
        # maintenance thread); None when all is well.
        self._start_error: str | None = None
        self._recovery_error: str | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Recover, then start the tracker, the buffer and the maintenance thread (idempotent)."""
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            self._recover()
            self._erasures_applied = set(self._store.tombstones.all())
            s = self._settings
            salts = Salts(self._state, rotation_days=s.visitor_salt_rotation_days)
            try:
                secret = load_secret(self._state, s.secret)
                journal = self._store.journal()
            except StorageError as exc:
                self._start_error = exc.message
                raise
            self._start_error = None
            self._tracker = Tracker(s, salts=salts, secret=secret, geo=self._geo,
                                    agents=AgentParser(s.ua_cache_size),
                                    clock=self._clock, on_redact=self._on_redact)
            self._buffer = EventBuffer(self._sink, journal=journal,
                                       max_events=s.max_buffered_events, flush_at=s.flush_event_count,
                                       flush_interval=s.flush_interval_secs,
                                       min_flush_gap=s.min_flush_gap_secs)
            self._buffer.start()
            dropping = drops.rules(s)
            if dropping:
                log.info("mallard: accepted but not stored (answered 202 with X-Mallard-Dropped): %s",
                         "; ".join(dropping))
            self._stop.clear()
            self._thread = threading.Thread(target=self._maintain, name="mallard-maintenance",
                                            daemon=True)
            self._thread.start()
            self.running = True

    def _recover(self, *, wait: bool = True) -> None:
        """Replay the spools of stopped processes; a failure (a full disk) is kept in
        :meth:`warnings` and retried by the maintenance thread, never raised: reads need no disk.
        Without ``wait``, nothing happens while another process is recovering."""
        try:
            self._store.recover(wait=wait)
        except OSError as exc:
            reason = exc.message if isinstance(exc, StorageError) else (exc.strerror or str(exc))
            if self._recovery_error is None:
                log.error("recovery of stopped processes' spools failed (retrying): %s", reason)
            self._recovery_error = reason
            return
        if self._recovery_error is not None:
            log.info("recovery of stopped processes' spools succeeded after an earlier failure")
        self._recovery_error = None

    def close(self, timeout: float) -> bool:
        """Stop: flush the buffer within ``timeout`` seconds and join the maintenance thread. The
        caller holds the lock and has checked :attr:`running`. Returns True when everything buffered
        is in the lake."""
        self.running = False
        self._stop.set()
        buffer, self._buffer = self._buffer, None
        ok = buffer.close(timeout) if buffer is not None else True
        if self._thread is not None:
            self._thread.join(5)
        self._upkeep.reset()
        return ok

    def after_fork(self, lock: threading.RLock) -> None:
        """In a forked child: the parent keeps (and will store) everything it buffered; the child
        starts afresh on first use, under its owner's new ``lock``."""
        self._lock = lock
        if self._buffer is not None:
            journal = getattr(self._buffer, "_journal", None)
            if journal is not None and hasattr(journal, "abandon"):
                journal.abandon()
        self._buffer = None
        self._tracker = None
        self._thread = None
        self._stop = threading.Event()
        self._upkeep.reset()
        self.running = False

    def problems(self) -> list[str]:
        """What keeps this process from ingesting or storing events right now (see
        :meth:`Mallard.problems <mallard._app.Mallard.problems>`)."""
        found = []
        if self._start_error is not None and not self.running:
            found.append(f"ingestion cannot start: {self._start_error}")
        buffer = self.current_buffer()
        if buffer is not None:
            error = buffer.journal_error or self._store.spool_error
            if error is not None:
                found.append(f"ingestion refused: the spool cannot be written ({error})")
            if buffer.pending >= buffer.max_events:
                found.append("ingestion refused: the event buffer is full")
        return found

    def warnings(self) -> list[str]:
        """Degraded but working: a failing flush or recovery (events are kept and retried)."""
        found = []
        if self._recovery_error is not None:
            found.append(f"recovery of stopped processes' spools failed, retrying: {self._recovery_error}")
        buffer = self.current_buffer()
        if buffer is not None and buffer.failing:
            found.append(f"flushing to the lake fails, events kept and retried: {buffer.stats().last_error}")
        return found + self._store.warnings()

    # -- events -----------------------------------------------------------------------------------
    def ingest(self, raws: Iterable[RawEvent], ctx: ClientContext, *,
               all_or_nothing: bool = False) -> list[Outcome]:
        """Run raw events through the pipeline and buffer the accepted ones; with ``all_or_nothing``,
        none unless every event is valid (see :meth:`Mallard.ingest <mallard._app.Mallard.ingest>`)."""
        if not self.running:
            self.start()
        if not all_or_nothing:
            return [self.ingest_one(raw, ctx) for raw in raws]
        tracker, buffer = self._tracker, self._buffer
        assert tracker is not None and buffer is not None
        outcomes = [tracker.process(raw, ctx) for raw in raws]
        if len(outcomes) == 1:  # one event: nothing to hold back
            event = outcomes[0].event  # set exactly when accepted
            if event is not None and not buffer.offer(event):
                return [self._refused(tracker, buffer)]
            return outcomes
        if any(o.error is not None for o in outcomes):
            return [Outcome(False, "not_stored") if o.accepted else o for o in outcomes]
        for i, outcome in enumerate(outcomes):
            if outcome.accepted:
                assert outcome.event is not None
                if not buffer.offer(outcome.event):
                    outcomes[i] = self._refused(tracker, buffer)
        return outcomes

    def ingest_one(self, raw: RawEvent, ctx: ClientContext) -> Outcome:
        """One event through the pipeline into the buffer; an invalid one raises with ``strict``."""
        if not self.running:
            self.start()
        tracker, buffer = self._tracker, self._buffer
        assert tracker is not None and buffer is not None
        outcome = tracker.process(raw, ctx)
        if outcome.accepted:
            assert outcome.event is not None
            if not buffer.offer(outcome.event):
                return self._refused(tracker, buffer)
        elif outcome.error is not None and self._settings.strict:
            raise outcome.error
        return outcome

    @staticmethod
    def _refused(tracker: Tracker, buffer: EventBuffer) -> Outcome:
        """The outcome of an event the buffer refused: ``buffer_full``, ``storage_unavailable`` or
        ``unencodable`` (see :attr:`EventBuffer.refusal`)."""
        reason = buffer.refusal
        tracker.count(reason)
        return Outcome(False, reason)

    def flush(self) -> int:
        """Write everything buffered to the lake now. Returns the number of events written."""
        buffer = self._buffer
        return buffer.flush() if buffer is not None else 0

    def current_buffer(self) -> EventBuffer | None:
        """The buffer of a started instance (queries read its events beside the lake's), else None."""
        return self._buffer if self.running else None

    def pending(self) -> int:
        """Events buffered in this process and not stored yet."""
        buffer = self.current_buffer()
        return buffer.stats().pending if buffer is not None else 0

    def discard(self, site: str, start_date: date, end_date: date) -> int:
        """Drop the buffered events of ``site`` dated ``start_date``..``end_date`` (an erasure).
        Returns how many."""
        buffer = self.current_buffer()
        if buffer is None:
            return 0
        erased = Tombstone(site, start_date, end_date, time.time())  # the range Store.erase records
        return buffer.discard(lambda e: not erased.covers(e))

    def _sink(self, events: Sequence[Row]) -> Callable[[], None]:
        publish = self._store.write_batch(events, applied=self._erasures_applied)
        touched = publish.partitions

        def publish_and_note() -> None:
            publish()
            self._upkeep.written(touched)
            self._on_publish({site for site, _ in touched})

        return publish_and_note

    def stats(self) -> Stats:
        """Pipeline and buffer counters of this process."""
        tracker, buffer = self._tracker, self._buffer
        empty = BufferStats(0, 0, 0, 0, 0, 0, 0, None)
        agents = getattr(tracker, "_agents", None)
        return Stats(
            outcomes=dict(tracker.counts) if tracker is not None else {},
            buffer=buffer.stats() if buffer is not None else empty,
            ua_cache_hits=getattr(agents, "hits", 0), ua_cache_misses=getattr(agents, "misses", 0),
        )

    # -- the maintenance thread (mallard/_maintenance.py) ------------------------------------------
    def _maintain(self) -> None:
        self._upkeep.run(self._stop, self._chores, lambda: self._recover(wait=False))

    def _chores(self) -> None:
        self._on_tick()
        if self._recovery_error is not None:
            self._recover()
        self._store.retry_spool()  # after a full disk: ready again without waiting for an event
