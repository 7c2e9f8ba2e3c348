"""The Plan: what the planner (planner.py) decides about a query, read by the builder (builder.py), which
writes its SQL, and the engine (engine.py), which gathers the rows it reads and may take back a
proposal (:func:`without`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from .filters import Behaviour, Condition, Filter
from .registry import Dimension

__all__ = ["Bucket", "Conversion", "Join", "Part", "Plan", "Reads", "Sessions", "reads_sessions",
           "rolled_dimension", "without"]

Reads = Literal["events", "events_with_session", "sessions", "rollups", "visits", "engagement"]
Bucket = Literal["hour", "day", "week", "month"]
Join = Literal["none", "full_outer_on_dimensions"]


@dataclass(frozen=True, slots=True)
class Sessions:
    """The sessions a plan reads, and the per-session columns it uses."""

    attributes: tuple[str, ...]  # lake columns exposed as s_<column> (first value of the session)
    pages: tuple[str, ...]  # entry_page / exit_page
    # event leaves of the plan's filters (the same objects, in tree order) exposed as f_<i>: whether any
    # event of the session in the range matched
    flags: tuple[Condition, ...]
    # events are matched to their sessions (events_with_session, flags): the sessions that started
    # before the range and last into it are read too
    overlap: bool
    # events matched to their sessions carry the session's identity (s_vk0, s_start): visits counted
    # from events
    identity: bool = False


@dataclass(frozen=True, slots=True)
class Part:
    """One aggregate over one relation: the event part (``ev``), the session part (``se``) or the
    engagement part (``en``)."""

    name: Literal["ev", "se", "en"]
    reads: Reads
    metrics: tuple[str, ...]
    session_valued: frozenset[str]  # dimensions (by name) whose value this part takes from the session
    time_column: Literal["timestamp", "start"]
    # this part's dimensions and filters: the plan's, except in a session part where event:page stands
    # for the entry page (see by_entry_page); None: the plan's
    dimensions: tuple[Dimension | None, ...] | None = None
    filters: Filter | None = None
    # bounce_rate counts only the sessions whose entry page satisfies this (see entry_bounce)
    bounce_on: Condition | None = None


@dataclass(frozen=True, slots=True)
class Conversion:
    """The denominator of conversion_rate: visitors of ``reads`` under the non-goal ``filters``; for
    group_conversion_rate, the same per group of the dimensions at ``group`` (all but event:goal)."""

    reads: Reads
    filters: Filter | None
    session_valued: frozenset[str]  # as in the event part
    group: tuple[int, ...] | None = None  # None: no group_conversion_rate


@dataclass(frozen=True, slots=True)
class Plan:
    site_id: str
    bounds: tuple[datetime, datetime]  # UTC [lower, upper)
    tz: str
    columns: tuple[str, ...]  # lake columns scanned
    sessions: Sessions | None  # None: nothing is sessionised
    parts: tuple[Part, ...]
    join: Join
    dimensions: tuple[Dimension | None, ...]  # None: the time bucket
    bucket: Bucket | None
    filters: Filter | None
    metrics: tuple[str, ...]
    conversion: Conversion | None
    order: tuple[tuple[str, Literal["ASC", "DESC"]], ...]  # output column, direction
    limit: int | None
    offset: int
    zero_fill: bool  # a time series: every bucket of the range is reported
    shared_scan: bool  # both parts read the scope: buffer one scan instead of inlining it twice
    # has_done / has_not_done nodes of the filters (the same objects, in tree order): each is answered
    # from the sessions having an event in the range matching its filter
    behaviours: tuple[Behaviour, ...] = ()
    #: the denominator of ``percentage``: the event part's visitors under all the query's filters
    share: Conversion | None = None


def rolled_dimension(plan: Plan) -> str:
    """The dimension whose rollup rows the plan reads (``''``: the day's totals)."""
    return next((d.name for d in plan.dimensions if d is not None), "")


def without(plan: Plan, reads: Literal["rollups", "visits"]) -> Plan:
    """``plan`` with the part reading ``reads`` reading what those rows are summed from instead (the
    events, the sessions): the engine's answer when they do not add up."""
    instead: Reads = "events" if reads == "rollups" else "sessions"
    return replace(plan, parts=tuple(replace(p, reads=instead) if p.reads == reads else p
                                     for p in plan.parts))


def reads_sessions(plan: Plan) -> bool:
    """Whether the plan reads session rows (not only visit rows, whose plan keeps its sessions for
    :func:`without`)."""
    return plan.sessions is not None and not all(p.reads == "visits" for p in plan.parts)
