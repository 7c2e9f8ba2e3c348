"""One dashboard view over 30 days of one dominant site at 1M/5M/10M events, next to ClickHouse (chdb).

For each size a lake is generated once (``generate.py``, cached under
``benchmarks/.data/dashboard-<size>``: ONE site over 42 days) and opened with ``mallard.open(path)``.
Every query the dashboard sends for a 30-day view (``mallard/static/dashboard/app.js``) runs over the
last 30 days, in mallard and in chdb (ClickHouse in-process, over the lake's own Parquet files): a
warm-up run, then ``--runs`` timed runs each, the two engines alternating as in
``bench_behavioural.py``. Printed: the median and min wall time per query and engine, and the view's
total (per run, the sum of the queries one dashboard load sends: main, sessions, timeseries and the first
tab of each breakdown panel: pages, sources, countries, browsers, events). The other tabs (entry and
exit pages, referrers, UTM, regions, cities, OS, devices) are timed too, one click each.

The whole set runs twice: unfiltered, and filtered by a visit attribute (``visit:source is Google``).
With ``--cold`` every mallard run opens the lake afresh (``mallard.open()``), so that nothing computed in
memory by an earlier run (the rows of days not stored, the rollups' day-locality check) is reused, as in
a worker that just started.

Before timing, the lake's sessions and rollups are stored (``Mallard.build_sessions()``, as a server's
maintenance does; cached with the lake) and the time it took and their bytes next to the events' are
printed. ``--raw`` removes them first, to time mallard computing everything from events as before.

ClickHouse computes the same figures from the raw events, written independently from mallard's
definitions (``mallard/_queries/registry.py``, ``sessions.py`` and docs/storage.md#sessions): sessions of
the site's whole history split after a gap of more than 30 minutes per actor (the visitor id replaced by
the smallest ``visitor_id_prev`` seen on it), those starting in the range kept; visit attributes from
the session's first event (pageviews first on equal timestamps, then by pathname); entry and exit pages
the first and last pageview; visitors ``uniqExact(visitor_id)`` of the range's events, or of the ids of
the kept sessions when a figure is summed per session; events by a visit attribute take their session's;
breakdown rows ordered by visitors, pageviews, value, top 10, a missing value as ``(unknown)``. A sanity
line per query compares the numbers: ``agree`` or ``DISAGREE``.

Also printed: the lake's bytes (Parquet files), the load average before each size. Targets (issue 9, at
5M events): each query ≤ 0.4 s, the view ≤ 2 s, the filtered view ≤ 3 s; at 10M the view ≤ 4 s.

Usage::

    python benchmarks/bench_dashboard.py                       # --sizes 1m,5m --runs 3
    python benchmarks/bench_dashboard.py --sizes 10m --runs 5
    python benchmarks/bench_dashboard.py --sizes 1m --only main,sessions,sources --no-filter
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
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
from bench_behavioural import chdb_run, timed_pair

import mallard

DATA = Path(__file__).resolve().parent / ".data"
DAYS = 42  # the lake: ~6 weeks
VIEW_DAYS = 30  # the dashboard's range
FILTER_SOURCE = "Google"
# What one dashboard load requests (the first tab of each breakdown panel), then the other tabs.
VIEW = ("main", "sessions", "timeseries", "pages", "sources", "countries", "browsers", "events")
TABS = ("entry-pages", "exit-pages", "referrers", "utm-sources", "utm-mediums", "utm-campaigns",
        "regions", "cities", "os", "devices")
QUERY_TARGET_5M = 0.4
VIEW_TARGETS = {("5m", False): 2.0, ("5m", True): 3.0, ("10m", False): 4.0}

# breakdown slug → (lake column, level): "event" groups events by their own value (event dimensions, and
# client attributes that cannot change within a session), "visit" by their session's value.
COLUMNS: dict[str, tuple[str, str]] = {
    "pages": ("pathname", "event"), "events": ("event_name", "event"),
    "countries": ("country_code", "event"), "regions": ("region", "event"), "cities": ("city", "event"),
    "browsers": ("browser", "event"), "os": ("os", "event"), "devices": ("device_type", "event"),
    "sources": ("referrer_source", "visit"), "referrers": ("referrer", "visit"),
    "utm-sources": ("utm_source", "visit"), "utm-mediums": ("utm_medium", "visit"),
    "utm-campaigns": ("utm_campaign", "visit"),
    "entry-pages": ("entry_page", "visit"), "exit-pages": ("exit_page", "visit"),
}
_ATTRIBUTES = ("referrer_source", "referrer", "utm_source", "utm_medium", "utm_campaign")

# -- ClickHouse formulation -----------------------------------------------------------------------------
_FIRST = "(ts_us, NOT is_pv, pathname)"  # a session's first event: pageviews first on equal timestamps
_SESSIONS = f"""
    scoped AS (
        SELECT visitor_id, visitor_id_prev, event_name, event_name = 'pageview' AS is_pv, pathname,
               toInt64(toUnixTimestamp64Micro(timestamp)) AS ts_us, {{cols}},
               timestamp >= {{lo:DateTime64(6, 'UTC')}} AND timestamp < {{hi:DateTime64(6, 'UTC')}}
                   AS in_range
        FROM file({{glob:String}}, Parquet)
        WHERE site_id = {{site:String}}
    ),
    prev AS (
        SELECT visitor_id AS vid, min(visitor_id_prev) AS prev
        FROM scoped WHERE visitor_id_prev IS NOT NULL GROUP BY visitor_id
    ),
    flagged AS (
        SELECT *, if(ts_us - lagInFrame(ts_us, 1, ts_us) OVER (
                         PARTITION BY actor ORDER BY ts_us ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                     > {{gap_us:Int64}}, 1, 0) AS new_sess
        FROM (SELECT s.*, coalesce(p.prev, s.visitor_id) AS actor
              FROM scoped AS s LEFT JOIN prev AS p ON s.visitor_id = p.vid)
    ),
    numbered AS (
        SELECT *, sum(new_sess) OVER (PARTITION BY actor ORDER BY ts_us
                                      RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess
        FROM flagged
    ),
    sessions AS (
        SELECT actor, sess, min(ts_us) AS start_us, max(ts_us) - min(ts_us) AS dur_us,
               countIf(is_pv) AS pv, count() AS events, groupUniqArray(visitor_id) AS vids,
               if(pv = 0, NULL, argMinIf(pathname, (ts_us, pathname), is_pv)) AS entry_page,
               if(pv = 0, NULL, argMaxIf(pathname, (ts_us, pathname), is_pv)) AS exit_page,
               {", ".join(f"argMin(tuple({a}), {_FIRST[:-1]}, {a})).1 AS s_{a}" for a in _ATTRIBUTES)}
        FROM numbered GROUP BY actor, sess
    ),
    kept AS (SELECT * FROM sessions
             WHERE start_us >= toUnixTimestamp64Micro({{lo:DateTime64(6, 'UTC')}})
               AND start_us < toUnixTimestamp64Micro({{hi:DateTime64(6, 'UTC')}}) AND {{keep}}),
    ev AS (
        SELECT n.* FROM numbered AS n
        INNER JOIN (SELECT actor, sess FROM sessions WHERE {{keep}}) AS k
            ON n.actor = k.actor AND n.sess = k.sess
        WHERE n.in_range
    ),
    ranged AS (SELECT * FROM scoped WHERE in_range)"""
_SETTINGS = "SETTINGS join_use_nulls = 1, session_timezone = 'UTC'"
_SESSION_FIGURES = ("count() AS visits, ifNull(100 * avg(pv = 1), 0) AS bounce_rate, "
                    "ifNull(avg(dur_us) / 1e6, 0) AS visit_duration, ifNull(avg(pv), 0) AS views")


def ch_sql(name: str, filtered: bool) -> str:
    """The ClickHouse query answering the dashboard's ``name`` panel (a breakdown slug or main,
    sessions, timeseries), filtered by the session's source or not."""
    cols = sorted({c for c, level in COLUMNS.values() if level == "event"} - {"pathname", "event_name"}
                  | set(_ATTRIBUTES))
    keep = "s_referrer_source = {source:String}" if filtered else "1"
    head = "WITH " + _SESSIONS.replace("{cols}", ", ".join(cols)).replace("{keep}", keep)
    if not filtered:  # event figures straight from the scan, as mallard does without a filter
        events = "SELECT uniqExact(visitor_id) AS visitors, countIf(is_pv) AS pageviews, count() AS events " \
                 "FROM ranged"
    else:  # the kept sessions' events
        events = "SELECT length(groupUniqArrayArray(vids)), sum(pv), sum(events) FROM kept"
    rows = "ev" if filtered else "ranged"
    if name == "main":
        return (f"{head}\nSELECT * FROM ({events}) AS e "
                f"CROSS JOIN (SELECT {_SESSION_FIGURES} FROM kept) AS k {_SETTINGS}")
    if name == "sessions":
        return f"{head}\nSELECT {_SESSION_FIGURES} FROM kept {_SETTINGS}"
    if name == "timeseries":
        return (f"{head}\nSELECT toString(toDate(intDiv(ts_us, 1000000))) AS day, uniqExact(visitor_id), "
                f"countIf(is_pv) FROM {rows} GROUP BY day ORDER BY day {_SETTINGS}")
    column, level = COLUMNS[name]
    if level == "event":
        body = (f"SELECT ifNull({column}, '(unknown)') AS value, uniqExact(visitor_id) AS visitors, "
                f"countIf(is_pv) AS pageviews FROM {rows} GROUP BY value")
    else:
        session_col = column if column.endswith("_page") else f"s_{column}"
        body = (f"SELECT ifNull({session_col}, '(unknown)') AS value, length(groupUniqArrayArray(vids)) "
                f"AS visitors, sum(pv) AS pageviews FROM kept GROUP BY value")
    return f"{head}\n{body} ORDER BY visitors DESC, pageviews DESC, value ASC LIMIT 10 {_SETTINGS}"


# -- mallard, and answers in one shape ------------------------------------------------------------------
def mallard_call(q: mallard.Queries, site: str, name: str, rng: dict[str, str], filters: Any,
                 cold: Path | None = None) -> Callable[[], Any]:
    """One dashboard query on ``q``; with ``cold``, on a fresh ``mallard.open(cold)`` each time (nothing
    remembered in memory from an earlier run, as in a new worker)."""
    def ask(q: mallard.Queries) -> Any:
        if name == "main":
            return q.main(site, filters=filters, **rng)
        if name == "sessions":
            return q.sessions(site, filters=filters, **rng)
        if name == "timeseries":
            return q.timeseries(site, filters=filters, **rng)
        return q.breakdown(site, name, limit=10, filters=filters, **rng)

    if cold is None:
        return lambda: ask(q)

    def fresh() -> Any:
        with mallard.open(cold) as new:
            return ask(new)
    return fresh


def mallard_shape(name: str, out: Any) -> list[tuple[Any, ...]]:
    if name == "main":
        return [(out.unique_visitors, out.total_pageviews, out.total_events, out.total_sessions,
                 out.bounce_rate * 100, out.avg_visit_duration_secs, out.views_per_visit)]
    if name == "sessions":
        return [(out["total_sessions"], out["bounce_rate"] * 100, out["avg_session_duration_secs"],
                 out["avg_pages_per_session"])]
    if name == "timeseries":
        return [(str(r["date"]), r["visitors"], r["pageviews"]) for r in out.rows]
    return [(str(r["value"]), r["visitors"], r["pageviews"]) for r in out.rows]


def _like(mine: Any, text: str) -> Any:
    """ClickHouse's CSV field read as the type of mallard's value (a page or event may be "404")."""
    if isinstance(mine, bool) or not isinstance(mine, (int, float)):
        return text
    return int(text) if isinstance(mine, int) else float(text)


def agree(mine: list[tuple[Any, ...]], theirs: list[list[str]]) -> tuple[bool, str]:
    other = [tuple(_like(x, y) for x, y in zip(a, b, strict=False)) for a, b in zip(mine, theirs,
                                                                                   strict=False)]
    other += [tuple(row) for row in theirs[len(mine):]]
    ok = len(mine) == len(other) and all(
        len(a) == len(b) and all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) else x == y
            for x, y in zip(a, b, strict=True))
        for a, b in zip(mine, other, strict=True))
    first = mine[0] if mine else None
    return ok, f"{len(mine)}/{len(other)} rows, first {first}/{other[0] if other else None}"


def lake_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / "events").rglob("*.parquet"))


def prepare(path: Path, label: str, *, seed: int = 42, raw: bool = False,
            end_date: str | None = None) -> tuple[dict[str, Any], float, str]:
    """The ``dashboard-<size>`` lake at ``path`` (one site over ``DAYS`` days ending ``end_date``,
    generate.py's default when None), generated or reused, with its sessions and rollups stored
    (``Mallard.build_sessions()``, as a server's maintenance does) or, with ``raw``, removed. Returns
    the manifest, the seconds the lake took to be ready and a line saying what is stored."""
    t = time.perf_counter()
    events = generate.parse_count(label)
    manifest = (generate.generate(path, events=events, days=DAYS, sites=1, seed=seed) if end_date is None
                else generate.generate(path, events=events, days=DAYS, sites=1, seed=seed, end_date=end_date))
    built = time.perf_counter() - t
    if raw:
        shutil.rmtree(path / "sessions", ignore_errors=True)
        shutil.rmtree(path / "rollups", ignore_errors=True)
        return manifest, built, "sessions and rollups not stored (--raw)"
    t = time.perf_counter()
    m = mallard.Mallard(data_dir=path)  # not started: no buffer, no maintenance thread
    try:
        days = m.build_sessions(budget_secs=math.inf)
    finally:
        m.close()
    return manifest, built, f"sessions and rollups of {days} day(s) stored in {time.perf_counter() - t:.1f} s"


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,5m", help="comma-separated event counts (1m, 5m, 10m…)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine and query (after a warm-up)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--only", default="", help=f"comma-separated queries ({', '.join(VIEW + TABS)})")
    ap.add_argument("--no-filter", action="store_true", help="skip the filtered view")
    ap.add_argument("--cold", action="store_true",
                    help="time each mallard query on a fresh mallard.open() (nothing remembered in memory)")
    ap.add_argument("--raw", action="store_true",
                    help="delete the stored sessions first: mallard computes them from events")
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    args = ap.parse_args(argv)

    print(traffic.describe_machine())
    print(f"chdb {chdb.__version__} (ClickHouse {chdb_run('SELECT version()', {})[0][0]})")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    names = [n for n in (*VIEW, *TABS) if not only or n in only]
    # (size, filtered, name) → (mallard runs, chdb runs)
    results: dict[tuple[str, bool, str], tuple[list[float], list[float]]] = {}
    checks: list[tuple[str, bool, str, bool, str]] = []
    sizes: dict[str, tuple[int, int]] = {}
    wall = time.perf_counter()
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        print(f"\nload average before {label}: {load_average()}", flush=True)
        path = args.data / f"dashboard-{label}"
        manifest, built, stored_note = prepare(path, label, seed=args.seed, raw=args.raw)
        site, end = manifest["dominant_site"], date.fromisoformat(manifest["end_date"])
        start = end - timedelta(days=VIEW_DAYS - 1)
        rng = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        q = mallard.open(path)
        size = lake_bytes(path)
        in_view = q.main(site, **rng).total_events
        sizes[label] = (in_view, size)
        print(f"== {label}: {manifest['sites'][site]['events']:,} events of {site} over {DAYS} days "
              f"({manifest['files']} files, {size:,} bytes of Parquet; lake ready in {built:.1f} s); "
              f"view {start}..{end}: {in_view:,} events", flush=True)
        if not args.raw:
            for name, directory in (("sessions", path / "sessions"), ("rollups", path / "rollups")):
                stored_bytes = sum(f.stat().st_size for f in directory.rglob("*.parquet"))
                stored_note += (f"; {name} {stored_bytes:,} bytes ({100 * stored_bytes / size:.1f}% of "
                                "the events' bytes)")
        print(f"   {stored_note}", flush=True)
        lo = datetime.combine(start, datetime.min.time())
        hi = datetime.combine(end, datetime.min.time()) + timedelta(days=1)
        base = {"glob": str(path.resolve() / "events" / "**" / "*.parquet"), "site": site,
                "lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f"), "hi": hi.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "gap_us": q.access.gap_seconds * 1_000_000, "source": FILTER_SOURCE}
        for filtered in ([False] if args.no_filter else [False, True]):
            filters = [["is", "visit:source", [FILTER_SOURCE]]] if filtered else None
            for name in names:
                sql = ch_sql(name, filtered)
                m_runs, m_out, c_runs, c_out = timed_pair(
                    mallard_call(q, site, name, rng, filters, path if args.cold else None),
                    lambda sql=sql, base=base: chdb_run(sql, base),
                    args.runs, budget=math.inf)
                results[(label, filtered, name)] = (m_runs, c_runs)
                try:
                    ok, detail = agree(mallard_shape(name, m_out), c_out)
                except Exception as exc:  # a shape we did not expect is a disagreement, not a crash
                    ok, detail = False, f"could not compare: {exc!r}"
                checks.append((label, filtered, name, ok, detail))
                print(f"  {'filtered ' if filtered else ''}{name:14s} mallard median "
                      f"{statistics.median(m_runs):7.3f} s  chdb median {statistics.median(c_runs):7.3f} s"
                      f"  {'agree' if ok else 'DISAGREE'}", flush=True)

    print(f"\n{'size':>4} {'filter':>6}  {'query':14s} {'mallard s':>9} {'min':>7}  {'chdb s':>8} {'min':>7}"
          f"  {'ratio':>5}  target")
    for label in sizes:
        for filtered in (False, True):
            keyed = [(n, results[(label, filtered, n)]) for n in names if (label, filtered, n) in results]
            if not keyed:
                continue
            tag = "source" if filtered else "-"
            for name, (m_runs, c_runs) in keyed:
                m_med, c_med = statistics.median(m_runs), statistics.median(c_runs)
                verdict = ""
                if label == "5m" and not filtered:
                    verdict = f"≤ {QUERY_TARGET_5M} {'ok' if m_med <= QUERY_TARGET_5M else 'MISSED'}"
                print(f"{label:>4} {tag:>6}  {name:14s} {m_med:>9.3f} {min(m_runs):>7.3f}  {c_med:>8.3f} "
                      f"{min(c_runs):>7.3f}  {m_med / c_med:>5.2f}  {verdict}")
            view = [r for n, r in keyed if n in VIEW]
            if len(view) == len(VIEW):  # per run: the sum of one dashboard load's queries
                m_view = [sum(r[0][i] for r in view) for i in range(min(len(r[0]) for r in view))]
                c_view = [sum(r[1][i] for r in view) for i in range(min(len(r[1]) for r in view))]
                m_med, c_med = statistics.median(m_view), statistics.median(c_view)
                target = VIEW_TARGETS.get((label, filtered))
                verdict = "" if target is None else f"≤ {target} {'ok' if m_med <= target else 'MISSED'}"
                print(f"{label:>4} {tag:>6}  {'VIEW (8)':14s} {m_med:>9.3f} {min(m_view):>7.3f}  "
                      f"{c_med:>8.3f} {min(c_view):>7.3f}  {m_med / c_med:>5.2f}  {verdict}")
    print("\nLakes (Parquet bytes; the events of the 30-day view):")
    for label, (in_view, size) in sizes.items():
        print(f"  {label:>4}  {size:>14,} bytes  {in_view:>12,} events in view")
    print("\nSanity checks (mallard/chdb):")
    for label, filtered, name, ok, detail in checks:
        print(f"  {label:>4} {'source' if filtered else '-':>6}  {name:14s} {'agree' if ok else 'DISAGREE'}: "
              f"{detail}")
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
