"""Query → Plan: every decision about how an aggregate query runs, as small pure functions.

Like Plausible's query optimiser and table decider: the planner reads a validated :class:`Query` and
returns a frozen :class:`Plan` that says which relation each part of the answer reads, which joins are
made, which shortcuts apply, the time bucket, zero-fill, ordering and paging. The builder (builder.py)
turns a plan into SQL without deciding anything.

Relations:

* ``events``: the event rows of the range. Event metrics read them when no dimension or filter needs
  the session.
* ``sessions``: one row per session starting in the range (the stored relation, stored.py, with the
  days not stored yet computed from events). Session metrics read it; event metrics read it too when
  every dimension and filter is a property of the whole session and the metrics can be summed per
  session (the *session-sums* shortcut: Plausible's reading of the sessions table).
* ``events_with_session``: the event rows of the range joined once to the session each belongs to (on
  a visitor id and the session's time span), for event metrics by a visit attribute.
* ``rollups``: per-day totals of the event metrics (rollups.py), for event metrics over whole UTC days
  by at most one dimension an event carries itself, filtered on that dimension only if at all
  (:func:`rollups.answers`). A plan reading them is a proposal: the query reads the events instead
  (:func:`without`) when the range's visitor ids are not day-local.
* ``visits``: per-day rows of the sessions by a visit attribute (visits.py), in place of the
  session-sums shortcut when :func:`visits.answers`; a proposal too (:func:`without`).
* ``engagement``: Plausible's engagement reports of the range with the visit each belongs to
  (engagement.py), for ``scroll_depth`` and ``time_on_page``.

When metrics of several relations are asked, the parts are joined on the dimension values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final, Literal

from .._errors import InvalidQueryError
from . import rollups, visits
from .filters import (
    Condition,
    Filter,
    Logic,
    Written,
    behaviours,
    conditions,
    prune,
    transform,
)
from .model import Query
from .plans import Bucket, Conversion, Part, Plan, Reads, Sessions
from .registry import ATTRIBUTION_COLUMNS, METRICS, TIME_DIMENSIONS, Dimension, dimension
from .revenue import REVENUE_METRICS
from .vocabulary import worded

BASE_COLUMNS: Final = ("visitor_id", "timestamp", "event_name", "pathname")
GOAL_DIMENSIONS: Final = frozenset({"event:name", "event:goal"})
# Columns that cannot differ between the events of one session (they derive from the IP and User-Agent
# hashed into the visitor id), so an event's value equals its session's.
SESSION_CONSTANT: Final = frozenset({"browser", "browser_version", "os", "os_version", "country_code",
                                     "region", "city"})
# Event metrics that can be summed from per-session aggregates (metric → per-session total).
# (Not revenue: the sessions carry no currency, and currencies are never added together.)
SESSION_SUMMABLE: Final = {"pageviews": "pageviews", "events": "events"}
# Session metrics counted from events matched to their sessions when a dimension is an event's (as
# Plausible counts visits by page or property: the sessions with such an event).
FROM_EVENTS: Final = {"visits": "count(DISTINCT {'k': s_vk0, 't': s_start})"}
PAGE: Final = "event:page"
_BUCKETS: Final[dict[str, Bucket]] = {"time:hour": "hour", "time:day": "day", "time:week": "week",
                                      "time:month": "month"}


# -- small decisions ------------------------------------------------------------------------------
def split_metrics(metrics: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(event metrics, session metrics), each in query order."""
    return (tuple(m for m in metrics if METRICS[m].relation == "events"),
            tuple(m for m in metrics if METRICS[m].relation == "sessions"))


def check_engagement(en_metrics: Sequence[str], used: Sequence[Dimension]) -> None:
    """Engagement metrics are per page (Plausible: an event:page dimension or filter) and read only what
    an engagement report carries itself (not the session's source, UTM tags, entry or exit page)."""
    if not en_metrics:
        return
    names = ", ".join(en_metrics)
    if not any(d.name == "event:page" for d in used):
        raise InvalidQueryError(f"Metric(s) {names} need an event:page dimension or filter.",
                                code="invalid_metric")
    bad = next((d for d in used if needs_session(d)), None)
    if bad is not None:
        raise InvalidQueryError(f"Metric(s) {names} cannot be used with {bad.name}: an engagement report "
                                "carries no attribution or entry/exit page.", code="invalid_metric")


def needs_session(dim: Dimension) -> bool:
    """Whether an event's value of ``dim`` is its session's (attribution, entry/exit page)."""
    return dim.level == "visit" and (dim.column is None or dim.column in ATTRIBUTION_COLUMNS)


def is_session_wide(dim: Dimension) -> bool:
    """Whether ``dim`` has one value per session that every event of the session shares."""
    return dim.level == "visit" and (dim.column is None or dim.column in ATTRIBUTION_COLUMNS
                                     or dim.column in SESSION_CONSTANT)


def check_session_dimensions(dims: Iterable[Dimension], se_metrics: Sequence[str]) -> None:
    """Session metrics describe visits: reject a breakdown of them by an event dimension (event:page
    is read as the entry page, see :func:`by_entry_page`)."""
    for dim in dims:
        if se_metrics and dim.level != "visit":
            raise InvalidQueryError(
                f"Metric(s) {', '.join(se_metrics)} describe visits and cannot be broken down by "
                f"{dim.name}; use event:page, visit:entry_page or visit:exit_page, or event metrics "
                "(visits counts the sessions with such events).", code="invalid_dimension")


def split_visits(plain: Sequence[Dimension], ev_metrics: tuple[str, ...],
                 se_metrics: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(event metrics, session metrics) with ``visits`` counted from events when a dimension is an
    event's (Plausible: the sessions having such an event)."""
    if "visits" in se_metrics and any(d.level == "event" for d in plain):
        return (*ev_metrics, "visits"), tuple(m for m in se_metrics if m != "visits")
    return ev_metrics, se_metrics


def by_entry_page(dims: tuple[Dimension | None, ...], filters: Filter | None
                  ) -> tuple[tuple[Dimension | None, ...], Filter | None]:
    """A session part's dimensions and filters: with event:page among the dimensions, session metrics
    by page are those of the sessions entering on the page (Plausible's rule), so event:page reads
    visit:entry_page, in the filters too (but for has_done / has_not_done, whose event:page is the
    page of the event done)."""
    if not any(d is not None and d.name == PAGE for d in dims):
        return dims, filters
    entry = dimension("visit:entry_page")
    return (tuple(entry if d is not None and d.name == PAGE else d for d in dims),
            transform(filters, lambda c: replace(c, dimension=entry) if c.dimension.name == PAGE else c,
                      rebuild_behaviours=False))


def entry_bounce(se_metrics: Sequence[str], dims: Sequence[Dimension | None],
                 filters: Filter | None) -> Condition | None:
    """With a top-level event:page filter (and no event:page dimension), bounce_rate is that of the
    sessions entering on a matching page (Plausible's rule, applied to queries in its vocabulary): that
    filter, made on visit:entry_page."""
    if "bounce_rate" not in se_metrics or any(d is not None and d.name == PAGE for d in dims):
        return None
    top = (filters.children if isinstance(filters, Logic) and filters.op == "and"
           and not isinstance(filters, Written) else (filters,))
    page = next((c for c in top if isinstance(c, Condition) and c.dimension.name == PAGE), None)
    return None if page is None else replace(page, dimension=dimension("visit:entry_page"))


def event_reads(ev_metrics: Sequence[str], used: Sequence[Dimension],
                bucket: Bucket | None) -> Reads | None:
    """The relation event metrics read (None: no event metrics)."""
    if not ev_metrics:
        return None
    if any(m in FROM_EVENTS for m in ev_metrics):
        return "events_with_session"
    if not any(needs_session(d) for d in used):
        return "events"
    if bucket is None and all(m == "visitors" or m in SESSION_SUMMABLE for m in ev_metrics) and all(
            is_session_wide(d) for d in used):
        return "sessions"
    return "events_with_session"


def session_valued(reads: Reads, used: Sequence[Dimension]) -> frozenset[str]:
    """Dimensions (by name) whose value a part reading ``reads`` takes from the session: on sessions,
    every visit dimension (event dimensions become per-session flags); on events joined to their
    session, the attribution and entry/exit dimensions; on bare events, none."""
    if reads == "sessions":
        return frozenset(d.name for d in used if d.level == "visit")
    if reads == "events_with_session":
        return frozenset(d.name for d in used if needs_session(d))
    return frozenset()


def session_attributes(reads: Reads | None, se_metrics: Sequence[str], dims: Sequence[Dimension],
                       conds: Sequence[Condition]) -> tuple[str, ...]:
    """Lake columns whose per-session value the plan reads."""
    used = [*dims, *(c.dimension for c in conds)]
    out: set[str] = set()
    if reads == "events_with_session":
        out |= {d.column for d in used if d.column in ATTRIBUTION_COLUMNS}
    elif reads == "sessions":
        out |= {c for d in used for c in d.lake_columns()}
    if se_metrics:
        out |= {c for d in dims for c in d.lake_columns()}
        out |= {c for cond in conds if cond.dimension.level == "visit" for c in cond.dimension.lake_columns()}
    return tuple(sorted(out))


def session_flags(conds: Sequence[Condition]) -> tuple[Condition, ...]:
    """Event conditions the session part evaluates per session (any event matched): one flag per leaf
    of the filter tree, in tree order, so that the SQL text never depends on the filter values."""
    return tuple(c for c in conds if c.dimension.level != "visit")


def session_pages(used: Sequence[Dimension]) -> tuple[str, ...]:
    """Which of ``entry_page`` and ``exit_page`` the sessions must carry."""
    return tuple(sorted({d.session_column for d in used
                         if d.level == "visit" and d.column is None and d.session_column}))


def sessions_relation(reads: Reads | None, se_metrics: Sequence[str],
                      dims: Sequence[Dimension], conds: Sequence[Condition], *,
                      identity: bool = False) -> Sessions | None:
    """The sessions relation the plan reads, or None when nothing reads sessions (``dims`` and
    ``conds``: the session part's)."""
    if not se_metrics and reads not in ("sessions", "events_with_session"):
        return None
    used = [*dims, *(c.dimension for c in conds)]
    flags = session_flags(conds) if se_metrics else ()
    return Sessions(session_attributes(reads, se_metrics, dims, conds), session_pages(used), flags,
                    overlap=reads == "events_with_session" or bool(flags), identity=identity)


def scan_columns(q: Query, used: Sequence[Dimension]) -> tuple[str, ...]:
    """The lake columns of the range's events the plan reads, sorted."""
    needed = set(BASE_COLUMNS)
    needed |= {c for d in used for c in d.lake_columns()}
    if any(d.prop_key is not None for d in used):
        needed.add("props")
    if REVENUE_METRICS & set(q.metrics):
        needed |= {"revenue_amount", "revenue_currency"}
    return tuple(sorted(needed))


def conversion(q: Query, ev: Part | None) -> Conversion | None:
    """conversion_rate's denominator: the event part's visitors under the query's filters without the
    goal (event name, property) ones."""
    if not {"conversion_rate", "group_conversion_rate"} & set(q.metrics) or ev is None:
        return None
    group = tuple(i for i, d in enumerate(q.dimensions) if d != "event:goal") \
        if "group_conversion_rate" in q.metrics else None
    return Conversion(ev.reads, prune(q.filters, lambda c: c.dimension.name in GOAL_DIMENSIONS
                                      or c.dimension.prop_key is not None), ev.session_valued,
                      group)


def order_keys(q: Query) -> tuple[tuple[str, Literal["ASC", "DESC"]], ...]:
    """ORDER BY keys over output columns: the requested order, else time ascending then (with other
    dimensions) the first metric descending; every dimension ascending breaks ties."""
    keys: list[tuple[str, Literal["ASC", "DESC"]]] = []
    for name, direction in q.order_by:
        column = f"m_{name}" if name in q.metrics else f"d{q.dimensions.index(name)}"
        keys.append((column, "ASC" if direction == "asc" else "DESC"))
    ndims = len(q.dimensions)
    if not q.order_by:
        time_index = next((i for i, d in enumerate(q.dimensions) if d in TIME_DIMENSIONS), None)
        if time_index is not None:
            keys.append((f"d{time_index}", "ASC"))
        if ndims and (time_index is None or ndims > 1):
            keys.append((f"m_{q.metrics[0]}", "DESC"))
    keys += [(f"d{i}", "ASC") for i in range(ndims)]
    return tuple(keys)


def is_zero_filled(q: Query) -> bool:
    """A time series (the time dimension alone) reports every bucket of the range, empty ones too,
    unless the query leaves them out (:attr:`Query.empty_buckets`)."""
    return q.empty_buckets and q.time_dimension is not None and q.dimensions == (q.time_dimension,)


# -- the plan -------------------------------------------------------------------------------------
def plan_query(q: Query) -> Plan:
    """The :class:`Plan` answering ``q``."""
    time_dim = q.time_dimension
    bucket: Bucket | None = None if time_dim is None else _BUCKETS[time_dim]
    bound = {d.name: d for d in q.bound}
    dims = tuple(None if d in TIME_DIMENSIONS else bound[d] if d in bound
                 else worded(dimension(d), q.vocabulary) for d in q.dimensions)
    plain = [d for d in dims if d is not None]
    conds = list(conditions(q.filters))
    used = [*plain, *(c.dimension for c in conds)]
    ev_metrics, se_metrics = split_visits(plain, *split_metrics(q.metrics))
    en_metrics = tuple(m for m in q.metrics if METRICS[m].relation == "engagement")
    se_dims, se_filters = by_entry_page(dims, q.filters) if se_metrics else (dims, q.filters)
    se_plain = [d for d in se_dims if d is not None]
    se_conds = list(conditions(se_filters))
    check_session_dimensions(se_plain, se_metrics)
    check_engagement(en_metrics, used)
    reads = event_reads(ev_metrics, used, bucket)
    bounds = q.date_range.bounds()
    # A range of instants (realtime, 24h) is a few hours at most: its events are cheaper than rollups.
    if reads == "events" and q.date_range.instants is None and rollups.answers(q, ev_metrics, plain,
                                                                                bucket, bounds):
        reads = "rollups"
    elif reads == "sessions" and visits.answers(q, ev_metrics, plain, bucket, bounds):
        reads = "visits"
    # what the event part reads when the visit rows do not answer
    by: Reads | None = "sessions" if reads == "visits" else reads
    ev = None if reads is None else Part("ev", reads, ev_metrics, session_valued(by or reads, used),
                                         "timestamp")
    bounce_on = entry_bounce(se_metrics, dims, q.filters) if q.vocabulary == "plausible" else None
    se_used = [*se_plain, *(c.dimension for c in se_conds)]
    se = Part("se", "sessions", se_metrics, session_valued("sessions", se_used), "start",
              se_dims, se_filters, bounce_on) if se_metrics else None
    en = Part("en", "engagement", en_metrics, frozenset(), "timestamp") if en_metrics else None
    parts = [p for p in (ev, se, en) if p is not None]
    sessions = sessions_relation(by, se_metrics, se_plain,
                                 [*se_conds, *([bounce_on] if bounce_on is not None else [])],
                                 identity=any(m in FROM_EVENTS for m in ev_metrics))
    done = tuple(behaviours(q.filters))
    if done and sessions is None:
        sessions = Sessions((), (), (), overlap=True)
    return Plan(
        site_id=q.site_id, bounds=bounds, tz=q.date_range.tz,
        columns=scan_columns(q, [*used, *(c.dimension for b in done for c in conditions(b.child))]),
        sessions=sessions, parts=tuple(parts),
        join="full_outer_on_dimensions" if len(parts) > 1 else "none", dimensions=dims,
        bucket=bucket, filters=q.filters, metrics=q.metrics, conversion=conversion(q, ev),
        order=order_keys(q), limit=q.limit, offset=q.offset, zero_fill=is_zero_filled(q),
        shared_scan=ev is not None and se is not None, behaviours=done,
        share=None if ev is None or "percentage" not in q.metrics
        else Conversion(ev.reads, q.filters, ev.session_valued))

