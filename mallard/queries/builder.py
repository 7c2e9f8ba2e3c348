"""Query → SQL for the aggregate family (stats, breakdowns, time series, the v2 query API).

Plan, decided from the query alone:

* event metrics aggregate event rows; they read ``scoped`` directly unless a dimension or filter needs
  the session (source/referrer/UTM attribution, entry/exit page), then ``ev_rows`` (events joined to their
  session's attributes);
* session metrics aggregate ``sessions`` (see sessions.py): visit dimensions come from the session,
  filters on event dimensions keep the sessions with at least one matching event;
* both sides are joined on the dimension values. Time buckets are in the query's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import InvalidQueryError
from . import sessions as _sessions
from .filters import Condition, compile_condition, compile_tree, conditions, prune
from .model import Query
from .registry import ATTRIBUTION_COLUMNS, METRICS, TIME_DIMENSIONS, Dimension, dimension
from .sql import Sql, with_ctes

_BASE_COLUMNS: Final = ("visitor_id", "timestamp", "event_name", "pathname")
_TRUNC: Final = {"time:hour": "hour", "time:day": "day", "time:week": "week", "time:month": "month"}
_LABEL: Final = {"time:hour": "%Y-%m-%d %H:00", "time:day": "%Y-%m-%d", "time:week": "%Y-%m-%d",
                 "time:month": "%Y-%m-%d"}
GOAL_DIMENSIONS: Final = frozenset({"event:name"})
# Columns that cannot differ between the events of one session (they derive from the IP and User-Agent
# hashed into the visitor id), so an event's value equals its session's.
_SESSION_CONSTANT: Final = frozenset({"browser", "browser_version", "os", "os_version", "country_code",
                                      "region", "city"})
# Event metrics that can be summed from per-session aggregates.
_SESSION_SUMMABLE: Final = {"pageviews": "pageviews", "events": "events", "total_revenue": "revenue"}
UNKNOWN: Final = "(unknown)"  # label of a missing dimension value


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: Sql
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]


def _needs_session(dim: Dimension) -> bool:
    """Whether event rows need their session to evaluate ``dim`` (attribution, entry/exit)."""
    return dim.level == "visit" and (dim.column is None or dim.column in ATTRIBUTION_COLUMNS)


def _event_expr(dim: Dimension, with_session: bool) -> Sql:
    if dim.level == "visit" and with_session and _needs_session(dim):
        return dim.visit_expr()
    return dim.event_expr()


def _session_expr(dim: Dimension, metrics: Sequence[str]) -> Sql:
    if dim.level != "visit":
        raise InvalidQueryError(
            f"Metric(s) {', '.join(metrics)} describe visits and cannot be broken down by "
            f"{dim.name}; use visit:entry_page or visit:exit_page, or event metrics.",
            code="invalid_dimension")
    return dim.visit_expr()


def _bucket(time_dim: str | None, column: str, tz: str) -> Sql:
    assert time_dim is not None
    local = Sql(column) if tz == "UTC" else Sql(f"timezone(?, timezone('UTC', {column}))", (tz,))
    return Sql(f"strftime(date_trunc('{_TRUNC[time_dim]}', ") + local + f"), '{_LABEL[time_dim]}')"


def compile_query(q: Query, *, source: Sql, gap_seconds: int) -> Compiled:
    """The SQL answering ``q`` over ``source`` (a relation with the lake schema)."""
    time_dim = q.time_dimension
    dims = [dimension(d) if d not in TIME_DIMENSIONS else None for d in q.dimensions]
    conds = list(conditions(q.filters))
    ev_metrics = [m for m in q.metrics if METRICS[m].relation == "events"]
    se_metrics = [m for m in q.metrics if METRICS[m].relation == "sessions"]
    plain = [d for d in dims if d is not None]
    ev_needs_session = bool(ev_metrics) and any(
        _needs_session(d) for d in [*plain, *(c.dimension for c in conds)])
    use_sessions = bool(se_metrics) or ev_needs_session
    # Event metrics by session attributes only (sources, entry pages, …) are summed from the sessions
    # themselves: no join of every event back to its session.
    ev_from_sessions = ev_needs_session and time_dim is None and all(
        m == "visitors" or m in _SESSION_SUMMABLE for m in ev_metrics) and all(
        d.level == "visit" and (d.column is None or d.column in ATTRIBUTION_COLUMNS
                                or d.column in _SESSION_CONSTANT)
        for d in [*plain, *(c.dimension for c in conds)])

    # -- columns and session attributes ------------------------------------------------------------
    needed = set(_BASE_COLUMNS)
    for d in [*plain, *(c.dimension for c in conds)]:
        if d.column is not None:
            needed.add(d.column)
        if d.prop_key is not None:
            needed.add("props")
    if "total_revenue" in q.metrics:
        needed.add("revenue_amount")
    if use_sessions:
        needed.add("visitor_id_prev")
    attributes: set[str] = set()
    if ev_needs_session:
        attributes |= {d.column for d in [*plain, *(c.dimension for c in conds)]
                       if d.column in ATTRIBUTION_COLUMNS
                       or (ev_from_sessions and d.column is not None)}
    flags: list[Condition] = []
    if se_metrics:
        for d in plain:
            _session_expr(d, se_metrics)
            if d.column is not None:
                attributes.add(d.column)
        for c in conds:
            if c.dimension.level == "visit":
                if c.dimension.column is not None:
                    attributes.add(c.dimension.column)
            else:
                flags.append(c)

    lower, upper = q.date_range.bounds()
    scoped = Sql("SELECT " + ", ".join(f'"{c}"' for c in sorted(needed)) + " FROM events "
                 "WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (q.site_id, lower, upper))
    ctes: list[tuple[str, Sql]] = [("events", source), ("scoped", scoped)]
    flag_names = {id(c): f"f_{i}" for i, c in enumerate(flags)}
    pages = sorted({d.session_column for d in [*plain, *(c.dimension for c in conds)]
                    if d.level == "visit" and d.column is None and d.session_column})
    extras: list[str] = []
    if ev_from_sessions:
        extras = ["count(*) AS events", "min(visitor_id) AS vid_a", "max(visitor_id) AS vid_b"]
        if "total_revenue" in ev_metrics:
            extras.append("sum(revenue_amount) AS revenue")
    if use_sessions:
        ctes += _sessions.ctes(gap_seconds, attributes=sorted(attributes), pages=pages, flags=[
            compile_condition(c, c.dimension.event_expr()) for c in flags], extras=extras)

    tz = q.date_range.tz
    outputs: list[str] = [f"d{i}" for i in range(len(dims))]
    parts: dict[str, str] = {}

    # -- event side ------------------------------------------------------------------------------
    ev_from = "scoped"
    if ev_metrics and ev_from_sessions:
        # A session holds events of at most two visitor ids (one salt change); each session's sums
        # are counted once, on its first id.
        select = [d.visit_expr() + f" AS d{i}" for i, d in enumerate(plain)]
        select += [Sql(f"count(DISTINCT u.v) AS m_{m}" if m == "visitors" else
                       # BIGINT: a sum of counts is a HUGEINT, which reaches Python as a Decimal
                       f"coalesce(sum({_SESSION_SUMMABLE[m]}) FILTER (WHERE u.first), 0)::BIGINT "
                       f"AS m_{m}")
                   for m in ev_metrics]
        where = _where(q, lambda c: compile_condition(c, c.dimension.visit_expr()))
        ids = ("SELECT *, unnest(CASE WHEN vid_a = vid_b THEN [{'v': vid_a, 'first': true}] "
               "ELSE [{'v': vid_a, 'first': true}, {'v': vid_b, 'first': false}] END) AS u "
               "FROM sessions")
        ctes.append(("ev", "SELECT " + Sql.join(select) + " FROM (" + ids + where + ")"
                     + (" GROUP BY ALL" if dims else "")))
        parts["ev"] = "ev"
    elif ev_metrics:
        if ev_needs_session:
            extra = ", ".join([*(f"s.{p}" for p in pages), *(f"s.s_{a}" for a in sorted(attributes))])
            ctes.append(("ev_rows", Sql(f"SELECT n.*, {extra} FROM numbered n JOIN sessions s "
                                        "USING (hash_a, sess)")))
            ev_from = "ev_rows"
        select = [_bucket(time_dim, "timestamp", tz) + f" AS d{i}" if d is None
                  else _event_expr(d, ev_needs_session) + f" AS d{i}" for i, d in enumerate(dims)]
        select += [Sql(f"{METRICS[m].expr} AS m_{m}") for m in ev_metrics]
        where = _where(q, lambda c: compile_condition(c, _event_expr(c.dimension, ev_needs_session)))
        ctes.append(("ev", "SELECT " + Sql.join(select) + f" FROM {ev_from}" + where
                     + (" GROUP BY ALL" if dims else "")))
        parts["ev"] = "ev"
        if "conversion_rate" in q.metrics:
            pruned = prune(q.filters, lambda c: c.dimension.name in GOAL_DIMENSIONS
                           or c.dimension.prop_key is not None)
            total_where = Sql("") if pruned is None else " WHERE " + compile_tree(
                pruned, lambda c: compile_condition(c, _event_expr(c.dimension, ev_needs_session)))
            ctes.append(("total", "SELECT count(DISTINCT visitor_id) AS n FROM " + ev_from
                         + total_where))

    # -- session side ----------------------------------------------------------------------------
    if se_metrics:
        select = [_bucket(time_dim, "start", tz) + f" AS d{i}" if d is None
                  else _session_expr(d, se_metrics) + f" AS d{i}" for i, d in enumerate(dims)]
        select += [Sql(f"{METRICS[m].expr} AS m_{m}") for m in se_metrics]

        def session_leaf(c: Condition) -> Sql:
            if c.dimension.level == "visit":
                return compile_condition(c, c.dimension.visit_expr())
            return Sql(flag_names[id(c)])

        where = _where(q, session_leaf)
        ctes.append(("se", "SELECT " + Sql.join(select) + " FROM sessions" + where
                     + (" GROUP BY ALL" if dims else "")))
        parts["se"] = "se"

    # -- combine ---------------------------------------------------------------------------------
    sides = list(parts)
    columns: list[str] = []
    for i in range(len(dims)):
        refs = [f"{s}.d{i}" for s in sides]
        value = refs[0] if len(refs) == 1 else "coalesce(" + ", ".join(refs) + ")"
        if dims[i] is not None:  # a missing value is reported (and sorted) as '(unknown)'
            value = f"coalesce({value}, '{UNKNOWN}')"
        columns.append(f"{value} AS d{i}")
    for m in q.metrics:
        side = "ev" if METRICS[m].relation == "events" else "se"
        value = f"{side}.m_{m}"
        if m == "conversion_rate":
            value = f"coalesce(100.0 * {value} / nullif(total.n, 0), 0)"
        elif METRICS[m].empty is not None:
            value = f"coalesce({value}, {METRICS[m].empty!r})"
        columns.append(f"{value} AS m_{m}")
    if len(sides) == 2:
        join = "ev FULL OUTER JOIN se ON " + (" AND ".join(
            f"ev.d{i} IS NOT DISTINCT FROM se.d{i}" for i in range(len(dims))) or "true")
    else:
        join = sides[0]
    if "conversion_rate" in q.metrics:
        join += " CROSS JOIN total"
    order = _order(q, len(dims))
    body = Sql("SELECT " + ", ".join(columns) + ", count(*) OVER () AS total_rows FROM " + join
               + order)
    if q.limit is not None:
        body = body + Sql(" LIMIT ? OFFSET ?", (q.limit, q.offset))
    elif q.offset:
        body = body + Sql(" OFFSET ?", (q.offset,))
    # Inline the scan unless both sides consume it (then one buffered scan beats two).
    inline = ("events",) if len(sides) == 2 else ("events", "scoped")
    return Compiled(with_ctes(ctes, body, inline=inline), tuple(outputs),
                    tuple(f"m_{m}" for m in q.metrics))


def _where(q: Query, leaf: object) -> Sql:
    if q.filters is None:
        return Sql("")
    return " WHERE " + compile_tree(q.filters, leaf)  # type: ignore[arg-type]


def _order(q: Query, ndims: int) -> str:
    keys: list[str] = []
    for name, direction in q.order_by:
        if name in q.metrics:
            keys.append(f"m_{name} {direction.upper()}")
        else:
            keys.append(f"d{q.dimensions.index(name)} {direction.upper()}")
    if not q.order_by:
        time_index = next((i for i, d in enumerate(q.dimensions) if d in TIME_DIMENSIONS), None)
        if time_index is not None:
            keys.append(f"d{time_index} ASC")
        if ndims and (time_index is None or ndims > 1):
            keys.append(f"m_{q.metrics[0]} DESC")
    keys += [f"d{i} ASC" for i in range(ndims)]
    return (" ORDER BY " + ", ".join(keys)) if keys else ""
