"""Plan → SQL for the aggregate family (stats, breakdowns, time series, the v2 query API).

The builder writes what the plan (planner.py) decided and decides nothing itself: which relation each
part reads, which columns are scanned and sessionised, how the parts are joined, the order and the page.
Every value is bound as a parameter. Time buckets are in the query's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .attributed import Attributed, join
from .filters import Behaviour, Condition, Filter, compile_condition, compile_tree
from .model import Query
from .planner import FROM_EVENTS, SESSION_SUMMABLE, plan_query
from .plans import Conversion, Part, Plan, reads_sessions, rolled_dimension
from .registry import GOAL_COLUMN, METRICS, Dimension
from .revenue import REVENUE_METRICS, metric_sql
from .rollups import METRICS as ROLLED_METRICS
from .sessions import BELONGS, reaching, visitor_key, with_end_time
from .sql import Sql, with_ctes

_LABEL: Final = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m-%d"}
_VISITORS: Final = "count(DISTINCT visitor_id)"
_FROM: Final = {"events": "scoped", "events_with_session": "ev_rows", "sessions": "sessions"}
UNKNOWN: Final = "(unknown)"  # label of a missing dimension value


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: Sql
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]


def compile_query(q: Query, *, source: Sql, sessions: Sql | None = None,
                  rollups: Sql | None = None, engagement: Sql | None = None) -> Compiled:
    """The SQL answering ``q`` over ``source`` (a relation with the lake schema), ``sessions`` (one
    with the session rows' columns, see stored.py; needed when the plan reads sessions), ``rollups``
    (the rollup rows with their day, see rollups.py; needed when the plan reads them) and
    ``engagement`` (the engagement reports with their visit, see engagement.py; likewise)."""
    return build_sql(plan_query(q), source=source, sessions=sessions, rollups=rollups,
                     engagement=engagement)


def build_sql(plan: Plan, *, source: Sql, sessions: Sql | None = None,
              rollups: Sql | None = None, engagement: Sql | None = None,
              attributed: Attributed | None = None, visits: Sql | None = None) -> Compiled:
    """The SQL of ``plan`` over ``source`` (a relation with the lake schema), ``sessions``,
    ``rollups``, ``engagement``, the ``attributed`` events stored for some days (attributed.py),
    which the plan's events matched to their sessions are read from on those days, and the ``visits``
    rows (visits.py, with their day)."""
    lower, upper = plan.bounds
    scoped = Sql("SELECT " + ", ".join(f'"{c}"' for c in plan.columns) + " FROM events "
                 "WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (plan.site_id, lower, upper))
    ctes: list[tuple[str, Sql]] = [("events", source), ("scoped", scoped)]
    if reads_sessions(plan):
        if sessions is None:
            raise ValueError("this plan reads sessions: pass their relation")
        ctes += _sessions_ctes(plan, sessions, attributed)
    if any(p.reads == "rollups" for p in plan.parts):
        if rollups is None:
            raise ValueError("this plan reads rollups: pass their relation")
        ctes.append(("rollups", rollups))
    if any(p.reads == "visits" for p in plan.parts):
        if visits is None:
            raise ValueError("this plan reads visit rows: pass their relation")
        ctes.append(("visits", visits))
    if any(p.reads == "engagement" for p in plan.parts):
        if engagement is None:
            raise ValueError("this plan reads engagement reports: pass their relation")
        ctes.append(("en_rows", engagement))
    for part in plan.parts:
        ctes += _part(plan, part)
        if part.name == "ev" and plan.conversion is not None:
            ctes.append(("total", _conversion_total(plan, plan.conversion)))
            if plan.conversion.group is not None:
                ctes.append(("group_total", _group_total(plan, plan.conversion)))
        if part.name == "ev" and plan.share is not None:
            ctes.append(("share_total", _conversion_total(plan, plan.share)))
    body = Sql("SELECT " + ", ".join(_output_columns(plan)) + ", count(*) OVER () AS total_rows FROM "
               + _join(plan) + _order(plan))
    if plan.limit is not None:
        body = body + Sql(" LIMIT ? OFFSET ?", (plan.limit, plan.offset))
    elif plan.offset:
        body = body + Sql(" OFFSET ?", (plan.offset,))
    inline = ("events",) if plan.shared_scan else ("events", "scoped")
    return Compiled(with_ctes(ctes, body, inline=inline),
                    tuple(f"d{i}" for i in range(len(plan.dimensions))),
                    tuple(f"m_{m}" for m in plan.metrics))


def _sessions_ctes(plan: Plan, rows: Sql, attributed: Attributed | None) -> list[tuple[str, Sql]]:
    """``session_rows`` (the given relation), ``sessions`` (those starting in the range, with the
    plan's per-session columns) and, for matching events to sessions, ``flagged`` and ``ev_rows``."""
    assert plan.sessions is not None
    s = plan.sessions
    lower, upper = plan.bounds
    ctes: list[tuple[str, Sql]] = [("session_rows", with_end_time(rows))]
    attrs = "".join(f", {a} AS s_{a}" for a in s.attributes)
    pages = "".join(f", {p}" for p in s.pages)
    in_range = Sql(" WHERE start_time >= ? AND start_time < ?", (lower, upper))
    columns = ("start_time AS start, duration_us / 1000000.0 AS duration_s, pageviews, events, "
               "revenue, visitor_keys" + pages + attrs)
    if s.flags:
        # f_<i>: whether an event of the session in the range matched leaf i of the filters
        flags = Sql.join([("coalesce(bool_or(" + compile_condition(c, c.dimension.event_expr())
                           + f"), false) AS f_{i}") for i, c in enumerate(s.flags)])
        ctes.append(("flagged", "SELECT s.vid0, s.start_time, " + flags + " FROM (SELECT "
                     "visitor_keys[1] AS vid0, unnest(visitor_keys) AS vid, start_time, end_time FROM "
                     "session_rows" + in_range + f") s JOIN scoped e ON {BELONGS} "
                     "GROUP BY s.vid0, s.start_time"))
        picks = ", ".join(f"coalesce(f.f_{i}, false) AS f_{i}" for i in range(len(s.flags)))
        ctes.append(("sessions", f"SELECT {columns}, {picks} FROM (SELECT *, visitor_keys[1] AS vid0 "
                     "FROM session_rows" + in_range + ") LEFT JOIN flagged f USING (vid0, start_time)"))
    else:
        ctes.append(("sessions", f"SELECT {columns} FROM session_rows" + in_range))
    for i, done in enumerate(plan.behaviours):
        # matched_<i>: the sessions with an event in the range matching the node's filter; done_<i>:
        # each of their visitor keys with the session's span
        match = compile_tree(done.child, lambda c: compile_condition(c, c.dimension.event_expr()))
        ctes.append((f"matched_{i}", Sql(
            "SELECT DISTINCT s.vid0, s.start_time FROM (SELECT visitor_keys[1] AS vid0, unnest(visitor_keys) "
            "AS vid, start_time, end_time FROM session_rows WHERE ") + reaching(lower, upper)
            + f") s JOIN scoped e ON {BELONGS} WHERE " + match))
        ctes.append((f"done_{i}", Sql(
            "SELECT unnest(r.visitor_keys) AS vid, r.start_time, r.end_time FROM session_rows r JOIN "
            f"matched_{i} m ON r.visitor_keys[1] = m.vid0 AND r.start_time = m.start_time")))
    if s.overlap and any(p.reads == "events_with_session" for p in plan.parts):
        ctes.append(("ev_rows", _ev_rows(plan, attributed)))
    return ctes


def _ev_rows(plan: Plan, stored: Attributed | None) -> Sql:
    """The range's events with their sessions' columns: read where ``stored``, else joined."""
    assert plan.sessions is not None
    s = plan.sessions
    lower, upper = plan.bounds
    if stored is None or "site_id" in plan.columns or not stored.serves(f"s_{a}" for a in s.attributes):
        return join("e.*", s.pages, s.attributes, s.identity, lower, upper)
    parts = [stored.relation(plan.columns, s.pages, s.attributes, s.identity, lower, upper)]
    parts += [join("e.*", s.pages, s.attributes, s.identity, run.lower, run.upper, only=True,
                   since=stored.since(run.lower), ending=run.sessions())
              for run in stored.outside(lower, upper)]
    return Sql.join(parts, " UNION ALL BY NAME ")


def _value(dim: Dimension, part: Part) -> Sql:
    return dim.visit_expr() if dim.name in part.session_valued else dim.event_expr()


def _bucket(plan: Plan, column: str) -> Sql:
    assert plan.bucket is not None
    local = Sql(column) if plan.tz == "UTC" else Sql(f"timezone(?, timezone('UTC', {column}))",
                                                     (plan.tz,))
    # Grouped by the truncated time; formatted once per bucket in the output (_output_columns), not
    # once per row: strftime on every event doubled the cost of a time series.
    return Sql(f"date_trunc('{plan.bucket}', ") + local + ")"


def _part(plan: Plan, part: Part) -> list[tuple[str, Sql]]:
    """The CTEs of one part; the last is named after the part."""
    dims = plan.dimensions if part.dimensions is None else part.dimensions
    select = [(_bucket(plan, part.time_column) if d is None else _value(d, part)) + f" AS d{i}"
              for i, d in enumerate(dims)]
    group = " GROUP BY ALL" if plan.dimensions else ""
    if part.name == "se":
        assert plan.sessions is not None
        flags = {id(c): f"f_{i}" for i, c in enumerate(plan.sessions.flags)}

        def leaf(c: Condition) -> Sql:
            if c.dimension.name in part.session_valued:
                return compile_condition(c, c.dimension.visit_expr())
            return Sql(flags[id(c)])

        select += [_session_metric(m, part) for m in part.metrics]
        filters = plan.filters if part.dimensions is None else part.filters
        return [("se", "SELECT " + Sql.join(select) + " FROM sessions"
                 + _where(plan, filters, leaf, per_session=True) + group)]
    if part.reads == "rollups":  # one rolled dimension at most (its rows), else the day's total row
        rolled = rolled_dimension(plan)
        select = [(_bucket(plan, "day::TIMESTAMP") if d is None else Sql("value")) + f" AS d{i}"
                  for i, d in enumerate(plan.dimensions)]
        select += [Sql(f"{ROLLED_METRICS[m]} AS m_{m}") for m in part.metrics]
        lower, upper = plan.bounds  # the rows of the end days are of their part in the range
        return [("ev", "SELECT " + Sql.join(select) + Sql(
            " FROM rollups WHERE dimension = ? AND day >= ? AND day <= ?",
            (rolled, lower.date(), (upper - timedelta(microseconds=1)).date())) + _kept(plan) + group)]
    if part.reads == "visits":  # the rows of its one dimension (visits.answers)
        lower, upper = plan.bounds
        select = [Sql("value AS d0"), *(_visit_metric(m, lower) for m in part.metrics)]
        return [("ev", "SELECT " + Sql.join(select) + Sql(
            " FROM visits WHERE dimension = ? AND day >= ? AND day < ?",
            (rolled_dimension(plan), lower.date(), upper.date())) + _kept(plan) + group)]
    where = _where(plan, plan.filters, lambda c: compile_condition(c, _value(c.dimension, part)),
                   per_session=part.reads == "sessions")
    if part.reads == "engagement":  # one row per visit (and dimension values), then the metrics
        per_visit = ("SELECT " + Sql.join([*select, Sql("visitor_id, visit, max(scroll_depth) AS sd, "
                                                        "sum(engagement_ms) AS ms")])
                     + " FROM en_rows" + where + " GROUP BY ALL")
        outer = [Sql(f"d{i}") for i in range(len(plan.dimensions))]
        outer += [Sql(f"{METRICS[m].expr} AS m_{m}") for m in part.metrics]
        return [("en", "SELECT " + Sql.join(outer) + " FROM (" + per_visit + ")" + group)]
    if part.reads == "sessions":
        # Each session's sums are counted once (on its first visitor id); its visitors are all its ids.
        select += [Sql(f"count(DISTINCT vid) AS m_{m}" if m == "visitors" else
                       # BIGINT: a sum of counts is a HUGEINT, which reaches Python as a Decimal
                       f"coalesce(sum({SESSION_SUMMABLE[m]}) FILTER (WHERE nth = 1), 0)::BIGINT "
                       f"AS m_{m}") for m in part.metrics]
        ids = ("SELECT *, unnest(visitor_keys) AS vid, generate_subscripts(visitor_keys, 1) AS nth "
               "FROM sessions")
        return [("ev", "SELECT " + Sql.join(select) + " FROM (" + ids + where + ")" + group)]
    select += [Sql((metric_sql(m) if m in REVENUE_METRICS
                    else _counted(FROM_EVENTS.get(m, METRICS[m].expr), part.reads)) + f" AS m_{m}")
               for m in part.metrics]
    return [("ev", "SELECT " + Sql.join(select) + " FROM " + _rows(plan, part) + where + group)]


def _kept(plan: Plan) -> Sql:
    """The filters of a plan reading rows by one dimension's value (rollups, visits), on that value:
    they name that dimension only (rollups.filters_roll), and keep or drop whole rows."""
    return Sql("") if plan.filters is None else " AND " + compile_tree(
        plan.filters, lambda c: compile_condition(c, Sql("value")), _behaviour(plan, False))


def _visit_metric(name: str, lower: datetime) -> Sql:
    """A metric summed over the visit rows of the days from ``lower``: a key carried from the day
    before counts on that day only (visits.py)."""
    if name == "visitors":
        return Sql("(sum(visitors) - coalesce(sum(carried) FILTER (WHERE day > ?), 0))::BIGINT AS m_visitors",
                   (lower.date(),))
    return Sql(f"sum({name})::BIGINT AS m_{name}")


def _session_metric(name: str, part: Part) -> Sql:
    if name == "bounce_rate" and part.bounce_on is not None:  # of the sessions entering on the page
        entry = compile_condition(part.bounce_on, part.bounce_on.dimension.visit_expr())
        return "coalesce(avg((pageviews = 1)::INTEGER) FILTER (WHERE " + entry + "), 0) AS m_bounce_rate"
    return Sql(f"{METRICS[name].expr} AS m_{name}")


def _counted(expr: str, reads: str) -> str:
    """A metric's SQL over ``reads``: over ``ev_rows`` a visitor is counted by its key (``vk``, as the
    session rows count theirs), not by the 64 characters of its id: half the time of such a count."""
    return expr.replace(_VISITORS, "count(DISTINCT vk)") if reads == "events_with_session" else expr


def _rows(plan: Plan, part: Part) -> Sql:
    """The relation an event part reads: with event:goal as a dimension, one row per goal an event
    matched (events matching none are left out)."""
    goals = next((d.goals for d in plan.dimensions if d is not None and d.goals is not None), None)
    if goals is None:
        return Sql(_FROM[part.reads])
    names = Sql.join(["CASE WHEN " + predicate + Sql(" THEN ? END", (name,))
                      for name, predicate in goals]) if goals else Sql("NULL::VARCHAR")
    return ("(SELECT * FROM (SELECT *, unnest([" + names + f"]) AS {GOAL_COLUMN} FROM "
            f"{_FROM[part.reads]}) WHERE {GOAL_COLUMN} IS NOT NULL)")


def _conversion_total(plan: Plan, conv: Conversion) -> Sql:
    part = Part("ev", conv.reads, (), conv.session_valued, "timestamp")
    where = Sql("") if conv.filters is None else " WHERE " + compile_tree(
        conv.filters, lambda c: compile_condition(c, _value(c.dimension, part)),
        _behaviour(plan, conv.reads == "sessions"))
    return f"SELECT {_counted(_VISITORS, conv.reads)} AS n FROM " + _FROM[conv.reads] + where


def _group_total(plan: Plan, conv: Conversion) -> Sql:
    """group_conversion_rate's denominator: visitors per group of the non-goal dimensions."""
    assert conv.group is not None
    part = Part("ev", conv.reads, (), conv.session_valued, "timestamp")
    dims = [(i, plan.dimensions[i]) for i in conv.group]
    select = [(_bucket(plan, "timestamp") if d is None else _value(d, part)) + f" AS d{i}"
              for i, d in dims]
    where = Sql("") if conv.filters is None else " WHERE " + compile_tree(
        conv.filters, lambda c: compile_condition(c, _value(c.dimension, part)),
        _behaviour(plan, conv.reads == "sessions"))
    return ("SELECT " + Sql.join([*select, Sql(f"{_counted(_VISITORS, conv.reads)} AS n")]) + " FROM "
            + _FROM[conv.reads] + where + (" GROUP BY ALL" if conv.group else ""))


def _where(plan: Plan, filters: Filter | None, leaf: object, *, per_session: bool = False) -> Sql:
    if filters is None:
        return Sql("")
    return " WHERE " + compile_tree(filters, leaf, _behaviour(plan, per_session))  # type: ignore[arg-type]


def _behaviour(plan: Plan, per_session: bool) -> Callable[[Behaviour], Sql]:
    """has_done / has_not_done over event rows (``visitor_id``, ``timestamp``) or, ``per_session``,
    over session rows (``visitor_keys``, ``start``): whether the row's session is one of the node's."""
    index = {id(b): i for i, b in enumerate(plan.behaviours)}

    def compiled(node: Behaviour) -> Sql:
        i = index[id(node)]
        test = (f"SELECT 1 FROM matched_{i} m WHERE m.vid0 = visitor_keys[1] AND m.start_time = start"
                if per_session else
                f"SELECT 1 FROM done_{i} d WHERE d.vid = {visitor_key('visitor_id')} AND timestamp "
                "BETWEEN d.start_time AND d.end_time")
        return Sql(("NOT " if node.op == "has_not_done" else "") + f"EXISTS ({test})")

    return compiled


def _output_columns(plan: Plan) -> list[str]:
    sides = [p.name for p in plan.parts]
    side_of = {m: p.name for p in plan.parts for m in p.metrics}
    columns: list[str] = []
    for i, dim in enumerate(plan.dimensions):
        refs = [f"{s}.d{i}" for s in sides]
        value = refs[0] if len(refs) == 1 else "coalesce(" + ", ".join(refs) + ")"
        if dim is not None:  # a missing value is reported (and sorted) as '(unknown)'
            value = f"coalesce({value}, '{UNKNOWN}')"
        else:
            assert plan.bucket is not None
            value = f"strftime({value}, '{_LABEL[plan.bucket]}')"
        columns.append(f"{value} AS d{i}")
    for m in plan.metrics:
        value = f"{side_of[m]}.m_{m}"
        if m == "conversion_rate":
            value = f"coalesce({value} / nullif(total.n, 0), 0)"
        elif m == "group_conversion_rate":
            value = f"coalesce({value} / nullif(group_total.n, 0), 0)"
        elif m == "percentage":
            value = f"coalesce({value} / nullif(share_total.n, 0), 0)"
        elif METRICS[m].empty is not None:
            value = f"coalesce({value}, {METRICS[m].empty!r})"
        columns.append(f"{value} AS m_{m}")
    return columns


def _join(plan: Plan) -> str:
    names: list[str] = [p.name for p in plan.parts]
    join = names[0]
    if plan.join == "full_outer_on_dimensions":
        for k, name in enumerate(names[1:], start=1):
            # a part joins the rows of those before it on their (coalesced) dimension values
            join += f" FULL OUTER JOIN {name} ON " + (" AND ".join(
                f"{_coalesced(names[:k], i)} IS NOT DISTINCT FROM {name}.d{i}"
                for i in range(len(plan.dimensions))) or "true")
    if plan.conversion is not None:
        join += " CROSS JOIN total"
        if plan.conversion.group is not None:
            join += " LEFT JOIN group_total ON " + (" AND ".join(
                f"{plan.parts[0].name}.d{i} IS NOT DISTINCT FROM group_total.d{i}"
                for i in plan.conversion.group) or "true")
    if plan.share is not None:
        join += " CROSS JOIN share_total"
    return join


def _coalesced(names: list[str], i: int) -> str:
    return f"{names[0]}.d{i}" if len(names) == 1 else "coalesce(" + ", ".join(
        f"{n}.d{i}" for n in names) + ")"


def _order(plan: Plan) -> str:
    if not plan.order:
        return ""
    return " ORDER BY " + ", ".join(f"{column} {direction}" for column, direction in plan.order)
