"""Per-process guards of the HTTP layer: token-bucket rate limits and the heavy-query limit.

Rate limits and the concurrency limit count per worker process (a host with four workers admits four
times the configured rate; ``mallard serve --workers N`` divides the configured rates by N). The query
cache is in :mod:`mallard._http.cache`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

__all__ = ["ConcurrencyLimit", "RateLimiter"]

_IDLE_SECS: Final = 300.0


class RateLimiter:
    """Token buckets per key: ``rate`` events a second, bursts up to one second's worth.

    ``rate == 0`` disables the limiter. At most ``max_keys`` buckets are kept (least recently used
    dropped first), so a flood of distinct keys cannot grow memory.
    """

    def __init__(self, rate: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [tokens, stamp]
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = [self.rate, now]
                self._buckets[key] = bucket
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                bucket[0] = min(self.rate, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return True
            return False

    def prune(self) -> None:
        """Forget buckets idle for five minutes (they would be full again anyway)."""
        now = self._clock()
        with self._lock:
            for key in [k for k, (_, stamp) in self._buckets.items() if now - stamp > _IDLE_SECS]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class ConcurrencyLimit:
    """At most ``limit`` heavy queries at once in this process (0 = unlimited); never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        if self.limit <= 0:
            return True
        with self._lock:
            if self._active >= self.limit:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._active -= 1

    @property
    def active(self) -> int:
        return self._active
