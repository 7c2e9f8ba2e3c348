"""A writer thread offering numbered events while reader threads check their views, with bookkeeping
that makes the readers' checks sound, and progress that is counted, not timed.

A reader reads ``progress.acked`` *before* taking its view and ``progress.offering`` *after*: every
event acknowledged before the view began must be in it, and no event whose ``offer()`` had not begun
when the view ended can be. ``offering`` is raised before ``offer()`` is called and ``acked`` after it
returns, so an event offered while a view is taken is allowed either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Generous bound on the whole run: a hang guard for a machine under load, not a speed expectation.
DEADLINE_SECS = 120.0


@dataclass
class Progress:
    offering: int = 0  # offer() of events 0 .. offering-1 has begun
    acked: int = 0  # offer() of events 0 .. acked-1 has returned
    reads: int = 0  # views checked by the readers


def offer_until(offer: Callable[[int], None], progress: Progress, done: Callable[[], bool],
                problems: list[str]) -> None:
    """Offer events 0, 1, 2, ... until ``done()`` (enough reads and flushes seen) or a problem."""
    deadline = time.monotonic() + DEADLINE_SECS
    i = 0
    while not done() and not problems:
        assert time.monotonic() < deadline, f"no progress: {progress}"
        progress.offering = i + 1
        offer(i)
        i += 1
        progress.acked = i
        if i % 50 == 0:
            time.sleep(0.0005)  # hand the GIL to the readers now and then


def check_view(ids: list[int], acked_before: int, offering_after: int, problems: list[str]) -> None:
    """Each id at most once, every id acknowledged before the view present, none not yet offered."""
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate in view: {len(ids) - len(set(ids))}")
    missing = set(range(acked_before)) - set(ids)
    if missing:
        problems.append(f"missing {sorted(missing)[:5]}")
    if any(i >= offering_after for i in ids):
        problems.append(f"saw an event never offered (offering {offering_after}, max {max(ids)})")


def offer_while_running(threads: list[threading.Thread], stop: threading.Event, close: Callable[[], bool],
                        offer: Callable[[int], None], progress: Progress, done: Callable[[], bool],
                        problems: list[str]) -> None:
    """Start ``threads``, :func:`offer_until` ``done()``, then stop them (``stop``), join them and
    ``close()`` the buffer (which must store everything); no thread may have seen a problem."""
    for t in threads:
        t.start()
    try:
        offer_until(offer, progress, done, problems)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        assert close()
    assert problems == []
