"""Query latency of the report presets over generated lakes of 1M, 2M and 10M events.

For each size the lake is generated once (``generate.py``, cached under ``benchmarks/.data/<size>``: 30
days, 3 sites, the dominant site with ≈ 2/3 of the events), opened with ``mallard.open(path)`` as a
notebook or a read-only worker would, and every query runs over the dominant site's 30 days: a warm-up
run, then ``--repeat`` timed runs: the median and min wall time are printed, and the median process CPU
time (DuckDB's threads included; the figure that other load on the machine disturbs least). A query whose
runs exceed ``--budget`` seconds in total stops early (at least two timed runs), which keeps the 10M case
within minutes on a small machine; the ``n`` column says how many runs were timed.

Queries: ``main`` (visitors, pageviews, events, sessions, bounce rate, duration), ``timeseries`` (daily
visitors and pageviews), ``breakdown`` of pages, sources, browsers, countries and entry pages (top 10),
and ``query`` with a page filter (``contains event:page /blog``) by ``visit:source`` with visitors and
bounce rate. Targets (at 2M events): main ≤ 0.6 s, simple breakdowns (pages, browsers, countries) ≤ 0.3 s.

Correctness is checked too: visitors, pageviews and events of ``main`` against plain DuckDB SQL over the
same Parquet files, and sessions and bounces against the totals the generator recorded.

Usage::

    python benchmarks/bench_queries.py                          # --sizes 1m,2m,10m
    python benchmarks/bench_queries.py --sizes 2m --repeat 9 --explain main
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import generate
import traffic

import mallard

DATA = Path(__file__).resolve().parent / ".data"
# (query, size label) → target seconds for the median
TARGETS: dict[tuple[str, str], float] = {
    ("main", "2m"): 0.6,
    ("breakdown pages", "2m"): 0.3,
    ("breakdown browsers", "2m"): 0.3,
    ("breakdown countries", "2m"): 0.3,
}
FILTERED = dict(metrics=["visitors", "bounce_rate"], dimensions=["visit:source"],
                filters=[["contains", "event:page", ["/blog"]]])


def queries(q: mallard.Queries, site: str, start: str, end: str) -> list[tuple[str, Callable[[], Any]]]:
    rng = dict(start_date=start, end_date=end)
    out: list[tuple[str, Callable[[], Any]]] = [
        ("main", lambda: q.main(site, **rng)),
        ("timeseries", lambda: q.timeseries(site, **rng)),
    ]
    for name in ("pages", "sources", "browsers", "countries", "entry-pages"):
        out.append((f"breakdown {name}", lambda name=name: q.breakdown(site, name, **rng)))
    out.append(("query filter+source", lambda: q.query(site, **FILTERED, **rng)))
    return out


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process, DuckDB's included
    return ru.ru_utime + ru.ru_stime


def timed(fn: Callable[[], Any], repeat: int, budget: float) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds) of each timed run, after one warm-up run."""
    fn()  # warm-up: file metadata, DuckDB caches, Python imports
    runs: list[tuple[float, float]] = []
    while len(runs) < repeat:
        c, t = _cpu(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t, _cpu() - c))
        if len(runs) >= 2 and sum(w for w, _ in runs) > budget:
            break
    return runs


def sanity(q: mallard.Queries, path: Path, manifest: dict[str, Any], site: str, start: str,
           end: str) -> list[str]:
    """Compare main() with plain DuckDB over the Parquet files and with the generator's totals."""
    stats = q.main(site, start_date=start, end_date=end)
    files = str(path / "events" / f"site_id={site}" / "*" / "*.parquet")
    con = duckdb.connect()
    visitors, pageviews, events = con.execute(
        "SELECT count(DISTINCT visitor_id), count(*) FILTER (WHERE event_name = 'pageview'), count(*) "
        "FROM read_parquet(?) WHERE timestamp >= CAST(? AS DATE) "
        "AND timestamp < CAST(? AS DATE) + INTERVAL 1 DAY", [files, start, end]).fetchone()
    expected = manifest["sites"][site]
    bounce = expected["bounces"] / expected["sessions"]
    checks = [
        ("unique_visitors", stats.unique_visitors, visitors, "DuckDB SQL"),
        ("total_pageviews", stats.total_pageviews, pageviews, "DuckDB SQL"),
        ("total_events", stats.total_events, events, "DuckDB SQL"),
        ("total_sessions", stats.total_sessions, expected["sessions"], "generator"),
        ("bounce_rate", round(stats.bounce_rate, 6), round(bounce, 6), "generator"),
    ]
    return [f"{name:16s} mallard {got:>12,} | {source:10s} {want:>12,}  "
            f"{'agree' if got == want else 'DISAGREE'}" for name, got, want, source in checks]


def explain(q: mallard.Queries, site: str, start: str, end: str, which: str) -> str:
    """DuckDB's profile of a query compiled the way Queries runs it (uses mallard internals): totals
    and the operators that took the most time (operator timings are summed over threads)."""
    import json
    import tempfile

    from mallard._queries.builder import compile_query
    from mallard._queries.model import build
    from mallard._queries.registry import dimension
    from mallard._queries.sql import Sql

    rng = q.date_range(site, None, start, end)
    if which == "main":
        query = build(site, rng, metrics=["visitors", "pageviews", "events", "visits", "bounce_rate",
                                          "visit_duration", "views_per_visit"])
    elif which.startswith("query"):
        query = build(site, rng, **FILTERED)  # type: ignore[arg-type]
    else:
        dim = which.removeprefix("breakdown ").strip()
        query = build(site, rng, metrics=["visitors", "pageviews"], dimensions=[dimension(dim).name],
                      order_by=[["visitors", "desc"]], limit=10)
    first, last = query.date_range.partition_dates()
    with tempfile.TemporaryDirectory() as tmp, q.access.reading(site, first, last) as reader:
        out = Path(tmp) / "profile.json"
        src, params = reader.source()
        compiled = compile_query(query, source=Sql(src, tuple(params)), gap_seconds=q.access.gap_seconds)
        con = reader._con
        con.execute("SET enable_profiling = 'json'")
        con.execute(f"SET profiling_output = '{out}'")
        try:
            con.sql(compiled.sql.text, params=list(compiled.sql.params)).fetchall()
        finally:
            con.execute("PRAGMA disable_profiling")
        profile = json.loads(out.read_text())
    ops: list[tuple[float, str, int, str]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        info = node.get("extra_info") or {}
        detail = "; ".join(f"{k}: {v}" for k, v in info.items()
                           if k not in ("Estimated Cardinality", "Filename(s)"))
        ops.append((float(node.get("timing", 0.0)), node.get("name", "?"),
                    int(node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0),
                    detail.replace("\n", " ")[:150]))
        for child in node.get("children", []):
            walk(child, depth + 1)

    for root in profile.get("operator", profile.get("children", [])):
        walk(root, 0)
    qinfo = profile.get("query", profile)
    nan = float("nan")
    lines = [f"SQL: {compiled.sql.text}",
             f"total {qinfo.get('total_time', nan):.3f} s, cpu {qinfo.get('cpu_time', nan):.3f} s, "
             f"planner {profile.get('planner', {}).get('total_time', nan):.3f} s; top operators:"]
    for timing, name, rows, detail in sorted(ops, reverse=True)[:12]:
        lines.append(f"  {timing:8.3f} s  {name:22s} {rows:>12,} rows  {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,2m,10m", help="comma-separated event counts (1m, 2m, 500k…)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sites", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per query (after one warm-up)")
    ap.add_argument("--budget", type=float, default=45.0,
                    help="stop timing a query after this many seconds of runs (at least 2 runs)")
    ap.add_argument("--only", default="", help="comma-separated query names to run (default: all)")
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    ap.add_argument("--explain", default="", metavar="QUERY",
                    help="print EXPLAIN ANALYZE of main, query or 'breakdown <name>' at each size")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's)")
    args = ap.parse_args(argv)

    print(traffic.describe_machine())
    results: list[tuple[str, int, str, list[tuple[float, float]]]] = []
    checks: list[tuple[str, list[str]]] = []
    wall = time.perf_counter()
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        events = generate.parse_count(label)
        path = args.data / label
        manifest = generate.generate(path, events=events, days=args.days, sites=args.sites,
                                     seed=args.seed)
        site, start, end = manifest["dominant_site"], manifest["start_date"], manifest["end_date"]
        site_events = manifest["sites"][site]["events"]
        options: dict[str, Any] = {"duckdb_threads": args.threads} if args.threads else {}
        q = mallard.open(path, **options)
        print(f"\n== {label}: {events:,} events, {site} has {site_events:,} "
              f"({manifest['files']} files), {start}..{end}", flush=True)
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        for name, fn in queries(q, site, start, end):
            if only and name not in only:
                continue
            runs = timed(fn, args.repeat, args.budget)
            results.append((label, site_events, name, runs))
            print(f"  {name:22s} median {statistics.median(w for w, _ in runs):7.3f} s  "
                  f"min {min(w for w, _ in runs):7.3f} s  "
                  f"cpu {statistics.median(c for _, c in runs):7.3f} s  (n={len(runs)})", flush=True)
        checks.append((label, sanity(q, path, manifest, site, start, end)))
        if args.explain:
            print(f"\nEXPLAIN ANALYZE {args.explain} ({label}):")
            print(explain(q, site, start, end, args.explain))

    print(f"\n{'size':>5} {'site events':>12}  {'query':22s} {'median s':>9} {'min s':>8} {'cpu s':>8} "
          f"{'n':>2}  target")
    for label, site_events, name, runs in results:
        med = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        target = TARGETS.get((name, label))
        verdict = "" if target is None else f"≤ {target:.1f} {'ok' if med <= target else 'MISSED'}"
        print(f"{label:>5} {site_events:>12,}  {name:22s} {med:>9.3f} {min(w for w, _ in runs):>8.3f} "
              f"{cpu:>8.3f} {len(runs):>2}  {verdict}")
    print("\nSanity checks (main() over the dominant site's 30 days):")
    for label, lines in checks:
        for line in lines:
            print(f"  {label:>4}  {line}")
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s; load average now "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
