"""This process's counters, histograms and gauges (:class:`ProcessCounters`), reported with the totals of
every worker process sharing the data directory.

Each process counts in memory: every thread writes its own dict (no lock per increment), and a
snapshot sums the threads. Before answering a scrape, the serving process persists the values it
reports (:mod:`~mallard._telemetry.snapshots`), so a later scrape served by another worker never shows
less, even if this one is killed. Increments made after a process's last snapshot are lost if it is
killed (``SIGKILL``); a clean :meth:`ProcessCounters.close` writes a final one.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Final

from .definitions import BUCKETS, CONSTANT_GAUGES, HTTP_DURATION, HTTP_REQUESTS, WORKERS, check
from .exposition import Exposition
from .shards import Key, Shard
from .snapshots import SnapshotFiles
from .totals import Gathered, Totals, new_hist

__all__ = ["ProcessCounters"]

log = logging.getLogger("mallard.metrics")

_STATUS_KEYS: Final = {c: (HTTP_REQUESTS, (("status", f"{c}xx"),)) for c in range(2, 6)}


class ProcessCounters:
    """This process's metrics, and the totals of every process that shares ``state_dir``.

    Thread-safe. :meth:`inc` and :meth:`observe` are the hot path (about 0.15 µs, no lock); the owner's
    maintenance thread calls :meth:`flush_snapshot` every few seconds and :meth:`close` at shutdown.
    A data directory without write permission degrades to rendering what can be read.

    Args:
        state_dir: The shared ``state/`` directory; files go to ``state_dir/metrics/``.

    **Usage**::

        counters = ProcessCounters(data_dir / "state")
        counters.set_gauge_source("mallard_buffered_events", lambda: buffer.pending)
        counters.inc("mallard_events_ingested_total")
        counters.inc("mallard_events_dropped_total", reason="bot")
        body, content_type = counters.render()
    """

    def __init__(self, state_dir: Path | str) -> None:
        self._files = SnapshotFiles(state_dir)
        self._sources: dict[str, Callable[[], float]] = {
            name: functools.partial(float, value) for name, value in CONSTANT_GAUGES.items()}
        self._closed = False
        self._reset()
        self._exposition = Exposition(self._scrape)
        _INSTANCES.add(self)

    @property
    def id(self) -> str:
        """This process's name in ``state/metrics/``: ``<host>-<pid>-<token>``."""
        return self._files.id

    # -- hot path --------------------------------------------------------------------------------------
    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` in this process.

        Args:
            name: A counter of :data:`PROCESS_METRICS`, e.g. ``"mallard_events_ingested_total"``.
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
            name: A histogram of :data:`PROCESS_METRICS`: ``"mallard_http_request_duration_seconds"``.
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
        self.observe(HTTP_DURATION, seconds)

    def _inc_slow(self, key: Key, amount: float) -> None:
        name, labels = (key, ()) if isinstance(key, str) else key
        check(name, "counter", dict(labels))
        if not amount >= 0:
            raise ValueError(f"Counter {name} can only increase; got amount={amount!r}.")
        counters = self._shard().counters
        counters[key] = counters.get(key, 0) + amount

    def _hist_slow(self, name: str) -> list[float]:
        check(name, "histogram", {})
        return self._shard().hists.setdefault(name, new_hist())

    def _shard(self) -> Shard:
        try:
            shard: Shard = self._local.shard
            return shard
        except AttributeError:
            shard = Shard()
            with self._shards_lock:
                self._shards.append(shard)
            self._local.shard = shard
            self._local.counters = shard.counters
            self._local.hists = shard.hists
            return shard

    # -- gauges ----------------------------------------------------------------------------------------
    def set_gauge_source(self, name: str, fn: Callable[[], float] | None) -> None:
        """Read the gauge ``name`` from ``fn()`` at snapshot and scrape time (``None`` removes it).

        Args:
            name: A gauge of :data:`PROCESS_METRICS`, e.g. ``"mallard_buffered_events"``.
            fn: Returns this process's current value; it must be cheap and must not block.

        Raises:
            ValueError: For an unknown gauge, or ``mallard_worker_processes`` (mallard counts those).
        """
        check(name, "gauge", {})
        if name == WORKERS:
            raise ValueError(f"{WORKERS} is counted by mallard from the live processes' locks.")
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
            name: A counter of :data:`PROCESS_METRICS`.
            **labels: Its labels.

        Returns:
            The sum of this process's increments since it started (or forked).
        """
        check(name, "counter", labels)
        return self._own().counters.get((name, tuple(sorted(labels.items()))), 0)

    def _own(self) -> Totals:
        out = Totals()
        with self._shards_lock:
            live: list[Shard] = []
            for shard in self._shards:
                thread = shard.thread()
                if thread is None or not thread.is_alive():
                    # That thread can write no more: fold it into the base, so that short-lived threads
                    # (a WSGI server's thread per request) do not pile up shards.
                    self._base.add(shard.totals())
                else:
                    live.append(shard)
            self._shards[:] = live
            out.add(self._base)
        for shard in live:
            out.add(shard.totals())
        return out

    # -- files -----------------------------------------------------------------------------------------
    def _reset(self) -> None:
        """Start empty, with a new identity and new files (at construction and in a fork child)."""
        self._shards_lock = threading.Lock()
        self._io = threading.Lock()
        self._local = threading.local()
        self._shards: list[Shard] = []
        self._base = Totals()
        self._files.renew(live=not self._closed)

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
            return self._files.write(self._own(), self._gauges())

    def close(self) -> None:
        """Write a final snapshot, release this process's lock and archive it (idempotent)."""
        with self._io:
            if self._closed:
                return
            self._files.write(self._own(), {})
            self._closed = True
            self._files.release()
            with suppress(OSError):
                self._files.gather(Gathered())  # archives our own (now dead) snapshot right away

    # -- scrape ----------------------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """The Prometheus exposition of the totals over all processes sharing the data directory.

        Returns:
            The body and its content type, :data:`CONTENT_TYPE`.
        """
        return self._exposition.render()

    def _scrape(self) -> Gathered:
        """Sum everything: this process, the other processes' snapshots and the archive."""
        out = Gathered()
        with self._io:
            if not self._closed:
                own, gauges = self._own(), self._gauges()
                # Persist what we are about to report, so no later scrape, whichever worker serves it,
                # shows less if we are killed now.
                self._files.write(own, gauges)
                out.totals.add(own)
                out.add_live(gauges)
            self._files.gather(out)
        return out


#: Every open ProcessCounters, so that a fork child can start its own files (register_at_fork has no
#: unregister).
_INSTANCES: weakref.WeakSet[ProcessCounters] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for counters in list(_INSTANCES):
        counters._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
