"""Mallard: the composition root. Settings → Store → EventBuffer → Tracker → Queries.

``Mallard`` wires the core together and owns its lifecycle: lazy :meth:`start` (recovery of spools left by
stopped processes, salts, GeoIP, the flusher and maintenance threads), :meth:`close` (final flush), use as
a context manager, an async ``lifespan`` for ASGI hosts, ``atexit`` and ``fork`` safety. It contains no
pipeline step and no SQL.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import drops
from .buffer import BufferStats, EventBuffer
from .context import current_client
from .enrich.geo import GeoLookup
from .enrich.useragent import AgentParser
from .errors import InvalidEventError, StorageError
from .events import Row, validate_site_id
from .funnels import SavedFunnels
from .maintenance import Maintenance
from .payload import RawEvent
from .privacy import Salts, load_secret
from .queries import Queries
from .settings import Settings
from .shares import SharedLinks
from .store import ErasureResult, Store
from .store.tombstones import Tombstone
from .tracker import ClientContext, Outcome, Tracker, utcnow

if TYPE_CHECKING:
    from .auth import Auth
    from .goals import Goals
    from .telemetry import ProcessCounters

log = logging.getLogger("mallard")


_live: weakref.WeakSet[Mallard] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for instance in list(_live):
        with contextlib.suppress(Exception):
            instance.close()


def _reset_all_after_fork() -> None:
    for instance in list(_live):
        instance._after_fork()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_reset_all_after_fork)


class Extension(Protocol):
    """What :meth:`Mallard.extension` keeps: an object closed with the instance."""

    def close(self) -> object: ...


E = TypeVar("E", bound=Extension)


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of one process: pipeline outcomes and buffer state."""

    outcomes: Mapping[str, int]
    buffer: BufferStats
    ua_cache_hits: int
    ua_cache_misses: int


class Mallard:
    """Analytics embedded in the host application.

    Args:
        settings: a :class:`Settings`; when omitted, built with :meth:`Settings.load` from ``**options``,
            a TOML file named by ``MALLARD_CONFIG`` and ``MALLARD_*`` environment variables.
        clock: returns the current time (tests inject a frozen clock).
        **options: setting overrides, e.g. ``data_dir="var/analytics"``.

    **Usage**::

        m = mallard.Mallard(data_dir="var/analytics")
        m.track("signup", site="example.com", url="https://example.com/join", user_id="42")
        m.queries.main("example.com", period="7d").to_dict()
    """

    def __init__(self, settings: Settings | None = None, /, *,
                 clock: Callable[[], datetime] = utcnow, **options: Any) -> None:
        if settings is None:
            settings = Settings.load(**options)
        elif options:
            settings = settings.replace(**options)
        self.settings = settings
        self._clock = clock
        self.store = Store(settings.data_dir, spool_fsync=settings.spool_fsync,
                           duckdb_threads=settings.duckdb_threads,
                           duckdb_memory_limit=settings.duckdb_memory_limit,
                           quarantine_grace_secs=settings.quarantine_grace_secs)
        self.store.quarantine.on_moved = self._count_quarantined
        self._geo = GeoLookup(settings.geoip_db_path, settings.geoip_precision,  # fails fast
                              builtin_countries=settings.geoip_builtin_countries)
        self._lock = threading.RLock()
        self._running = False  # started in this process and not closed (reset after fork)
        self._tracker: Tracker | None = None
        self._buffer: EventBuffer | None = None
        #: The background passes (compaction, stored sessions, retention) and what they track.
        self._upkeep = Maintenance(self.store, settings, clock)
        # Erasures whose events this process no longer buffers (see _sink); those made before it
        # started are applied by definition.
        self._erasures_applied: set[Tombstone] = set()
        self._maintenance: threading.Thread | None = None
        self._stop = threading.Event()
        #: Why the last start() failed, or the recovery of stopped processes' spools (retried by the
        #: maintenance thread); None when all is well.
        self._start_error: str | None = None
        self._recovery_error: str | None = None
        self.queries = Queries(self.store, settings, buffer=self._current_buffer, clock=clock)
        self._auth: Auth | None = None
        self._funnels: SavedFunnels | None = None
        self._shared_links: SharedLinks | None = None
        self._metrics: ProcessCounters | None = None
        self._extensions: dict[type, Extension] = {}
        _live.add(self)

    # -- HTTP-facing state (created on first use) -------------------------------------------------
    @property
    def auth(self) -> Auth:
        """Admin password, login sessions, API keys and lockouts, shared by all processes (``state/``)."""
        with self._lock:
            if self._auth is None:
                from .auth import Auth

                self._auth = Auth(self.store.state_dir, self.settings,
                                  secret=load_secret(self.store.state_dir, self.settings.secret),
                                  clock=self._clock)
            return self._auth

    @property
    def goals(self) -> Goals:
        """Goals, saved segments and reporting currencies of every site, shared by all processes
        (``state/goals.json``): ``m.goals.add("example.com", event_name="Signup")``."""
        return self.queries.goals

    @property
    def funnels(self) -> SavedFunnels:
        """Saved funnels of every site, shared by all processes (``state/funnels.json``):
        ``m.funnels.add("example.com", "Signup", ["page:/pricing", "event:Signup"])``."""
        with self._lock:
            if self._funnels is None:
                self._funnels = SavedFunnels(self.store.state_dir)
            return self._funnels

    @property
    def shared_links(self) -> SharedLinks:
        """Read-only shared links of every site (``state/shared_links.json``): ``secret, link =
        m.shared_links.create("example.com", "Investors")``; the secret is not stored."""
        with self._lock:
            if self._shared_links is None:
                self._shared_links = SharedLinks(self.store.state_dir, clock=self._clock)
            return self._shared_links

    @property
    def metrics(self) -> ProcessCounters:
        """Prometheus metrics of this process, rendered with those of every other worker."""
        with self._lock:
            if self._metrics is None:
                from .telemetry import ProcessCounters

                metrics = ProcessCounters(self.store.state_dir)
                buffer_pending = lambda: (b.stats().pending if (b := self._current_buffer()) else 0)  # noqa: E731
                metrics.set_gauge_source("mallard_buffered_events", buffer_pending)
                metrics.set_gauge_source("mallard_geoip_loaded", lambda: int(self.geoip_loaded))
                metrics.set_gauge_source("mallard_filter_bots", lambda: int(self.settings.filter_bots))
                metrics.set_gauge_source("mallard_auth_configured",
                                         lambda: int(self.auth.password_configured()))
                self._metrics = metrics
            return self._metrics

    def _count_quarantined(self, files: int) -> None:
        self.metrics.inc("mallard_quarantined_files_total", files)

    @property
    def geoip_loaded(self) -> bool:
        """A MaxMind database is open (countries, regions and cities)."""
        return bool(self._geo.loaded)

    @property
    def geoip_source(self) -> str | None:
        """Where locations come from: the database's type (``"GeoLite2-City"``), ``"iptocc"`` (the
        built-in countries only), or None (no geolocation)."""
        return self._geo.database_type

    def extension(self, kind: type[E], build: Callable[[Mallard], E]) -> E:
        """The one ``kind`` attached to this instance: built by ``build(self)`` on the first call
        (once, whichever thread asks first), then the same object; :meth:`close` closes it.

        The edges keep their per-instance state here without the core knowing them: the HTTP layer's
        ``Api.for_mallard(m)`` is ``m.extension(Api, Api)``, so every adapter over one instance shares
        one query cache and one set of limits.
        """
        with self._lock:
            found = self._extensions.get(kind)
            if found is None:
                found = self._extensions[kind] = build(self)
            assert isinstance(found, kind)
            return found

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        # A flag, not a getpid() comparison: this is read on every track() call, and the at-fork
        # hook resets it in a child process.
        return self._running

    def start(self) -> Mallard:
        """Recover, then start ingestion (idempotent; called lazily by the first track())."""
        if self.started:
            return self
        with self._lock:
            if self.started:
                return self
            self._recover()
            self._erasures_applied = set(self.store.tombstones.all())
            salts = Salts(self.store.state_dir / "salts",
                          rotation_days=self.settings.visitor_salt_rotation_days)
            try:
                secret = load_secret(self.store.state_dir, self.settings.secret)
                journal = self.store.journal()
            except StorageError as exc:
                self._start_error = exc.message
                raise
            self._start_error = None
            self._tracker = Tracker(self.settings, salts=salts, secret=secret, geo=self._geo,
                                    agents=AgentParser(self.settings.ua_cache_size),
                                    clock=self._clock, on_redact=self._count_redactions)
            s = self.settings
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
            self._maintenance = threading.Thread(target=self._maintain, name="mallard-maintenance",
                                                 daemon=True)
            self._maintenance.start()
            self._running = True
        return self

    def start_degraded(self) -> bool:
        """:meth:`start`, but a storage problem (a full or unwritable data directory) is logged instead
        of raised: the host keeps serving reads, ingestion is refused with a clear reason and start is
        retried by the next event. Returns whether ingestion started."""
        try:
            self.start()
        except StorageError as exc:
            log.error("mallard could not start ingestion (retried on the next event): %s", exc.message)
            return False
        return True

    def _recover(self, *, wait: bool = True) -> None:
        """Replay the spools of stopped processes; a failure (a full disk) is kept in
        :meth:`problems` and retried by the maintenance thread, never raised: reads need no disk.
        Without ``wait``, nothing happens while another process is recovering."""
        try:
            self.store.recover(wait=wait)
        except OSError as exc:
            reason = exc.message if isinstance(exc, StorageError) else (exc.strerror or str(exc))
            if self._recovery_error is None:
                log.error("recovery of stopped processes' spools failed (retrying): %s", reason)
            self._recovery_error = reason
            return
        if self._recovery_error is not None:
            log.info("recovery of stopped processes' spools succeeded after an earlier failure")
        self._recovery_error = None

    def problems(self) -> list[str]:
        """What keeps this process from ingesting or storing events right now (empty when healthy).

        Readiness (``/health/ready``) is about this process's ability to accept events and answer:
        a start that failed, a spool that cannot be written (a full disk) and a full buffer make it
        unready; a failing flush or recovery is reported but events are kept and retried.
        """
        found = []
        if self._start_error is not None and not self.started:
            found.append(f"ingestion cannot start: {self._start_error}")
        buffer = self._current_buffer()
        if buffer is not None:
            error = buffer.journal_error or self.store.spool_error
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
        buffer = self._current_buffer()
        if buffer is not None and buffer.failing:
            found.append(f"flushing to the lake fails, events kept and retried: {buffer.stats().last_error}")
        return found

    def close(self, timeout: float | None = None) -> bool:
        """Flush what is buffered (within ``shutdown_timeout_secs``) and stop background threads.

        Returns True when every accepted event is in the lake. Events that could not be written stay in
        the spool and are recovered by the next start.
        """
        with self._lock:
            # The HTTP layer's Api, for one: no background refresh of cached answers runs after this.
            for extension in self._extensions.values():
                extension.close()
            if not self.started:
                return True
            self._running = False
            self._stop.set()
            buffer, self._buffer = self._buffer, None
            ok = buffer.close(self.settings.shutdown_timeout_secs if timeout is None else timeout) \
                if buffer is not None else True
            if self._maintenance is not None:
                self._maintenance.join(5)
            self._upkeep.reset()
            if self._metrics is not None:
                self._metrics.flush_snapshot()
            self.store.close()  # this thread's DuckDB connection
            return ok

    def __enter__(self) -> Mallard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """ASGI lifespan for the host app: ``Starlette(..., lifespan=m.lifespan)``.

        A storage problem at start (a full disk) does not stop the host: reads keep working, ingestion
        answers 503 and starting is tried again on the next event (see :meth:`problems`).
        """
        self.start_degraded()
        try:
            yield
        finally:
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, self.close)

    def _after_fork(self) -> None:
        # The parent keeps (and will store) everything it buffered; the child starts afresh on first use.
        self._lock = threading.RLock()
        if self._buffer is not None:
            journal = getattr(self._buffer, "_journal", None)
            if journal is not None and hasattr(journal, "abandon"):
                journal.abandon()
        self._buffer = None
        self._tracker = None
        self._maintenance = None
        self._stop = threading.Event()
        self._upkeep.reset()
        self._running = False

    # -- ingestion --------------------------------------------------------------------------------
    def track(self, name: str, *, site: str, url: str, ip: str | None = None,
              user_agent: str | None = None, referrer: str | None = None,
              screen_width: int | None = None, props: Mapping[str, Any] | str | None = None,
              revenue: float | str | None = None, currency: str | None = None,
              user_id: str | int | None = None, timestamp: datetime | None = None,
              headers: Mapping[str, str] | None = None, scroll_depth: int | None = None,
              engagement_ms: int | None = None, interactive: bool = True) -> Outcome:
        """Record one event from server-side code.

        Never raises on bad input unless ``strict`` is set: the returned :class:`Outcome` says whether
        the event was accepted, and why not. ``user_id`` is stored only as a keyed pseudonym.
        ``scroll_depth`` and ``engagement_ms`` are the values of an ``engagement`` event (one of them is
        required for it, see docs/concepts.md); ``interactive=False`` marks a custom event that must
        not count as an interaction (Plausible's ``{interactive: false}``).
        """
        try:
            raw = RawEvent(site=site, name=name, url=url, referrer=referrer,
                           screen_width=screen_width, props=props, revenue=revenue,
                           currency=currency, user_id=None if user_id is None else str(user_id),
                           timestamp=timestamp, scroll_depth=scroll_depth,
                           engagement_ms=engagement_ms, interactive=None if interactive else False)
            if headers is not None:
                ctx = ClientContext.from_headers({k.lower(): v for k, v in headers.items()}, ip)
                if user_agent is not None:
                    ctx = ClientContext(ip, user_agent, ctx.dnt, ctx.gpc, ctx.ch_mobile)
            elif ip is None and user_agent is None and (current := current_client()) is not None:
                ctx = current  # inside a request handled by an adapter or the middleware
            else:
                ctx = ClientContext(ip=ip, user_agent=user_agent)
            return self._ingest_one(raw, ctx)
        except Exception as exc:
            if self.settings.strict:
                raise
            log.error("mallard.track failed: %s", type(exc).__name__)
            return Outcome(False, "error")

    def ingest(self, raws: Iterable[RawEvent], ctx: ClientContext, *,
               all_or_nothing: bool = False) -> list[Outcome]:
        """Run raw events through the pipeline and buffer the accepted ones (used by the HTTP layer).

        With ``all_or_nothing``, nothing is buffered unless every event is valid (a batch request that
        is refused can be corrected and sent again without duplicating the rest).
        """
        if not self.started:
            self.start()
        if not all_or_nothing:
            return [self._ingest_one(raw, ctx) for raw in raws]
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

    def _ingest_one(self, raw: RawEvent, ctx: ClientContext) -> Outcome:
        if not self._running:
            self.start()
        tracker, buffer = self._tracker, self._buffer
        assert tracker is not None and buffer is not None
        outcome = tracker.process(raw, ctx)
        if outcome.accepted:
            assert outcome.event is not None
            if not buffer.offer(outcome.event):
                return self._refused(tracker, buffer)
        elif outcome.error is not None and self.settings.strict:
            raise outcome.error
        return outcome

    @staticmethod
    def _refused(tracker: Tracker, buffer: EventBuffer) -> Outcome:
        """The outcome of an event the buffer refused: ``buffer_full``, ``storage_unavailable`` or
        ``unencodable`` (see :attr:`EventBuffer.refusal`)."""
        reason = buffer.refusal
        tracker.count(reason)
        return Outcome(False, reason)

    def _count_redactions(self, kind: str, amount: int) -> None:
        """Redactions made by the pipeline, for ``/metrics`` (from track() and HTTP alike)."""
        try:
            metrics = self._metrics if self._metrics is not None else self.metrics
            metrics.inc("mallard_pii_redactions_total", amount, kind=kind)
        except Exception as exc:  # analytics never breaks the host
            log.error("counting a redaction failed: %s", type(exc).__name__)

    def flush(self) -> int:
        """Write everything buffered to the lake now. Returns the number of events written."""
        buffer = self._buffer
        return buffer.flush() if buffer is not None else 0

    def _current_buffer(self) -> EventBuffer | None:
        return self._buffer if self.started else None

    def _sink(self, events: Sequence[Row]) -> Callable[[], None]:
        publish = self.store.write_batch(events, applied=self._erasures_applied)
        touched = publish.partitions

        def publish_and_note() -> None:
            publish()
            self._upkeep.written(touched)
            self.queries.invalidate({site for site, _ in touched})

        return publish_and_note

    # -- maintenance (mallard/maintenance.py) ------------------------------------------------------
    def _maintain(self) -> None:
        self._upkeep.run(self._stop, self._chores, lambda: self._recover(wait=False))

    def _chores(self) -> None:
        if self._metrics is not None:
            self._metrics.flush_snapshot()
        if self._recovery_error is not None:
            self._recover()
        self.store.retry_spool()  # after a full disk: ready again without waiting for an event

    def compact(self, *, only_touched: bool = False) -> int:
        """Merge small Parquet files (see ``compact_after_files``). Returns partitions compacted."""
        return self._upkeep.compact(only_touched=only_touched)

    def build_sessions(self, *, budget_secs: float = 600.0) -> int:
        """Store the sessions and the rollups of every settled day (two days old, UTC) whose events
        changed since they were stored, oldest first, then the provisional sessions of the open days
        (yesterday and today, up to a minute ago), for at most ``budget_secs`` (see docs/storage.md).
        Returns the number of days built. Maintenance runs it after compaction; queries compute the
        days not stored yet from events, so this only makes them faster."""
        return self._upkeep.build_sessions(budget_secs=budget_secs)

    def apply_retention(self) -> int:
        """Delete partitions older than ``retention_days``. Returns partitions deleted."""
        return self._upkeep.apply_retention()

    def erase(self, site: str, start_date: date, end_date: date) -> ErasureResult:
        """Delete every event of ``site`` dated ``start_date``..``end_date`` (inclusive, UTC dates),
        in the lake and in this process's buffer.
        """
        validate_site_id(site)
        if end_date < start_date:
            raise InvalidEventError("end_date must be on or after start_date", code="invalid_range")
        buffered = 0
        buffer = self._current_buffer()
        if buffer is not None:
            erased = Tombstone(site, start_date, end_date, time.time())  # the range Store.erase records
            buffered = buffer.discard(lambda e: not erased.covers(e))
        # Records the erasure for every process: the next flush here (as in the others) also drops
        # the events of the range that arrive until then.
        partitions = self.store.erase(site, start_date, end_date)
        self._upkeep.erased()  # the next maintenance pass rebuilds the sessions it deleted
        self.queries.invalidate({site})
        return ErasureResult(site, start_date, end_date, buffered, partitions)

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
