"""Latency of the behavioural analyses against ClickHouse (chdb) over the same generated lakes.

For each size the lake is generated once (``generate.py``, cached under ``benchmarks/.data/<size>``: 30
days, 3 sites, the dominant site with ≈ 2/3 of the events) and opened with ``mallard.open(path)``. Every
analysis runs over the dominant site's 30 days, in mallard and in chdb (ClickHouse in-process, its native
functions over the lake's own Parquet files, ``file('<lake>/events/**/*.parquet', Parquet)``): a warm-up
run, then ``--repeat`` timed runs each, the two engines' runs alternating (mallard chdb, chdb mallard, …)
so that both see the same machine; the median and min wall time are printed, and the ratio of the
medians mallard / chdb. A measurement whose runs exceed ``--budget`` seconds in total stops early (at
least two timed runs), which bounds the 10M case on a small machine.

Analyses (the steps and page occur in the generated traffic; see ``traffic.py``):

* ``sessions``: ``q.sessions`` against behavioral-analytics.md §5.1 (``lagInFrame`` gap flag, running
  ``sum`` over a ``RANGE`` frame);
* ``funnel``: ``q.funnel(["page:/", "page:/pricing", "event:Signup"], window="1 hour")`` against
  ``windowFunnel(3600000000, 'strict_once')`` on microsecond timestamps (§5.2);
* ``sequences``: ``q.sequences(["page:/pricing", "page:/signup", "event:Signup"])`` against the same
  ``windowFunnel`` with a window of the whole range (§5.4);
* ``retention``: ``q.retention(weeks=4)`` against ``retention()`` per identity with first_seen cohorts
  (§5.3);
* ``flow``: ``q.flow("/")`` against ``sequenceNextNode('forward', 'first_match')`` over the per-identity
  rank of ``(timestamp, pathname)`` (§5.5).

Identities follow mallard's rules, written independently in ClickHouse SQL (as in
``tests/queries/chdb_oracle.py`` and ``chdb_flow_oracle.py``): sessions, funnels and sequences use the
``user_id`` where present, else the visitor id replaced by the smallest ``visitor_id_prev`` seen on it in
scope; retention and flow use ``(kind, coalesce(user_id, visitor_id))``. A sanity line per analysis and
size compares the numbers both engines return: ``agree`` or ``DISAGREE``. Target: mallard's median ≤
chdb's, per analysis; and sessions ≤ 0.6 s at 2M (when 2m is among the sizes).

Usage::

    python benchmarks/bench_behavioural.py                       # --sizes 1m,10m
    python benchmarks/bench_behavioural.py --sizes 1m,2m,10m --repeat 5 --budget 45
    python benchmarks/bench_behavioural.py --sizes 2m --only sessions,flow
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chdb
import generate
import traffic

import mallard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the differential tests' oracle
from tests.queries.chdb_flow_oracle import retention_sql  # the same §5.3 query

DATA = Path(__file__).resolve().parent / ".data"
FUNNEL_STEPS = ["page:/", "page:/pricing", "event:Signup"]
FUNNEL_WINDOW_S = 3600
SEQUENCE_STEPS = ["page:/pricing", "page:/signup", "event:Signup"]
RETENTION_WEEKS = 4
FLOW_PAGE = "/"
FLOW_LIMIT = 10
SESSIONS_TARGET_2M = 0.6
ANALYSES = ("sessions", "funnel", "sequences", "retention", "flow")

# -- ClickHouse formulations --------------------------------------------------------------------------
# Scoped events with mallard's session actor: the visitor id replaced by the smallest visitor_id_prev
# seen on it in scope (§ sessions.py), and the funnel identity (user_id where present, else the actor).
_SCOPED = """
    scoped AS (
        SELECT * FROM file({glob:String}, Parquet)
        WHERE site_id = {site:String}
          AND timestamp >= {lo:DateTime64(6, 'UTC')} AND timestamp < {hi:DateTime64(6, 'UTC')}
    ),
    prev AS (
        SELECT visitor_id AS vid, min(visitor_id_prev) AS prev
        FROM scoped WHERE visitor_id_prev IS NOT NULL GROUP BY visitor_id
    ),
    acted AS (
        SELECT s.timestamp AS timestamp, s.event_name AS event_name, s.pathname AS pathname,
               coalesce(p.prev, s.visitor_id) AS actor,
               if(s.user_id IS NOT NULL, concat('u:', assumeNotNull(s.user_id)),
                  concat('v:', coalesce(p.prev, s.visitor_id))) AS ident
        FROM scoped AS s LEFT JOIN prev AS p ON s.visitor_id = p.vid
    )"""

CH_SESSIONS = f"""
WITH {_SCOPED},
flagged AS (
    SELECT actor, toInt64(toUnixTimestamp64Micro(timestamp)) AS ts_us, event_name = 'pageview' AS is_pv,
           if(ts_us - lagInFrame(ts_us, 1, ts_us) OVER (
                  PARTITION BY actor ORDER BY ts_us ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
              > {{gap_us:Int64}}, 1, 0) AS new_sess
    FROM acted
),
numbered AS (
    SELECT *, sum(new_sess) OVER (PARTITION BY actor ORDER BY ts_us
                                  RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess
    FROM flagged
),
sessions AS (
    SELECT actor, sess, max(ts_us) - min(ts_us) AS dur_us, countIf(is_pv) AS pv
    FROM numbered GROUP BY actor, sess
)
SELECT count() AS total_sessions, ifNull(avg(dur_us) / 1e6, 0) AS avg_session_duration_secs,
       ifNull(avg(pv), 0) AS avg_pages_per_session,
       if(count() = 0, 0, countIf(pv = 1) / count()) AS bounce_rate
FROM sessions
SETTINGS join_use_nulls = 1, session_timezone = 'UTC'
"""


def _step_condition(step: str, i: int) -> str:
    kind, _, _ = step.partition(":")
    if kind == "page":
        return f"(event_name = 'pageview' AND pathname = {{s{i}:String}})"
    return f"(event_name = {{s{i}:String}})"


def ch_levels(steps: list[str]) -> str:
    """Level histogram (level, identities) of ``windowFunnel(window_us, 'strict_once')``."""
    conds = ", ".join(_step_condition(s, i) for i, s in enumerate(steps))
    return f"""
WITH {_SCOPED}
SELECT level, count() AS identities
FROM (
    SELECT ident, windowFunnel({{window_us:UInt64}}, 'strict_once')(
               toUInt64(toUnixTimestamp64Micro(timestamp)), {conds}) AS level
    FROM acted GROUP BY ident
)
GROUP BY level ORDER BY level
SETTINGS join_use_nulls = 1, session_timezone = 'UTC'
"""


_ACTOR = "if(isNull(user_id), 'v', 'u') AS kind, ifNull(user_id, visitor_id) AS actor"


CH_FLOW = f"""
SELECT next_page, count() AS visitors
FROM (
    SELECT kind, actor,
           sequenceNextNode('forward', 'first_match')(rk, path, toUInt8(1), toUInt8(path = {{page:String}}))
               AS next_page,
           countIf(path = {{page:String}}) > 0 AS at_page
    FROM (
        SELECT kind, actor, assumeNotNull(pathname) AS path,
               toUInt32(row_number() OVER (PARTITION BY kind, actor ORDER BY timestamp, pathname)) AS rk
        FROM (SELECT {_ACTOR}, timestamp, pathname, site_id, event_name FROM file({{glob:String}}, Parquet))
        WHERE site_id = {{site:String}} AND timestamp >= {{lo:DateTime64(6, 'UTC')}}
          AND timestamp < {{hi:DateTime64(6, 'UTC')}} AND event_name = 'pageview'
    )
    GROUP BY kind, actor
)
WHERE at_page
GROUP BY next_page
ORDER BY isNull(next_page), visitors DESC, next_page ASC
SETTINGS allow_experimental_funnel_functions = 1, session_timezone = 'UTC'
"""


def _rows(out: Any) -> list[list[str]]:
    text = out.data() if hasattr(out, "data") else str(out)
    return [row for row in csv.reader(io.StringIO(text)) if row]


def chdb_run(sql: str, params: dict[str, Any]) -> list[list[str]]:
    query: Callable[..., Any] = chdb.query  # chdb has no type hints
    return _rows(query(sql, "CSV", params=params))


# -- the analyses: (mallard call, chdb call, comparison) -------------------------------------------
def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


Compare = Callable[[Any, Any], tuple[bool, str]]


def analyses(q: mallard.Queries, glob: str, site: str, start: str, end: str
             ) -> list[tuple[str, Callable[[], Any], Callable[[], Any], Compare]]:
    rng = dict(start_date=start, end_date=end)
    lo = datetime.combine(date.fromisoformat(start), datetime.min.time())
    hi = datetime.combine(date.fromisoformat(end), datetime.min.time()) + timedelta(days=1)
    base = {"glob": glob, "site": site, "lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "hi": hi.strftime("%Y-%m-%d %H:%M:%S.%f")}
    range_us = int((hi - lo).total_seconds()) * 1_000_000

    def steps_params(steps: list[str], window_us: int) -> dict[str, Any]:
        return {**base, "window_us": window_us, **{f"s{i}": s.partition(":")[2] for i, s in enumerate(steps)}}

    def cmp_sessions(m: dict[str, Any], c: list[list[str]]) -> tuple[bool, str]:
        n, dur, pps, bounce = int(c[0][0]), float(c[0][1]), float(c[0][2]), float(c[0][3])
        ok = (m["total_sessions"] == n and _close(m["avg_session_duration_secs"], dur)
              and _close(m["avg_pages_per_session"], pps) and _close(m["bounce_rate"], bounce))
        return ok, (f"sessions {m['total_sessions']:,}/{n:,}, duration {m['avg_session_duration_secs']:.4f}/"
                    f"{dur:.4f} s, pages {m['avg_pages_per_session']:.4f}/{pps:.4f}, bounce "
                    f"{m['bounce_rate']:.6f}/{bounce:.6f}")

    def cmp_levels(n_steps: int) -> Callable[[Any, Any], tuple[bool, str]]:
        def cmp(m: dict[str, Any], c: list[list[str]]) -> tuple[bool, str]:
            hist = {int(level): int(count) for level, count in c}
            reached = [sum(v for lv, v in hist.items() if lv >= k) for k in range(1, n_steps + 1)]
            total = sum(hist.values())
            if "steps" in m and isinstance(m["steps"][0], dict):  # funnel
                mine = [s["visitors"] for s in m["steps"]]
                ok = mine == reached and m["total_visitors"] == total
                return ok, f"reached {mine}/{reached}, total {m['total_visitors']:,}/{total:,}"
            mine = [m["step1_visitors"], m["converting_visitors"]]
            theirs = [reached[0], reached[-1]]
            ok = mine == theirs and m["total_visitors"] == total
            return ok, (f"step 1 {mine[0]:,}/{theirs[0]:,}, converting {mine[1]:,}/{theirs[1]:,}, "
                        f"total {m['total_visitors']:,}/{total:,}")
        return cmp

    def cmp_retention(m: dict[str, Any], c: list[list[str]]) -> tuple[bool, str]:
        mine = [(co["cohort_date"], co["visitors"], list(co["retained"])) for co in m["cohorts"]]
        theirs = [(week, int(size), [int(x) for x in retained.strip("[]").split(",")][:RETENTION_WEEKS])
                  for week, size, retained in c]
        ok = mine == theirs
        return ok, (f"{len(mine)}/{len(theirs)} cohorts, members {sum(x[1] for x in mine):,}/"
                    f"{sum(x[1] for x in theirs):,}, retained after week 0 "
                    f"{sum(sum(x[2][1:]) for x in mine):,}/{sum(sum(x[2][1:]) for x in theirs):,}")

    def cmp_flow(m: dict[str, Any], c: list[list[str]]) -> tuple[bool, str]:
        exits = sum(int(v) for page, v in c if page == "\\N")
        nexts = [(page, int(v)) for page, v in c if page != "\\N"]
        at_page = exits + sum(v for _, v in nexts)
        mine = [(n["next_page"], n["visitors"]) for n in m["next_pages"]]
        ok = (m["visitors_at_page"] == at_page and m["exits"] == exits and mine == nexts[:FLOW_LIMIT])
        return ok, (f"at page {m['visitors_at_page']:,}/{at_page:,}, exits {m['exits']:,}/{exits:,}, "
                    f"top {FLOW_LIMIT} next pages {'equal' if mine == nexts[:FLOW_LIMIT] else 'differ'} "
                    f"(first {mine[:1]}/{nexts[:1]})")

    fparams = steps_params(FUNNEL_STEPS, FUNNEL_WINDOW_S * 1_000_000)
    sparams = steps_params(SEQUENCE_STEPS, range_us)
    sessions_params = {**base, "gap_us": q.access.gap_seconds * 1_000_000}
    return [
        ("sessions", lambda: q.sessions(site, **rng), lambda: chdb_run(CH_SESSIONS, sessions_params),
         cmp_sessions),
        ("funnel", lambda: q.funnel(site, FUNNEL_STEPS, window=f"{FUNNEL_WINDOW_S} seconds", **rng),
         lambda: chdb_run(ch_levels(FUNNEL_STEPS), fparams), cmp_levels(len(FUNNEL_STEPS))),
        ("sequences", lambda: q.sequences(site, SEQUENCE_STEPS, **rng),
         lambda: chdb_run(ch_levels(SEQUENCE_STEPS), sparams), cmp_levels(len(SEQUENCE_STEPS))),
        ("retention", lambda: q.retention(site, weeks=RETENTION_WEEKS, **rng),
         lambda: chdb_run(retention_sql(RETENTION_WEEKS), {**base, "start": base["lo"], "end": base["hi"]}),
         cmp_retention),
        ("flow", lambda: q.flow(site, FLOW_PAGE, limit=FLOW_LIMIT, **rng),
         lambda: chdb_run(CH_FLOW, {**base, "page": FLOW_PAGE}), cmp_flow),
    ]


def timed_pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int, budget: float
               ) -> tuple[list[float], Any, list[float], Any]:
    """Wall seconds of each timed run of ``a`` and of ``b`` after one warm-up run of each, and their
    last results. The runs alternate (a b, b a, a b, …) so that both engines see the same machine:
    on a shared VM the speed drifts by several percent within a minute. Each engine stops early once
    its own runs exceed ``budget`` seconds (after at least two)."""
    out_a, out_b = a(), b()  # warm-up: file metadata, caches, imports
    runs: tuple[list[float], list[float]] = ([], [])
    fns = (a, b)
    results = [out_a, out_b]
    for i in range(repeat):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            done = len(runs[k]) >= 2 and sum(runs[k]) > budget
            if done:
                continue
            t = time.perf_counter()
            results[k] = fns[k]()
            runs[k].append(time.perf_counter() - t)
    return runs[0], results[0], runs[1], results[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,10m", help="comma-separated event counts (1m, 2m, 10m…)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sites", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed runs per engine and analysis (after a warm-up)")
    ap.add_argument("--budget", type=float, default=45.0,
                    help="stop timing after this many seconds of runs (at least 2 runs)")
    ap.add_argument("--only", default="", help=f"comma-separated analyses ({', '.join(ANALYSES)})")
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    args = ap.parse_args(argv)

    print(traffic.describe_machine())
    print(f"chdb {chdb.__version__} (ClickHouse {chdb_run('SELECT version()', {})[0][0]})")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    results: list[tuple[str, int, str, list[float], list[float]]] = []
    checks: list[tuple[str, str, bool, str]] = []
    wall = time.perf_counter()
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        events = generate.parse_count(label)
        path = args.data / label
        manifest = generate.generate(path, events=events, days=args.days, sites=args.sites, seed=args.seed)
        site, start, end = manifest["dominant_site"], manifest["start_date"], manifest["end_date"]
        site_events = manifest["sites"][site]["events"]
        q = mallard.open(path)
        glob = str(path.resolve() / "events" / "**" / "*.parquet")
        print(f"\n== {label}: {events:,} events, {site} has {site_events:,} "
              f"({manifest['files']} files), {start}..{end}", flush=True)
        for name, m_fn, c_fn, compare in analyses(q, glob, site, start, end):
            if only and name not in only:
                continue
            m_runs, m_out, c_runs, c_out = timed_pair(m_fn, c_fn, args.repeat, args.budget)
            results.append((label, site_events, name, m_runs, c_runs))
            m_med, c_med = statistics.median(m_runs), statistics.median(c_runs)
            print(f"  {name:10s} mallard median {m_med:7.3f} s min {min(m_runs):7.3f} s (n={len(m_runs)})  "
                  f"chdb median {c_med:7.3f} s min {min(c_runs):7.3f} s (n={len(c_runs)})  "
                  f"ratio {m_med / c_med:5.2f}", flush=True)
            try:
                ok, detail = compare(m_out, c_out)
            except Exception as exc:  # a shape we did not expect is a disagreement, not a crash
                ok, detail = False, f"could not compare: {exc!r}"
            checks.append((label, name, ok, detail))

    print(f"\n{'size':>5} {'site events':>12}  {'analysis':10s} {'mallard s':>9} {'min':>7} {'n':>2}  "
          f"{'chdb s':>8} {'min':>7} {'n':>2}  {'ratio':>5}  target")
    for label, site_events, name, m_runs, c_runs in results:
        m_med, c_med = statistics.median(m_runs), statistics.median(c_runs)
        verdict = f"≤ chdb {'ok' if m_med <= c_med else 'MISSED'}"
        if name == "sessions" and label == "2m":
            verdict += f"; ≤ {SESSIONS_TARGET_2M} s {'ok' if m_med <= SESSIONS_TARGET_2M else 'MISSED'}"
        print(f"{label:>5} {site_events:>12,}  {name:10s} {m_med:>9.3f} {min(m_runs):>7.3f} "
              f"{len(m_runs):>2}  {c_med:>8.3f} {min(c_runs):>7.3f} {len(c_runs):>2}  "
              f"{m_med / c_med:>5.2f}  {verdict}")
    print("\nSanity checks (mallard/chdb, dominant site's 30 days):")
    for label, name, ok, detail in checks:
        print(f"  {label:>4}  {name:10s} {'agree' if ok else 'DISAGREE'}: {detail}")
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s; load average now "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
