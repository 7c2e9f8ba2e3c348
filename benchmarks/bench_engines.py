"""The same queries on mallard's two engines: DuckDB and ClickHouse (``engine="clickhouse"``, chdb).

For each size the dashboard lake of ``bench_dashboard.py`` is used (``benchmarks/.data/dashboard-<size>``:
one site over 42 days, its sessions, rollups and attributed events stored as a server's maintenance
does), opened twice: ``mallard.open(path)`` and ``mallard.open(path, engine="clickhouse")``. Every query
of a 30-day dashboard view (main, sessions, timeseries and the first tab of each panel), the same view
filtered by a visit attribute (``visit:source is Google``), and the behavioural analyses (funnel,
sequences, retention, flow) run on both: a warm-up run, then ``--runs`` timed runs each, the engines
alternating (``timed_pair`` of bench_behavioural.py). Printed per query: each engine's median and min
wall time, their ratio (ClickHouse / DuckDB) and whether the two answers are equal (``same``: floats to
1e-9, as the differential tests compare them, since sums of floats added in another order differ in
the last digits, DuckDB's own from one run to the next; or ``DIFFERENT``).

Usage::

    python benchmarks/bench_engines.py                     # --sizes 1m --runs 3
    python benchmarks/bench_engines.py --sizes 1m,10m --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import traffic
from bench_behavioural import timed_pair
from bench_dashboard import DATA, FILTER_SOURCE, VIEW, VIEW_DAYS, load_average, prepare

import mallard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.queries.dialect_check import same  # the differential tests' comparison

BEHAVIOURAL: dict[str, Callable[[mallard.Queries, str, dict[str, str]], Any]] = {
    "funnel": lambda q, site, rng: q.funnel(site, ["page:/", "page:/pricing", "event:Signup"],
                                            window="1 hour", **rng),
    "sequences": lambda q, site, rng: q.sequences(site, ["page:/pricing", "page:/signup", "event:Signup"],
                                                  **rng),
    "retention": lambda q, site, rng: q.retention(site, weeks=4, **rng),
    "flow": lambda q, site, rng: q.flow(site, "/", **rng),
}


def view_query(name: str, filters: Any) -> Callable[[mallard.Queries, str, dict[str, str]], Any]:
    def ask(q: mallard.Queries, site: str, rng: dict[str, str]) -> Any:
        if name == "main":
            return q.main(site, filters=filters, **rng)
        if name == "sessions":
            return q.sessions(site, filters=filters, **rng)
        if name == "timeseries":
            return q.timeseries(site, filters=filters, **rng)
        return q.breakdown(site, name, limit=10, filters=filters, **rng)
    return ask


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m", help="comma-separated event counts (1m, 10m…)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine and query (after a warm-up)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    args = ap.parse_args(argv)
    print(traffic.describe_machine())
    queries = {**{n: view_query(n, None) for n in VIEW},
               **{f"filtered {n}": view_query(n, [["is", "visit:source", [FILTER_SOURCE]]]) for n in VIEW},
               **BEHAVIOURAL}
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        path = args.data / f"dashboard-{label}"
        manifest, _, stored = prepare(path, label, seed=args.seed)
        site, end = manifest["dominant_site"], date.fromisoformat(manifest["end_date"])
        rng = {"start_date": (end - timedelta(days=VIEW_DAYS - 1)).isoformat(), "end_date": end.isoformat()}
        print(f"\n== {label}: {manifest['sites'][site]['events']:,} events of {site}; view "
              f"{rng['start_date']}..{rng['end_date']}; {stored}; load average {load_average()}", flush=True)
        print(f"{'query':22s} {'duckdb s':>9} {'min':>7} {'clickhouse s':>12} {'min':>7} {'ratio':>6}  "
              "answers")
        totals = [0.0, 0.0]
        with mallard.open(path) as duck, mallard.open(path, engine="clickhouse") as ch:
            for name, ask in queries.items():
                d_runs, d_out, c_runs, c_out = timed_pair(
                    lambda ask=ask, site=site, rng=rng: ask(duck, site, rng),
                    lambda ask=ask, site=site, rng=rng: ask(ch, site, rng), args.runs, budget=120)
                d, c = statistics.median(d_runs), statistics.median(c_runs)
                if name in VIEW:
                    totals[0] += d
                    totals[1] += c
                alike = same(d_out.to_dict(), c_out.to_dict())
                print(f"{name:22s} {d:9.3f} {min(d_runs):7.3f} {c:12.3f} {min(c_runs):7.3f} {c / d:6.2f}  "
                      f"{'same' if alike else 'DIFFERENT'}", flush=True)
        print(f"{'the unfiltered view':22s} {totals[0]:9.3f} {'':7s} {totals[1]:12.3f} {'':7s} "
              f"{totals[1] / totals[0]:6.2f}")
        print(f"load average after {label}: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
