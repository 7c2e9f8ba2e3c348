"""Filters of the behavioural analyses (funnels, sequences, retention, flow) select identities.

An identity is kept when one of its events in scope belongs to a session that matches the filter: the
session of the stored relation, whole, as every other query reads it (visit dimensions such as source,
entry and exit page are read on the session, event dimensions on any of its events in scope). The
analysis then uses *all* of the kept identities' events, so "flow under a source filter" counts what the
visitors who came from that source did next, not only their landing pageviews.

The identity is keyed by a 64-bit hash ``ik`` (see funnels.py for the collision argument); each
analysis passes the expression of its own identity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from . import sessions as _sessions
from .acquisition import with_computed
from .attributed import Attributed
from .filters import Condition, compile_condition, compile_tree, conditions
from .model import build
from .sql import Sql
from .stored import stored_or_events

if TYPE_CHECKING:
    from .._store.reader import Reader
    from .access import Access
    from .model import Query
    from .periods import DateRange

__all__ = ["ACTOR_KEY", "actor_selection", "filter_columns", "keep_ctes", "needs", "read_selected",
           "run_selected"]

#: The 64-bit key of retention's and flow's identity (user id where present, else the daily visitor id;
#: the two name spaces kept apart).
ACTOR_KEY: Final = "hash(coalesce({p}user_id, {p}visitor_id), {p}user_id IS NULL)"


def filter_columns(filters: Any) -> set[str]:
    """The lake columns the event-level conditions of ``filters`` read (``props`` for properties)."""
    needed: set[str] = set()
    for c in conditions(filters):
        needed.update(c.dimension.lake_columns())
        if c.dimension.prop_key is not None:
            needed.add("props")
    return needed


def keep_ctes(filters: Any, sessions: Sql, lower: object, upper: object, *, events: str,
              ident: str, stored: Attributed | None = None) -> list[tuple[str, Sql]]:
    """CTEs ending in ``keep(ik)``: the identities with an event of ``events`` (the relation of events in
    scope, with ``visitor_id``, ``timestamp`` and the filters' columns) that belongs to a session (of
    ``sessions``, matched on a visitor key and the session's time span) satisfying ``filters``.
    ``ident`` is the SQL of the identity key, ``… AS ik``, over an event row. With ``stored`` (the
    attributed events of some days, when ``events`` are all the site's events in ``[lower, upper)``),
    the events of those days are read with their sessions' columns instead of joined to them."""
    conds = list(conditions(filters))
    flags = [c for c in conds if c.dimension.level != "visit"]
    flag_names = {id(c): f"f_{i}" for i, c in enumerate(flags)}
    # the session columns the visit conditions read, by the name their expression uses (s_<column>,
    # entry_page, exit_page)
    visit = dict(sorted({c.dimension.visit_column(): c.dimension.session_column or c.dimension.column
                         for c in conds if c.dimension.level == "visit"}.items()))

    def leaf(c: Condition) -> Sql:
        if c.dimension.level == "visit":
            return compile_condition(c, c.dimension.visit_expr())
        return Sql(f"bool_or({flag_names[id(c)]})")

    columns = "".join(f", {column} AS {name}" for name, column in visit.items())
    picked = Sql.join([Sql("e.ik")] + [compile_condition(c, c.dimension.event_expr()) + f" AS f_{i}"
                                       for i, c in enumerate(flags)])

    def join(lo: object, hi: object, only: bool, since: datetime | None = None,
             ending: Sql | None = None) -> Sql:
        return ("SELECT " + picked + "".join(f", s.{v}" for v in visit)
                + f" , s.vid0, s.start_time FROM (SELECT *, {ident} FROM {events}) e JOIN ("
                + Sql(f"SELECT visitor_keys[1] AS vid0, unnest(visitor_keys) AS vid, start_time, end_time"
                      f"{columns} FROM (") + _sessions.with_end_time(sessions)
                + ") WHERE " + _sessions.reaching(lo, hi, since)
                + ("" if ending is None else " AND " + ending) + f") s ON {_sessions.BELONGS}"
                + (Sql(" WHERE e.timestamp >= ? AND e.timestamp < ?", (lo, hi)) if only else ""))

    if stored is None or not stored.serves(visit):
        joined = join(lower, upper, False)
    else:  # the stored days read, the others joined
        assert isinstance(lower, datetime) and isinstance(upper, datetime)
        joined = Sql.join([
            "SELECT " + picked + "".join(f", e.{v}" for v in visit) + " , e.s_vk0 AS vid0, e.s_start AS "
            f"start_time FROM (SELECT *, {ident} FROM " + stored.rows(lower, upper) + ") e",
            *(join(run.lower, run.upper, True, stored.since(run.lower), run.sessions())
              for run in stored.outside(lower, upper))],
            " UNION ALL ")
    if not flags:  # a session's visit columns are on each of its rows: no need to group them
        return [("joined", joined), ("keep", "SELECT DISTINCT ik FROM joined WHERE "
                                     + compile_tree(filters, leaf))]
    group = ", ".join(["vid0", "start_time", *visit])
    matched = "SELECT vid0, start_time FROM joined GROUP BY " + group + " HAVING " + compile_tree(
        filters, leaf)
    return [("joined", joined), ("matched", matched),
            ("keep", Sql("SELECT DISTINCT ik FROM joined JOIN matched USING (vid0, start_time)"))]


def actor_selection(what: str, filters: Any, sessions: Sql | None, site: str, lower: object,
                    upper: object, stored: Attributed | None = None) -> tuple[list[tuple[str, Sql]], Sql]:
    """For retention and flow (identity :data:`ACTOR_KEY`): the CTEs ``inrange`` (the site's events in
    ``[lower, upper)``) … ``keep`` (``stored``: as in :func:`keep_ctes`), and `` AND <the event's
    identity is kept>``; nothing without filters.

    Raises:
        ValueError: filters without ``sessions``.
    """
    if filters is None:
        return [], Sql("")
    if sessions is None:
        raise ValueError(f"a filtered {what} reads sessions: pass their relation")
    key = ACTOR_KEY.format(p="")
    inrange = Sql("SELECT " + needs(("visitor_id", "user_id", "timestamp"), filters) + " FROM events "
                  "WHERE site_id = ? AND timestamp >= ? AND timestamp < ?", (site, lower, upper))
    ctes = [("inrange", inrange),
            *keep_ctes(filters, sessions, lower, upper, events="inrange", ident=key + " AS ik",
                       stored=stored)]
    return ctes, Sql(f" AND {key} IN (SELECT ik FROM keep)")


def read_selected(access: Access, site: str, rng: DateRange, filters: Any,
                  compile_sql: Callable[[Query, Sql, Sql | None, Attributed | None], Sql], *,
                  history: bool = False) -> pa.Table:
    """The rows of a behavioural analysis: build the query (validating ``site`` and parsing ``filters``),
    read the range's partitions (with ``history``, every partition up to the range's end) and run
    ``compile_sql(query, events, sessions, stored)`` there, ``events`` being the read events with their
    computed columns, ``sessions`` and ``stored`` as :func:`run_selected` passes them."""
    query = build(site, rng, filters=filters)
    first, last = rng.partition_dates()
    with access.reading(query.site_id, None if history else first, last) as reader:
        src, src_params = reader.source()
        source = with_computed(Sql(src, tuple(src_params)))
        return run_selected(access, reader, query.site_id, rng, query.filters,
                            lambda sessions, stored: compile_sql(query, source, sessions, stored))


def run_selected(access: Access, reader: Reader, site: str, rng: DateRange, filters: Any,
                 compile_sql: Callable[[Sql | None, Attributed | None], Sql]) -> pa.Table:
    """Run ``compile_sql(sessions, stored)`` on ``reader``: with filters, ``sessions`` is the stored
    session rows' relation and ``stored`` the range's stored attributed events (else both None); an
    unreadable stored file is discarded and the query run again from the events."""
    def attempt(stored: bool, read: list[str]) -> pa.Table:
        rows = None if filters is None else access.sessions(reader, site, rng, stored)
        attributed = None if filters is None or not stored else access.attributed(reader, site, *rng.bounds())
        if attributed is not None and rows is not None:
            attributed = replace(attributed, reaching=rows.reaching)
        read.extend([*(rows.files if rows else ()), *(attributed.files if attributed else ())])
        sql = compile_sql(None if rows is None else rows.relation(), attributed)
        return reader.execute(sql.text, sql.params)

    return stored_or_events(attempt, access.discard)


def needs(names: Sequence[str], filters: Any) -> str:
    """``"c1", "c2", …``: the quoted, sorted union of ``names`` and the columns ``filters`` read."""
    return ", ".join(f'"{c}"' for c in sorted(set(names) | filter_columns(filters)))
