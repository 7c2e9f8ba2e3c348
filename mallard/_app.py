"""Mallard: the composition root. Settings → Store → Ingestion (Tracker → EventBuffer) → Queries.

``Mallard`` wires the core together and owns its lifecycle: lazy :meth:`start` of its
:class:`~mallard._ingestion.Ingestion` (recovery of spools left by stopped processes, salts, the flusher
and maintenance threads), :meth:`close` (final flush), use as a context manager, an async ``lifespan`` for
ASGI hosts, ``atexit`` and ``fork`` safety; and the state shared by all processes, built on first use
(``auth``, ``goals``, ``funnels``, ``shared_links``, ``metrics``). It contains no pipeline step and no SQL.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._enrich.geo import GeoLookup
from ._errors import InvalidEventError, StorageError
from ._events import validate_site_id
from ._funnels import SavedFunnels
from ._ingestion import Ingestion, Stats
from ._maintenance import Maintenance
from ._payload import RawEvent
from ._privacy import load_secret
from ._progress import Progress, chosen
from ._queries import Queries
from ._queries.prepare import prepare
from ._settings import Settings
from ._sharedstate import shared_state
from ._shares import SharedLinks
from ._store import ErasureResult
from ._store.objectstore import open_store
from ._tracker import ClientContext, Outcome, utcnow
from .context import current_client

if TYPE_CHECKING:
    from ._auth import Auth
    from ._goals import Goals
    from ._telemetry import ProcessCounters

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
        self.settings = settings = Settings.given(settings, **options)
        self._clock = clock
        self.store = open_store(settings, read_only=False)  # data_dir, or lake_url's shared lake
        #: What every process, and with an ``s3://`` lake_url every host, shares: salts, the secret, auth,
        #: goals, funnels, shared links (``state/`` of data_dir, or of the bucket; mallard/_sharedstate.py).
        self.state = shared_state(settings, self.store.state_dir)
        self.store.quarantine.on_moved = self._count_quarantined
        self._geo = GeoLookup(settings.geoip_db_path, settings.geoip_precision,  # fails fast
                              builtin_countries=settings.geoip_builtin_countries)
        self._lock = threading.RLock()
        #: The background passes (compaction, stored sessions, retention) and what they track.
        self._upkeep = Maintenance(self.store, settings, clock)
        self._ingestion = Ingestion(self.store, self.state, settings, self._upkeep, lock=self._lock,
                                    geo=self._geo, clock=clock,
                                    on_publish=lambda sites: self.queries.invalidate(sites),
                                    on_redact=self._count_redactions, on_tick=self._snapshot_metrics)
        self.queries = Queries(self.store, settings, buffer=self._ingestion.current_buffer, clock=clock,
                               state=self.state)
        self._upkeep.prepare = lambda site: prepare(self.queries, site)
        self._auth: Auth | None = None
        self._funnels: SavedFunnels | None = None
        self._shared_links: SharedLinks | None = None
        self._metrics: ProcessCounters | None = None
        self._extensions: dict[type, Extension] = {}
        _live.add(self)

    # -- HTTP-facing state (created on first use) -------------------------------------------------
    @property
    def auth(self) -> Auth:
        """Admin password, login sessions, API keys and lockouts, shared by all processes (``state/``)
        and, with an ``s3://`` lake_url, all hosts."""
        with self._lock:
            if self._auth is None:
                from ._auth import Auth

                self._auth = Auth(self.state, self.settings,
                                  secret=load_secret(self.state, self.settings.secret), clock=self._clock)
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
                self._funnels = SavedFunnels(self.state)
            return self._funnels

    @property
    def shared_links(self) -> SharedLinks:
        """Read-only shared links of every site (``state/shared_links.json``): ``secret, link =
        m.shared_links.create("example.com", "Investors")``; the secret is not stored."""
        with self._lock:
            if self._shared_links is None:
                self._shared_links = SharedLinks(self.state, clock=self._clock)
            return self._shared_links

    @property
    def metrics(self) -> ProcessCounters:
        """Prometheus metrics of this process, rendered with those of every other worker."""
        with self._lock:
            if self._metrics is None:
                from ._telemetry import ProcessCounters

                metrics = ProcessCounters(self.store.state_dir)
                metrics.set_gauge_source("mallard_buffered_events", self._ingestion.pending)
                metrics.set_gauge_source("mallard_spool_waiting_bytes", self.store.waiting_bytes)
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

    # -- lifecycle (mallard/_ingestion.py) ---------------------------------------------------------
    @property
    def started(self) -> bool:
        # A flag, not a getpid() comparison: this is read on every track() call, and the at-fork
        # hook resets it in a child process.
        return self._ingestion.running

    def start(self) -> Mallard:
        """Recover, then start ingestion (idempotent; called lazily by the first track())."""
        self._ingestion.start()
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

    def problems(self) -> list[str]:
        """What keeps this process from ingesting or storing events right now (empty when healthy).

        Readiness (``/health/ready``) is about this process's ability to accept events and answer:
        a start that failed, a spool that cannot be written (a full disk) and a full buffer make it
        unready; a failing flush or recovery is reported but events are kept and retried.
        """
        return self._ingestion.problems()

    def warnings(self) -> list[str]:
        """Degraded but working: a failing flush or recovery (events are kept and retried)."""
        return self._ingestion.warnings()

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
            ok = self._ingestion.close(self.settings.shutdown_timeout_secs if timeout is None else timeout)
            self._snapshot_metrics()
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
        # A fresh lock (the parent's may have been held by a thread that does not exist here); the
        # parent keeps (and will store) everything it buffered, the child starts afresh on first use.
        self._lock = threading.RLock()
        self._ingestion.after_fork(self._lock)

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
            return self._ingestion.ingest_one(raw, ctx)
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
        return self._ingestion.ingest(raws, ctx, all_or_nothing=all_or_nothing)

    def _count_redactions(self, kind: str, amount: int) -> None:
        """Redactions made by the pipeline, for ``/metrics`` (from track() and HTTP alike)."""
        try:
            metrics = self._metrics if self._metrics is not None else self.metrics
            metrics.inc("mallard_pii_redactions_total", amount, kind=kind)
        except Exception as exc:  # analytics never breaks the host
            log.error("counting a redaction failed: %s", type(exc).__name__)

    def _snapshot_metrics(self) -> None:
        """This process's counters, written for the other workers' ``/metrics`` (when any exist)."""
        if self._metrics is not None:
            self._metrics.flush_snapshot()

    def flush(self) -> int:
        """Write everything buffered to the lake now. Returns the number of events written."""
        return self._ingestion.flush()

    # -- maintenance (mallard/_maintenance.py) ------------------------------------------------------
    def compact(self, *, only_touched: bool = False, progress: bool | Progress | None = None) -> int:
        """Merge small Parquet files (see ``compact_after_files``). Returns partitions compacted.

        ``progress``: True draws a progress bar (tqdm.auto: a widget in a notebook with ipywidgets),
        False none, None one when someone watches (a notebook, or stderr a terminal); or a
        :class:`~mallard._progress.Progress` callback, called with the partitions to merge.
        """
        with chosen(progress) as report:
            return self._upkeep.compact(only_touched=only_touched, progress=report)

    def build_sessions(self, *, budget_secs: float = 600.0, progress: bool | Progress | None = None) -> int:
        """Store the sessions and the rollups of every settled day (two days old, UTC) whose events
        changed since they were stored, oldest first, then the provisional sessions of the open days
        (yesterday and today, up to a minute ago), for at most ``budget_secs`` (see docs/storage.md).
        Returns the number of days built. Maintenance runs it after compaction; queries compute the
        days not stored yet from events, so this only makes them faster. ``progress`` as for
        :meth:`compact`, counting days."""
        with chosen(progress) as report:
            return self._upkeep.build_sessions(budget_secs=budget_secs, progress=report)

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
        buffered = self._ingestion.discard(site, start_date, end_date)
        # Records the erasure for every process: the next flush here (as in the others) also drops
        # the events of the range that arrive until then.
        partitions = self.store.erase(site, start_date, end_date)
        self._upkeep.erased()  # the next maintenance pass rebuilds the sessions it deleted
        self.queries.invalidate({site})
        return ErasureResult(site, start_date, end_date, buffered, partitions)

    def stats(self) -> Stats:
        """Pipeline and buffer counters of this process."""
        return self._ingestion.stats()
