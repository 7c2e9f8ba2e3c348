"""The query cache of the HTTP layer: an LRU of rendered answers with a time to live, served
stale-while-revalidate.

An entry younger than ``ttl`` is a *hit*. One older than ``ttl`` but at most ``ttl + stale`` seconds old
is *stale*: it is answered at once and ONE background refresh per key recomputes it (concurrent stale
hits start no second one; at most ``max_refreshes`` run at once in the process). A refresh that fails
leaves the stale entry in place until it is too old, and is logged without request data. Anything older
is a *miss*.

Entries remember their site: :meth:`QueryCache.invalidate_site` (an erasure) drops them at once, and an
answer computed from before the erasure (a refresh or a miss running meanwhile) is not stored afterwards
(each site has an epoch, taken before computing and checked when storing). After :meth:`QueryCache.close`
no refresh starts and none still running stores its answer.

The cache is per process; the callers key it by a fingerprint of the lake files a query reads and by
the site's goals and segments as stored in ``state/``, so a flush or a goal change by any worker makes
every worker's entries for that site unreachable (a miss, never stale). A child
process made by ``fork()`` keeps the entries but none of the parent's refreshes (their threads did not
follow): it starts its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any, Literal

__all__ = ["Lookup", "QueryCache"]

log = logging.getLogger("mallard.http")

Lookup = Literal["hit", "stale", "miss"]


class QueryCache:
    """An LRU of rendered responses with a time to live and a staleness window.

    Args:
        ttl: seconds an entry is fresh; ``0`` disables the cache.
        max_entries: entries kept (least recently used dropped first); ``0`` means no bound.
        stale: seconds past ``ttl`` an entry is still answered (marked stale) while it is refreshed;
            ``0`` disables stale-while-revalidate.
        max_refreshes: background refreshes running at once; a stale hit past it starts none (a later
            one will).
        clock: monotonic seconds (injected by tests).
        on_evict: called with the number of entries an insertion evicted.
    """

    def __init__(self, ttl: float, max_entries: int, *, stale: float = 0.0, max_refreshes: int = 4,
                 clock: Callable[[], float] = time.monotonic,
                 on_evict: Callable[[int], None] | None = None) -> None:
        self._on_evict = on_evict
        self.ttl = float(ttl)
        self.stale = float(stale)
        self.max_entries = max_entries
        self.max_refreshes = max_refreshes
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, str, Any]] = OrderedDict()
        self._epochs: dict[str, int] = {}
        self._refreshing: dict[Hashable, Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None  # long-lived threads keep their DuckDB connections
        self._closed = False
        self._lock = threading.Lock()
        _CACHES.add(self)
        self.hits = self.stale_hits = self.misses = self.evictions = 0
        self.refreshes = self.refresh_failures = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def lookup(self, key: Hashable) -> tuple[Lookup, Any | None]:
        """``("hit", value)``, ``("stale", value)`` (refresh it: :meth:`refresh`) or ``("miss", None)``."""
        if not self.enabled:
            return "miss", None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                age = now - entry[0]
                if age <= self.ttl or (age <= self.ttl + self.stale and not self._closed):
                    self._entries.move_to_end(key)
                    if age <= self.ttl:
                        self.hits += 1
                        return "hit", entry[2]
                    self.stale_hits += 1
                    return "stale", entry[2]
                del self._entries[key]
            self.misses += 1
            return "miss", None

    def get(self, key: Hashable) -> Any | None:
        """The value of a fresh or stale entry, else None (no refresh is started)."""
        return self.lookup(key)[1]

    def epoch(self, site: str) -> int:
        """Take before computing an answer for ``site``; pass to :meth:`put`."""
        with self._lock:
            return self._epochs.get(site, 0)

    def put(self, key: Hashable, site: str, value: Any, *, epoch: int | None = None) -> bool:
        """Store ``value``, unless ``site`` was invalidated since ``epoch`` was taken. Returns whether
        it was stored."""
        if not self.enabled:
            return False
        evicted = 0
        with self._lock:
            if epoch is not None and self._epochs.get(site, 0) != epoch:
                return False
            self._entries[key] = (self._clock(), site, value)
            self._entries.move_to_end(key)
            while self.max_entries and len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                evicted += 1
            self.evictions += evicted
        if evicted and self._on_evict is not None:
            self._on_evict(evicted)
        return True

    def refresh(self, key: Hashable, site: str, compute: Callable[[], Any | None]) -> bool:
        """Recompute ``key`` in a background thread unless a refresh of it is running (or too many
        are, or the cache is closed). ``compute()`` returns the value to store, or None to store
        nothing; an exception is logged by its type only. Returns whether a refresh was started."""
        with self._lock:
            if self._closed or key in self._refreshing or len(self._refreshing) >= self.max_refreshes:
                return False
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_refreshes, "mallard-cache-refresh")
            self._refreshing[key] = self._pool.submit(self._refresh, key, site,
                                                      self._epochs.get(site, 0), compute)
            self.refreshes += 1
        return True

    def _refresh(self, key: Hashable, site: str, epoch: int, compute: Callable[[], Any | None]) -> None:
        try:
            value = None if self._closed else compute()
            if value is not None and not self._closed:
                self.put(key, site, value, epoch=epoch)
        except Exception as exc:  # kept stale until too old; the message may quote the request
            with self._lock:
                self.refresh_failures += 1
            log.warning("background refresh of a cached answer failed (%s); the stale answer is kept",
                        type(exc).__name__)
        finally:
            with self._lock:
                self._refreshing.pop(key, None)

    @property
    def refreshing(self) -> int:
        """Background refreshes running now."""
        return len(self._refreshing)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refresh runs (at most ``timeout`` seconds). Returns whether none does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = list(self._refreshing.values())
            if not running:
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait_all(running, left).not_done:
                return False

    def close(self, timeout: float | None = None) -> bool:
        """Start no more refreshes, store none still running, and wait for them (at most ``timeout``).
        Stale entries are misses from now on."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        done = self.wait(timeout)
        if pool is not None:
            pool.shutdown(wait=False)
        return done

    def invalidate_site(self, site: str) -> int:
        """Drop every entry of ``site`` (fresh or stale), and keep answers computed before now out."""
        with self._lock:
            self._epochs[site] = self._epochs.get(site, 0) + 1
            doomed = [k for k, (_, s, _) in self._entries.items() if s == site]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def prune(self) -> None:
        """Drop entries too old to be answered even stale."""
        now = self._clock()
        limit = self.ttl + (0.0 if self._closed else self.stale)
        with self._lock:
            for key in [k for k, (t, _, _) in self._entries.items() if now - t > limit]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _after_fork(self) -> None:
        """In a child of ``fork()``: the parent's refresh threads are not here (their futures would
        never finish and block those keys' refreshes for good), and the lock may have been taken by
        one of them."""
        self._lock = threading.Lock()
        self._refreshing = {}
        self._pool = None


_CACHES: weakref.WeakSet[QueryCache] = weakref.WeakSet()


def _after_fork() -> None:
    for cache in list(_CACHES):
        cache._after_fork()


os.register_at_fork(after_in_child=_after_fork)
