"""How fresh a Queries object's answers are: the newest event it reads, when the lake was last written,
and the events writers have accepted that are not in the lake yet.

A :class:`~mallard.Queries` reads the lake's files plus, under ``Mallard.queries``, its own process's
buffer. Other processes' events reach the lake at their next flush (``flush_interval_secs``, 5 s by
default); until then they wait in those processes' spools, which :func:`freshness` counts without
reading them into answers (the DESIGN's read path: a reader never sees another process's buffer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from .._events import SITE_ID, Row
from .._store.spool import waiting
from .results import Record

if TYPE_CHECKING:
    from .._store import Store
    from .._store.reader import Reader
    from . import Queries

__all__ = ["FRESHNESS_COLUMNS", "describe", "freshness"]

#: The figures of :func:`freshness`, in order.
FRESHNESS_COLUMNS = ("newest_event", "last_flush", "buffered_events", "unflushed_events",
                     "unflushed_writers")

Reading = Callable[[str | None, date | None, date | None], AbstractContextManager["Reader"]]


def freshness(store: Store, reading: Reading, site: str | None, buffered: Iterable[Row]) -> Record:
    """The figures of ``site``'s (None: every site's) data as these queries see it (see
    :meth:`mallard.Queries.freshness`); ``buffered``: the rows of this process's buffer."""
    sites = [site] if site is not None else store.lake.sites()
    days = {s: store.lake.dates(s) for s in sites}
    newest_day = max((d[-1] for d in days.values() if d), default=None)
    written: list[float] = []
    for s, dates in days.items():  # a flush writes the partitions of its events' days: the last ones
        for path in store.lake.files(s, dates[-min(2, len(dates))], None) if dates else ():
            try:
                written.append(store.lake.mtime(path))
            except FileNotFoundError:  # merged by a compaction meanwhile
                continue
    with reading(site, newest_day, None) as reader:
        src, params = reader.source("all")
        newest = reader.execute(f"SELECT max(timestamp) FROM ({src})", params).column(0)[0].as_py()
    spooled = waiting(store.spool_dir, site)
    return Record({
        "newest_event": None if newest is None else newest.replace(tzinfo=UTC),
        "last_flush": datetime.fromtimestamp(max(written), UTC) if written else None,
        "buffered_events": sum(1 for e in buffered if site is None or e[SITE_ID] == site),
        "unflushed_events": sum(spooled.values()),
        "unflushed_writers": sum(1 for n in spooled.values() if n),
    }, {"site_id": site})


def describe(queries: Queries, where: str, read_only: bool) -> str:
    """The repr of ``queries`` (over the lake at ``where``): where it reads and how fresh that is."""
    try:
        figures = queries.freshness().values
    except Exception as exc:  # a repr never raises
        told = f"freshness unknown ({type(exc).__name__})"
    else:
        told = _told(figures, queries.now())
    return f"<mallard.Queries of {where}{', read-only' if read_only else ''}: {told}>"


def _told(figures: dict[str, Any], now: datetime) -> str:
    newest, flushed = figures["newest_event"], figures["last_flush"]
    parts = [f"newest event {newest:%Y-%m-%d %H:%M:%S} UTC" if newest else "no events"]
    if flushed is not None:
        parts.append(f"last flush {_ago(now - flushed)}")
    if figures["buffered_events"]:
        parts.append(f"{figures['buffered_events']} buffered event(s) included")
    others = figures["unflushed_events"] - figures["buffered_events"]
    if others > 0:
        parts.append(f"{others} event(s) of other writers not flushed yet")
    return ", ".join(parts)


def _ago(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
