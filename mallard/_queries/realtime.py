"""Realtime: who is on the site now, as Plausible counts it.

A *current visitor* is a visitor with at least one event other than ``engagement`` whose timestamp is at
most :data:`MINUTES` minutes before now (Plausible's ``current_visitors``: the lower bound truncated to the
second, every event name but ``engagement``: those reports are left out of every analysis, see
docs/concepts.md). The window's upper end is a few seconds past now (Plausible's
realtime period does the same), so an event stamped by a client clock slightly ahead still counts.

The figures are answered by the one query model: :func:`query` builds an ordinary :class:`Query` over the
UTC days the window touches, narrowed to the window's instants (``DateRange.instants``); nothing here
writes SQL.

Freshness: a query reads the stored partitions *and* this process's event buffer (see
:meth:`mallard._queries.Queries._reader`), so an event accepted by this process counts at once, before
any flush. Events accepted by *another* process (another ``mallard serve`` worker, or a ``mallard.open``
reader looking at a running server) count once that process flushes them, after at most
``flush_interval_secs``; a realtime figure read there can miss the last seconds of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from .model import Query, build
from .periods import DateRange
from .results import Report

if TYPE_CHECKING:
    from . import Queries

__all__ = ["MINUTES", "current_visitors", "query", "realtime", "window"]

#: The realtime window, in minutes, by default (Plausible's current visitors; the setting
#: ``realtime_window_minutes``).
MINUTES: Final = 5
#: How far past now the window reaches (events stamped by a clock slightly ahead).
AHEAD: Final = timedelta(seconds=5)


def window(now: datetime, minutes: int = MINUTES) -> tuple[datetime, datetime]:
    """Naive UTC ``[lower, upper)``: ``minutes`` before ``now`` (to the second) to just after it."""
    utc = now.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return utc - timedelta(minutes=minutes), utc + AHEAD


def query(site: str, now: datetime, *, metrics: Sequence[str] = ("visitors",),
          dimensions: Sequence[str] = (), limit: int | None = None, minutes: int = MINUTES) -> Query:
    """A :class:`Query` over the realtime window of ``now`` (rows ordered by visitors, then value)."""
    lower, upper = window(now, minutes)
    span = DateRange(lower.date(), upper.date(), "UTC", instants=(lower, upper))
    order = [["visitors", "desc"]] if dimensions else None
    return build(site, span, metrics=metrics, dimensions=dimensions, order_by=order,
                 limit=limit)


def current_visitors(queries: Queries, site: str, now: datetime, minutes: int = MINUTES) -> int:
    """Visitors of the last ``minutes`` minutes."""
    rows = queries.run(query(site, now, minutes=minutes)).rows
    return int(rows[0]["visitors"]) if rows else 0


def realtime(queries: Queries, site: str, now: datetime, limit: int,
             warning: str | None = None, minutes: int = MINUTES) -> Report:
    """Current visitors with the pages they are on and the sources they came from (``pages`` and
    ``sources``: ``{value, visitors}``, most visitors first, at most ``limit`` each)."""
    lower, upper = window(now, minutes)
    lists = {}
    for key, dim in (("pages", "event:page"), ("sources", "visit:source")):
        rows = queries.run(query(site, now, dimensions=[dim], limit=limit, minutes=minutes)).rows
        lists[key] = [{"value": r[dim], "visitors": r["visitors"]} for r in rows]
    meta: dict[str, object] = {
        "site_id": site, "visitors": current_visitors(queries, site, now, minutes), "minutes": minutes,
        "from": lower.isoformat() + "Z", "to": upper.isoformat() + "Z", "sources": lists["sources"]}
    if warning is not None:
        meta["warning"] = warning
    return Report("pages", ("value", "visitors"), lists["pages"], meta)
