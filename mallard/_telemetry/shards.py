"""The counters of one thread, written by that thread alone, so that an increment takes no lock."""

from __future__ import annotations

import threading
import weakref

from .totals import Series, Totals

__all__ = ["Key", "Shard"]

#: A series as the hot path builds it: a bare name, or (name, label pairs in call order).
Key = str | tuple[str, tuple[tuple[str, str], ...]]


def _normal(key: Key) -> Series:
    return (key, ()) if isinstance(key, str) else (key[0], tuple(sorted(key[1])))


class Shard:
    """The counters of one thread: only that thread writes them; readers copy them."""

    __slots__ = ("counters", "hists", "thread")

    def __init__(self) -> None:
        self.counters: dict[Key, float] = {}
        self.hists: dict[Key, list[float]] = {}
        self.thread = weakref.ref(threading.current_thread())

    def totals(self) -> Totals:
        """A copy of these counters, by normalised series (safe while the owner thread writes)."""
        # dict.copy() and list() run without releasing the GIL: a consistent view of each dict.
        out = Totals()
        for key, value in self.counters.copy().items():
            series = _normal(key)
            out.counters[series] = out.counters.get(series, 0) + value
        for key, hist in self.hists.copy().items():
            out.hists[_normal(key)] = list(hist)
        return out
