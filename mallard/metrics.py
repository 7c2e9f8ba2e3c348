"""Prometheus metrics that add up across every worker process sharing one data directory.

A scrape of ``/metrics`` reaches one worker of a multi-process host (gunicorn ``-w 4``, uvicorn
``--workers 4``); it must report the totals of all of them, and counters must never go backwards when
a worker exits or is killed. ``PROMETHEUS_MULTIPROC_DIR`` cannot be used (it must be set before the host
imports prometheus_client), so mallard keeps its own small scheme under ``state/metrics/``::

    <host>-<pid>-<token>.lock   exclusively flock'ed by its process for as long as it lives
    <host>-<pid>-<token>.json   that process's latest snapshot (temporary file + rename)
    archive.json                counter and histogram totals of processes that are gone
    archive.lock                flock'ed exclusively while dead snapshots are merged into the archive

Each process counts in memory: every thread writes its own dict (no lock per increment), and a
snapshot sums the threads. A scrape adds the serving process's live values, every other snapshot and
the archive. A snapshot whose lock can be taken belongs to a dead process: under ``archive.lock`` it is
added to ``archive.json`` (which lists the ids it has absorbed, so a crash between writing the archive
and deleting the snapshot never counts it twice) and deleted. Gauges are summed (or, for 0/1 flags,
maxed) over live processes only. Before answering, the serving process persists the values it reports,
so a later scrape served by another worker never shows less, even if this one is killed.

Increments made after a process's last snapshot are lost if it is killed (``SIGKILL``); a clean
:meth:`Metrics.close` writes a final one. flock does not work across hosts over NFS: share a data
directory between processes of one machine only.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import re
import secrets
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from .enrich.redact import KINDS as REDACTION_KINDS

__all__ = ["BUCKETS", "CONTENT_TYPE", "METRICS", "MetricDef", "Metrics"]

log = logging.getLogger("mallard.metrics")

#: Content type of :meth:`Metrics.render` (Prometheus text format 0.0.4).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the ``mallard_http_request_duration_seconds`` buckets; ``+Inf`` is implied.
BUCKETS: Final[tuple[float, ...]] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                     5.0, 10.0)

_FORMAT: Final = 1
_ARCHIVE: Final = "archive"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric of the fixed set: its kind, help text, label names and, for gauges, how to merge."""

    kind: Literal["counter", "histogram", "gauge"]
    help: str
    labels: tuple[str, ...] = ()
    #: Allowed values of the (single) label; ``None`` accepts any short identifier.
    values: frozenset[str] | None = None
    #: Gauges: "sum" over live processes, or "max" for 0/1 flags every process reports alike.
    merge: Literal["sum", "max"] = "sum"


_STATUS = frozenset({"2xx", "3xx", "4xx", "5xx"})

#: Every metric mallard exposes, by name (the names of the reference, kept exactly).
METRICS: Final[Mapping[str, MetricDef]] = {
    "mallard_events_ingested_total": MetricDef("counter", "Events accepted into the buffer."),
    "mallard_events_dropped_total": MetricDef(
        "counter", "Events not stored, by reason (bot, excluded, invalid, buffer_full, ...).", ("reason",)),
    "mallard_ingest_refused_total": MetricDef(
        "counter", "Ingestion requests refused for the work they would cause, by reason: too_many_sites "
        "(a domain naming over 10 sites), batch_too_large (over 1000 events).", ("reason",),
        frozenset({"too_many_sites", "batch_too_large"})),
    "mallard_flush_failures_total": MetricDef("counter", "Failed buffer flushes to the lake (retried)."),
    "mallard_quarantined_files_total": MetricDef(
        "counter", "Unreadable lake files moved to quarantine/ (see docs/storage.md)."),
    "mallard_pii_redactions_total": MetricDef(
        "counter", "Personal data replaced by a marker before storage, by kind.", ("kind",),
        frozenset(REDACTION_KINDS)),
    "mallard_rate_limit_rejections_total": MetricDef("counter", "Requests refused by a rate limit (429)."),
    "mallard_http_refusals_total": MetricDef(
        "counter", "Requests refused to protect the server: body_timeout (408, body too slow), "
        "concurrency_limit (503, `mallard serve` past limit_concurrency).", ("reason",),
        frozenset({"body_timeout", "concurrency_limit"})),
    "mallard_login_failures_total": MetricDef("counter", "Failed dashboard logins and setup attempts."),
    "mallard_shared_link_failures_total": MetricDef("counter", "Requests with an unknown shared-link "
                                                    "secret (counted toward the login lockout)."),
    "mallard_cache_hits_total": MetricDef("counter", "Query cache lookups answered from the cache."),
    "mallard_cache_misses_total": MetricDef("counter", "Query cache lookups that ran the query."),
    "mallard_cache_evictions_total": MetricDef("counter", "Query cache entries evicted (LRU)."),
    "mallard_cache_stale_total": MetricDef(
        "counter", "Query cache lookups answered with an expired entry while it is refreshed."),
    "mallard_cache_refresh_failures_total": MetricDef(
        "counter", "Background refreshes of stale query cache entries that failed (entry kept)."),
    "mallard_http_requests_total": MetricDef(
        "counter", "HTTP requests answered by mallard, by status class.", ("status",), _STATUS),
    "mallard_http_request_duration_seconds": MetricDef(
        "histogram", "Time to answer an HTTP request handled by mallard, in seconds."),
    "mallard_buffered_events": MetricDef("gauge", "Events held in memory, not yet flushed to the lake."),
    "mallard_cache_entries": MetricDef("gauge", "Entries in the query caches."),
    "mallard_auth_configured": MetricDef("gauge", "1 if an admin password is set, else 0.", merge="max"),
    "mallard_geoip_loaded": MetricDef("gauge", "1 if a GeoIP database is loaded, else 0.", merge="max"),
    "mallard_behavioral_extension": MetricDef(
        "gauge", "Always 0: no DuckDB extension is loaded (Mallard Metrics' behavioral extension); "
        "sessions, funnels, retention and flows are plain SQL, always available.", merge="max"),
    "mallard_filter_bots": MetricDef("gauge", "1 if bot traffic is filtered out, else 0.", merge="max"),
    "mallard_active_sessions": MetricDef("gauge", "Dashboard login sessions currently valid.", merge="max"),
    "mallard_worker_processes": MetricDef("gauge", "Live processes writing metrics to this data directory."),
}

_WORKERS: Final = "mallard_worker_processes"
_HTTP_REQUESTS: Final = "mallard_http_requests_total"
_HTTP_DURATION: Final = "mallard_http_request_duration_seconds"
_STATUS_KEYS: Final = {c: (_HTTP_REQUESTS, (("status", f"{c}xx"),)) for c in range(2, 6)}

#: A normalised series: the metric name and its sorted (label, value) pairs.
Series = tuple[str, tuple[tuple[str, str], ...]]
#: A series as the hot path builds it: a bare name, or (name, label pairs in call order).
_Key = str | tuple[str, tuple[tuple[str, str], ...]]


def _normal(key: _Key) -> Series:
    return (key, ()) if isinstance(key, str) else (key[0], tuple(sorted(key[1])))


def _new_hist() -> list[float]:
    return [0] * (len(BUCKETS) + 1) + [0.0]  # per-bucket counts, then the +Inf bucket, then the sum


@dataclass(slots=True)
class _Totals:
    """Counter values and histogram buckets (non-cumulative counts + sum), keyed by series."""

    counters: dict[Series, float] = field(default_factory=dict)
    hists: dict[Series, list[float]] = field(default_factory=dict)

    def add(self, other: _Totals) -> None:
        for key, value in other.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value
        for key, hist in other.hists.items():
            mine = self.hists.setdefault(key, _new_hist())
            for i, v in enumerate(hist):
                mine[i] += v

    def to_json(self) -> dict[str, Any]:
        return {"bounds": list(BUCKETS),
                "counters": [[n, dict(lb), v] for (n, lb), v in sorted(self.counters.items())],
                "histograms": [[n, dict(lb), h[:-1], h[-1]] for (n, lb), h in sorted(self.hists.items())]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Totals:
        """Parse :meth:`to_json` output (``ValueError``/``TypeError``/``KeyError`` when malformed)."""
        out = cls()
        for name, labels, value in data.get("counters", []):
            key = (str(name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"counter value {value!r} is not a number")
            out.counters[key] = out.counters.get(key, 0) + value
        bounds = [float(b) for b in data.get("bounds", BUCKETS)]
        for name, labels, counts, total in data.get("histograms", []):
            key = (str(name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
            if len(counts) != len(bounds) + 1:
                raise ValueError("histogram bucket count does not match its bounds")
            hist = out.hists.setdefault(key, _new_hist())
            for bound, count in zip([*bounds, float("inf")], counts, strict=True):
                # TRICKY: buckets written with other bounds go to our smallest bound >= theirs, which keeps
                # every observation at or below the bucket's upper bound.
                hist[bisect.bisect_left(BUCKETS, bound)] += int(count)
            hist[-1] += float(total)
        return out


class _Shard:
    """The counters of one thread: only that thread writes them; readers copy them."""

    __slots__ = ("counters", "hists", "thread")

    def __init__(self) -> None:
        self.counters: dict[_Key, float] = {}
        self.hists: dict[_Key, list[float]] = {}
        self.thread = weakref.ref(threading.current_thread())


def _lock_nb(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _write_atomic(path: Path, data: bytes, *, fsync: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


@dataclass(slots=True)
class _Peer:
    """Another process's files, seen during a scrape."""

    id: str
    alive: bool
    fd: int | None = None  # its lock, held by us while we archive it
    snapshot: dict[str, Any] | None = None


class Metrics:
    """This process's metrics, and the totals of every process that shares ``state_dir``.

    Thread-safe. :meth:`inc` and :meth:`observe` are the hot path (about 0.15 µs, no lock); the owner's
    maintenance thread calls :meth:`flush_snapshot` every few seconds and :meth:`close` at shutdown.
    A data directory without write permission degrades to rendering what can be read.

    Args:
        state_dir: The shared ``state/`` directory; files go to ``state_dir/metrics/``.

    **Usage**::

        metrics = Metrics(data_dir / "state")
        metrics.set_gauge_source("mallard_buffered_events", lambda: buffer.pending)
        metrics.inc("mallard_events_ingested_total")
        metrics.inc("mallard_events_dropped_total", reason="bot")
        body, content_type = metrics.render()
    """

    def __init__(self, state_dir: Path | str) -> None:
        self._dir = Path(state_dir) / "metrics"
        self._sources: dict[str, Callable[[], float]] = {"mallard_behavioral_extension": lambda: 0}
        self._closed = False
        self._lock_fd: int | None = None
        self._reset()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))
        _INSTANCES.add(self)

    # -- hot path --------------------------------------------------------------------------------------
    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` in this process.

        Args:
            name: A counter of :data:`METRICS`, e.g. ``"mallard_events_ingested_total"``.
            amount: How much to add; never negative.
            **labels: The counter's labels, e.g. ``reason="bot"``.

        Raises:
            ValueError: For an unknown counter, wrong labels or a negative amount.
        """
        key = (name, tuple(labels.items())) if labels else name
        try:
            if amount >= 0:
                self._local.counters[key] += amount
                return
        except (AttributeError, KeyError):
            pass
        self._inc_slow(key, amount)

    def observe(self, name: str, seconds: float) -> None:
        """Record one observation of the histogram ``name`` (NaN and negative values are ignored).

        Args:
            name: A histogram of :data:`METRICS`: ``"mallard_http_request_duration_seconds"``.
            seconds: The observed duration.

        Raises:
            ValueError: For an unknown histogram.
        """
        try:
            hist = self._local.hists[name]
        except (AttributeError, KeyError):
            hist = self._hist_slow(name)
        if seconds >= 0:  # False for NaN
            hist[bisect.bisect_left(BUCKETS, seconds)] += 1
            hist[-1] += seconds

    def record_request(self, status: int, seconds: float) -> None:
        """Count one HTTP response by status class and record its duration.

        Args:
            status: The HTTP status code; codes outside 200-599 are timed but not counted.
            seconds: Time taken to answer.
        """
        key = _STATUS_KEYS.get(status // 100)
        if key is not None:
            try:
                self._local.counters[key] += 1
            except (AttributeError, KeyError):
                self._inc_slow(key, 1)
        self.observe(_HTTP_DURATION, seconds)

    def _inc_slow(self, key: _Key, amount: float) -> None:
        name, labels = (key, ()) if isinstance(key, str) else key
        self._check(name, "counter", dict(labels))
        if not amount >= 0:
            raise ValueError(f"Counter {name} can only increase; got amount={amount!r}.")
        counters = self._shard().counters
        counters[key] = counters.get(key, 0) + amount

    def _hist_slow(self, name: str) -> list[float]:
        self._check(name, "histogram", {})
        return self._shard().hists.setdefault(name, _new_hist())

    def _shard(self) -> _Shard:
        try:
            shard: _Shard = self._local.shard
            return shard
        except AttributeError:
            shard = _Shard()
            with self._shards_lock:
                self._shards.append(shard)
            self._local.shard = shard
            self._local.counters = shard.counters
            self._local.hists = shard.hists
            return shard

    @staticmethod
    def _check(name: str, kind: str, labels: Mapping[str, str]) -> MetricDef:
        spec = METRICS.get(name)
        if spec is None or spec.kind != kind:
            names = ", ".join(n for n, d in METRICS.items() if d.kind == kind)
            raise ValueError(f"Unknown {kind} {name!r}. Valid {kind}s: {names}.")
        if tuple(sorted(labels)) != tuple(sorted(spec.labels)):
            raise ValueError(f"{name} takes labels {list(spec.labels)}, got {sorted(labels)}.")
        for value in labels.values():
            if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value) or (
                    spec.values is not None and value not in spec.values):
                allowed = sorted(spec.values) if spec.values else "short identifiers"
                raise ValueError(f"Bad label value {value!r} for {name}; allowed: {allowed}.")
        return spec

    # -- gauges ----------------------------------------------------------------------------------------
    def set_gauge_source(self, name: str, fn: Callable[[], float] | None) -> None:
        """Read the gauge ``name`` from ``fn()`` at snapshot and scrape time (``None`` removes it).

        Args:
            name: A gauge of :data:`METRICS`, e.g. ``"mallard_buffered_events"``.
            fn: Returns this process's current value; it must be cheap and must not block.

        Raises:
            ValueError: For an unknown gauge, or ``mallard_worker_processes`` (mallard counts those).
        """
        self._check(name, "gauge", {})
        if name == _WORKERS:
            raise ValueError(f"{_WORKERS} is counted by mallard from the live processes' locks.")
        if fn is None:
            self._sources.pop(name, None)
        else:
            self._sources[name] = fn

    def _gauges(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, fn in list(self._sources.items()):
            try:
                out[name] = float(fn())
            except Exception:
                log.warning("metrics: gauge source for %s failed; reporting it as missing", name,
                            exc_info=True)
        return out

    # -- this process's values -------------------------------------------------------------------------
    def value(self, name: str, **labels: str) -> float:
        """This process's own value of a counter (not the total over processes), e.g. for health checks.

        Args:
            name: A counter of :data:`METRICS`.
            **labels: Its labels.

        Returns:
            The sum of this process's increments since it started (or forked).
        """
        self._check(name, "counter", labels)
        return self._own().counters.get((name, tuple(sorted(labels.items()))), 0)

    def _own(self) -> _Totals:
        out = _Totals()
        with self._shards_lock:
            live: list[_Shard] = []
            for shard in self._shards:
                thread = shard.thread()
                if thread is None or not thread.is_alive():
                    # That thread can write no more: fold it into the base, so that short-lived threads
                    # (a WSGI server's thread per request) do not pile up shards.
                    self._base.add(self._copy(shard))
                else:
                    live.append(shard)
            self._shards[:] = live
            out.add(self._base)
        for shard in live:
            out.add(self._copy(shard))
        return out

    @staticmethod
    def _copy(shard: _Shard) -> _Totals:
        # dict.copy() and list() run without releasing the GIL: a consistent view of each dict.
        out = _Totals()
        for key, value in shard.counters.copy().items():
            series = _normal(key)
            out.counters[series] = out.counters.get(series, 0) + value
        for key, hist in shard.hists.copy().items():
            out.hists[_normal(key)] = list(hist)
        return out

    # -- files -----------------------------------------------------------------------------------------
    def _reset(self) -> None:
        """Start empty, with a new identity and new files (at construction and in a fork child)."""
        self._shards_lock = threading.Lock()
        self._io = threading.Lock()
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._base = _Totals()
        self._last: bytes | None = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # in a fork child: the parent's lock stays the parent's
            self._lock_fd = None
        self._id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        if self._closed:
            return
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            # Lock under a hidden name, then rename: nobody ever sees our lock file unlocked.
            hidden = self._dir / f".{self._id}.lock.new"
            fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.replace(hidden, self._dir / f"{self._id}.lock")
            except OSError:
                os.close(fd)
                raise
            self._lock_fd = fd
        except OSError as exc:
            log.warning("metrics: cannot write under %s (%s); this process's metrics will not be shared "
                        "with other workers", self._dir, exc)

    def flush_snapshot(self) -> bool:
        """Write this process's values to its snapshot file, for scrapes served by other workers.

        Cheap when nothing changed (the write is skipped). Called by the owner's maintenance thread every
        few seconds, and by :meth:`close`.

        Returns:
            ``False`` when the snapshot could not be written (read-only data directory).
        """
        with self._io:
            if self._closed:
                return False
            return self._write_snapshot(self._own(), self._gauges())

    def _write_snapshot(self, own: _Totals, gauges: Mapping[str, float]) -> bool:
        if self._lock_fd is None:
            return False
        data = orjson.dumps({"v": _FORMAT, "id": self._id, **own.to_json(), "gauges": dict(gauges)})
        if data == self._last:
            return True
        try:
            _write_atomic(self._dir / f"{self._id}.json", data)
        except OSError as exc:
            log.warning("metrics: cannot write snapshot under %s: %s", self._dir, exc)
            return False
        self._last = data
        return True

    def close(self) -> None:
        """Write a final snapshot, release this process's lock and archive it (idempotent)."""
        with self._io:
            if self._closed:
                return
            self._write_snapshot(self._own(), {})
            self._closed = True
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            with suppress(OSError):
                self._gather()  # archives our own (now dead) snapshot right away

    # -- scrape ----------------------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """The Prometheus exposition of the totals over all processes sharing the data directory.

        Returns:
            The body and its content type, :data:`CONTENT_TYPE`.
        """
        return generate_latest(self._registry), CONTENT_TYPE

    def _families(self) -> Iterator[Metric]:
        totals, gauges, workers = self._scrape()
        for name, spec in METRICS.items():
            if spec.kind == "counter":
                counter = CounterMetricFamily(name, spec.help, labels=spec.labels)
                series = {lb: v for (n, lb), v in totals.counters.items() if n == name}
                if not spec.labels:
                    series.setdefault((), 0)  # shown from 0, so that rate() sees the first increment
                for allowed in sorted(spec.values or ()):  # all status classes, from 0
                    series.setdefault(tuple(zip(spec.labels, [allowed], strict=True)), 0)
                for labels, count in sorted(series.items()):
                    counter.add_metric([v for _, v in labels], count)
                yield counter
            elif spec.kind == "histogram":
                hist = HistogramMetricFamily(name, spec.help)
                counts = totals.hists.get((name, ()), _new_hist())
                cumulative, buckets = 0.0, []
                for bound, count in zip([*BUCKETS, float("inf")], counts, strict=False):
                    cumulative += count
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
                hist.add_metric([], buckets, counts[-1])
                yield hist
            else:
                gauge = workers if name == _WORKERS else gauges.get(name, 0.0)
                yield GaugeMetricFamily(name, spec.help, value=gauge)

    def _scrape(self) -> tuple[_Totals, dict[str, float], int]:
        with self._io:
            return self._gather()

    def _gather(self) -> tuple[_Totals, dict[str, float], int]:
        """Sum everything (caller holds ``self._io``); archive dead processes if we may write."""
        totals = _Totals()
        gauge_values: dict[str, list[float]] = {}
        workers = 0
        if not self._closed:
            own, own_gauges = self._own(), self._gauges()
            # Persist what we are about to report, so no later scrape, whichever worker serves it, shows
            # less if we are killed now.
            self._write_snapshot(own, own_gauges)
            totals.add(own)
            for name, value in own_gauges.items():
                gauge_values.setdefault(name, []).append(value)
            workers = 1
        with self._archive_lock() as exclusive:
            archive, merged, archive_ok = self._read_archive()
            totals.add(archive)
            peers = list(self._peers(merged))
            try:
                for peer in peers:
                    if peer.id in merged or peer.snapshot is None:
                        pass
                    else:
                        try:
                            totals.add(_Totals.from_json(peer.snapshot))
                        except (ValueError, TypeError, KeyError, AttributeError) as exc:
                            log.warning("metrics: ignoring malformed snapshot %s: %s", peer.id, exc)
                            peer.snapshot = None
                    if peer.alive:
                        workers += 1
                        for name, value in (peer.snapshot or {}).get("gauges", {}).items():
                            if name in METRICS and isinstance(value, int | float):
                                gauge_values.setdefault(name, []).append(value)
                dead = [p for p in peers if not p.alive]
                if exclusive and archive_ok and dead:
                    self._archive(archive, merged, dead)
            finally:
                for peer in peers:
                    if peer.fd is not None:
                        os.close(peer.fd)
        gauges = {name: (max(values) if METRICS[name].merge == "max" else sum(values))
                  for name, values in gauge_values.items()}
        return totals, gauges, workers

    @contextmanager
    def _archive_lock(self) -> Iterator[bool]:
        """Hold ``archive.lock``: exclusively if we can write here (yields True), else shared if we can
        read it, else not at all (yields False both ways)."""
        path = self._dir / f"{_ARCHIVE}.lock"
        fd: int | None = None
        exclusive = False
        with suppress(OSError):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            exclusive = True
        if fd is None:
            with suppress(OSError):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield exclusive
        finally:
            if fd is not None:
                os.close(fd)

    def _read_archive(self) -> tuple[_Totals, set[str], bool]:
        """The archive's totals, the ids it absorbed, and whether it may be rewritten."""
        try:
            raw = (self._dir / f"{_ARCHIVE}.json").read_bytes()
        except FileNotFoundError:
            return _Totals(), set(), True
        except OSError as exc:
            log.warning("metrics: cannot read the archive: %s", exc)
            return _Totals(), set(), False
        try:
            data = orjson.loads(raw)
            return _Totals.from_json(data), {str(i) for i in data.get("merged", [])}, True
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # Never overwrite it: that would send every counter back. Dead snapshots stay unarchived
            # (and counted) until an operator looks.
            log.error("metrics: %s is malformed (%s); not archiving until it is fixed",
                      self._dir / f"{_ARCHIVE}.json", exc)
            return _Totals(), set(), False

    def _peers(self, merged: set[str]) -> Iterator[_Peer]:
        """Every other process with files here, probing its lock (taken and kept when it is dead)."""
        try:
            names = os.listdir(self._dir)
        except OSError:
            return
        ids = {n.rpartition(".")[0] for n in names
               if not n.startswith(".") and n.endswith((".lock", ".json"))} - {_ARCHIVE}
        for pid in sorted(ids - {"" if self._closed else self._id}):
            alive, fd = True, None
            try:
                fd = os.open(self._dir / f"{pid}.lock", os.O_RDONLY | os.O_CLOEXEC)
                if _lock_nb(fd, fcntl.LOCK_EX):
                    alive = False
                else:
                    os.close(fd)
                    fd = None
            except FileNotFoundError:
                alive = False  # a snapshot without a lock: its process is gone
            except OSError:
                pass  # cannot tell: count it as live
            snapshot = None
            if pid not in merged:
                try:
                    snapshot = orjson.loads((self._dir / f"{pid}.json").read_bytes())
                except FileNotFoundError:
                    pass
                except (OSError, ValueError) as exc:
                    log.warning("metrics: cannot read snapshot %s: %s", pid, exc)
            yield _Peer(pid, alive, fd, snapshot if isinstance(snapshot, dict) else None)

    def _archive(self, archive: _Totals, merged: set[str], dead: list[_Peer]) -> None:
        """Add dead snapshots to ``archive.json``, then delete them (caller holds archive.lock)."""
        for peer in dead:
            if peer.id not in merged and peer.snapshot is not None:
                archive.add(_Totals.from_json(peer.snapshot))
        # Keep only the absorbed ids whose snapshot still exists (a crash came between the two steps).
        keep = {i for i in merged if (self._dir / f"{i}.json").exists()} | {p.id for p in dead}
        data = orjson.dumps({"v": _FORMAT, **archive.to_json(), "merged": sorted(keep)})
        try:
            _write_atomic(self._dir / f"{_ARCHIVE}.json", data, fsync=True)
        except OSError as exc:
            log.warning("metrics: cannot write the archive: %s", exc)
            return
        for peer in dead:
            with suppress(OSError):
                _unlink(self._dir / f"{peer.id}.json")
                _unlink(self._dir / f".{peer.id}.json.tmp")
                _unlink(self._dir / f"{peer.id}.lock")


class _Collector:
    """The prometheus_client collector: one consistent gather per scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics._families())


#: Every open Metrics, so that a fork child can start its own files (register_at_fork has no unregister).
_INSTANCES: weakref.WeakSet[Metrics] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for metrics in list(_INSTANCES):
        metrics._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
