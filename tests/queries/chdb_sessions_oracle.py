"""ClickHouse (chdb) reference for sessions (§5.1), run on a lake's own Parquet files.

Window-function sessions written independently of mallard: per actor, events ordered by microsecond
timestamp, ``lagInFrame`` flags an event more than the gap after the previous one, and a running sum over
a ``RANGE`` frame numbers the sessions (equal timestamps are peers, so they never split). The actor is
the smallest ``visitor_id_prev`` seen on that visitor id's events in scope, else the visitor id: one link
of mallard's chain, enough for the generated clickstreams, which never chain two salt changes (the
hand case test_session_across_two_midnights covers chains). Entry and exit pages are the session's first
and last pageview by ``(timestamp, pathname)`` (``ROW_NUMBER``); the entry and exit hostnames are those
pageviews' hosts (ties by hostname, a NULL host ranking after every other). Every value is bound as a
ClickHouse query parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import chdb

from .chdb_flow_oracle import lake_glob

_SESSIONS = """
WITH scoped AS (
    SELECT site_id, visitor_id, visitor_id_prev, event_name = 'pageview' AS is_pv, pathname, hostname,
           toInt64(toUnixTimestamp64Micro(timestamp)) AS ts_us
    FROM file({glob:String}, Parquet)
    WHERE has(splitByChar(',', {sites:String}), site_id)
),
prev AS (
    SELECT site_id AS sid, visitor_id AS vid, min(visitor_id_prev) AS prev
    FROM scoped WHERE visitor_id_prev IS NOT NULL GROUP BY site_id, visitor_id
),
actors AS (
    SELECT s.site_id AS site_id, s.ts_us AS ts_us, s.is_pv AS is_pv, s.pathname AS pathname,
           s.hostname AS hostname, coalesce(p.prev, s.visitor_id) AS actor
    FROM scoped AS s LEFT JOIN prev AS p ON s.site_id = p.sid AND s.visitor_id = p.vid
),
flagged AS (
    SELECT *, if(ts_us - lagInFrame(ts_us, 1, ts_us) OVER (
                     PARTITION BY site_id, actor ORDER BY ts_us
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) > {gap_us:Int64}, 1, 0) AS new_sess
    FROM actors
),
numbered AS (
    SELECT *, sum(new_sess) OVER (
                  PARTITION BY site_id, actor ORDER BY ts_us
                  RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess
    FROM flagged
),
ranked AS (
    SELECT *,
           ROW_NUMBER() OVER (PARTITION BY site_id, actor, sess, is_pv
                              ORDER BY ts_us ASC, pathname ASC, hostname ASC NULLS LAST) AS rn_first,
           ROW_NUMBER() OVER (PARTITION BY site_id, actor, sess, is_pv
                              ORDER BY ts_us DESC, pathname DESC, hostname DESC NULLS FIRST)
                              AS rn_last
    FROM numbered
),
all_sessions AS (
    SELECT site_id, actor, sess, min(ts_us) AS start_us, max(ts_us) - min(ts_us) AS dur_us,
           countIf(is_pv) AS pv,
           anyIf(toNullable(pathname), is_pv AND rn_first = 1) AS entry_page,
           anyIf(toNullable(pathname), is_pv AND rn_last = 1) AS exit_page,
           anyIf(toNullable(hostname), is_pv AND rn_first = 1) AS entry_host,
           anyIf(toNullable(hostname), is_pv AND rn_last = 1) AS exit_host
    FROM ranked
    GROUP BY site_id, actor, sess
),
sessions AS (
    SELECT * FROM all_sessions
    WHERE start_us >= toUnixTimestamp64Micro({start:DateTime64(6, 'UTC')})
      AND start_us < toUnixTimestamp64Micro({end:DateTime64(6, 'UTC')})
)
"""

# One row per site with sessions: §5.1's figures and the visits per entry and exit page.
_FIGURES = """
SELECT site_id,
       count() AS total_sessions,
       avg(dur_us) / 1e6 AS avg_session_duration_secs,
       avg(pv) AS avg_pages_per_session,
       countIf(pv = 1) / count() AS bounce_rate,
       sumMap(map(ifNull(entry_page, '(unknown)'), toUInt64(1))) AS entry_pages,
       sumMap(map(ifNull(exit_page, '(unknown)'), toUInt64(1))) AS exit_pages,
       sumMap(map(ifNull(entry_host, '(unknown)'), toUInt64(1))) AS entry_hosts,
       sumMap(map(ifNull(exit_host, '(unknown)'), toUInt64(1))) AS exit_hosts
FROM sessions
GROUP BY site_id
SETTINGS join_use_nulls = 1, session_timezone = 'UTC'
"""

_ROWS = """
SELECT actor, sess, dur_us, pv, entry_page, exit_page FROM sessions ORDER BY site_id, actor, sess
SETTINGS join_use_nulls = 1, session_timezone = 'UTC'
"""


@dataclass(frozen=True)
class Session:
    actor: str
    duration_us: int
    pageviews: int
    entry_page: str | None
    exit_page: str | None


def _run(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    query: Callable[..., Any] = chdb.query  # chdb has no type hints
    out = query(sql, "JSONEachRow", params=params)
    text = out.data() if hasattr(out, "data") else str(out)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _params(data_dir: Path, sites: Sequence[str], start: datetime, end: datetime,
            gap_seconds: int) -> dict[str, Any]:
    return {"glob": lake_glob(data_dir), "sites": ",".join(sites),  # site ids have no commas
            "start": start.strftime("%Y-%m-%d %H:%M:%S.%f"), "end": end.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "gap_us": gap_seconds * 1_000_000}


@dataclass(frozen=True)
class Figures:
    """§5.1's figures of one site, and its visits per entry and exit page and their hostnames."""

    total_sessions: int = 0
    avg_session_duration_secs: float = 0.0
    avg_pages_per_session: float = 0.0
    bounce_rate: float = 0.0
    entry_pages: dict[str, int] = field(default_factory=dict)
    exit_pages: dict[str, int] = field(default_factory=dict)
    entry_hosts: dict[str, int] = field(default_factory=dict)
    exit_hosts: dict[str, int] = field(default_factory=dict)


def figures(data_dir: Path, sites: Sequence[str], start: datetime, end: datetime,
            gap_seconds: int = 1800) -> dict[str, Figures]:
    """site → its figures over events in ``[start, end)`` (naive UTC bounds); zeros without sessions."""
    rows = _run(_SESSIONS + _FIGURES, _params(data_dir, sites, start, end, gap_seconds))
    by_site = {str(r["site_id"]): Figures(
        int(r["total_sessions"]), float(r["avg_session_duration_secs"]), float(r["avg_pages_per_session"]),
        float(r["bounce_rate"]), {str(k): int(v) for k, v in r["entry_pages"].items()},
        *({str(k): int(v) for k, v in r[key].items()}
          for key in ("exit_pages", "entry_hosts", "exit_hosts"))) for r in rows}
    return {site: by_site.get(site, Figures()) for site in sites}


def sessions(data_dir: Path, site: str, start: datetime, end: datetime,
             gap_seconds: int = 1800) -> list[Session]:
    """Every session of ``site``, ordered by actor and start (to diagnose a mismatch)."""
    rows = _run(_SESSIONS + _ROWS, _params(data_dir, [site], start, end, gap_seconds))
    return [Session(str(r["actor"]), int(r["dur_us"]), int(r["pv"]), r["entry_page"], r["exit_page"])
            for r in rows]
