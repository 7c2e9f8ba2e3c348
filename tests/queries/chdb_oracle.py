"""ClickHouse (chdb) reference for funnels and sequences, run on a lake's own Parquet files.

Per identity, ``windowFunnel(window_us, 'strict_once')`` over microsecond timestamps (§5.2), and for
sequences the same with a window of ``end − start`` (§5.4). The identity follows mallard's rule, written
independently in ClickHouse SQL: the event's ``user_id`` where present, else its visitor id, replaced by
the ``visitor_id_prev`` seen on that visitor id's events in scope (the smallest, if several).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import chdb


def _step_condition(step: str, i: int) -> str:
    kind, _, _ = step.partition(":")
    if kind == "page":
        return f"(event_name = 'pageview' AND pathname = {{s{i}:String}})"
    return f"(event_name = {{s{i}:String}})"


def levels(data_dir: Path, site: str, lower: datetime, upper: datetime, steps: Sequence[str],
           window_us: int | None) -> dict[str, int]:
    """identity → funnel level for every identity with an event of ``site`` in ``[lower, upper)``.

    ``window_us=None`` means the whole range (sequence conversion).
    """
    params: dict[str, object] = {"site": site, "lo": lower.isoformat(sep=" "), "hi": upper.isoformat(sep=" ")}
    for i, step in enumerate(steps):
        params[f"s{i}"] = step.partition(":")[2]
    if window_us is None:
        window_us = int((upper - lower).total_seconds()) * 1_000_000
    conds = ", ".join(_step_condition(s, i) for i, s in enumerate(steps))
    sql = f"""
    WITH scoped AS (
        SELECT * FROM file('{data_dir}/events/**/*.parquet', Parquet)
        WHERE site_id = {{site:String}}
          AND timestamp >= toDateTime64({{lo:String}}, 6, 'UTC')
          AND timestamp < toDateTime64({{hi:String}}, 6, 'UTC')
    ),
    prev AS (
        SELECT visitor_id AS vid, min(visitor_id_prev) AS prev
        FROM scoped WHERE visitor_id_prev IS NOT NULL GROUP BY visitor_id
    )
    SELECT ident,
           windowFunnel({int(window_us)}, 'strict_once')(
               toUInt64(toUnixTimestamp64Micro(timestamp)), {conds}) AS level
    FROM (
        SELECT s.timestamp AS timestamp, s.event_name AS event_name, s.pathname AS pathname,
               if(s.user_id IS NOT NULL, concat('u:', assumeNotNull(s.user_id)),
                  concat('v:', coalesce(p.prev, s.visitor_id))) AS ident
        FROM scoped AS s LEFT JOIN prev AS p ON s.visitor_id = p.vid
    )
    GROUP BY ident
    SETTINGS join_use_nulls = 1
    """
    data = json.loads(str(chdb.query(sql, "JSONCompact", params=params)))  # type: ignore[no-untyped-call]
    return {str(ident): int(level) for ident, level in data["data"]}


def funnel_counts(levels_by_ident: dict[str, int], n_steps: int) -> list[int]:
    """Identities reaching at least step k, for k = 1..n."""
    return [sum(1 for lv in levels_by_ident.values() if lv >= k) for k in range(1, n_steps + 1)]
