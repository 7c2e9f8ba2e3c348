"""A 30-day view's event-level panels in a time zone other than UTC, over the cached dashboard lake.

In another time zone a range starts and ends inside UTC days: the rollups (docs/storage.md#rollups)
serve its whole UTC days and the two partial end days are computed from events. Uses the lake
``bench_dashboard.py`` generates and caches (run that first), opened with ``mallard.open()``; prints per
query the first (cold) timing, the median of ``--runs`` more, and the first row, so that two trees can be
compared on the same lake: ``PYTHONPATH=<other tree> python benchmarks/bench_rollups_tz.py``.

Usage::

    python benchmarks/bench_rollups_tz.py --size 5m --timezone Europe/Berlin
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mallard

DATA = Path(__file__).resolve().parent / ".data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="5m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timezone", default="Europe/Berlin")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    lake = args.data / f"dashboard-{args.size}"
    if not (lake / "manifest.json").exists():
        raise SystemExit(f"{lake} has no lake: run bench_dashboard.py --sizes {args.size} first")
    manifest = json.loads((lake / "manifest.json").read_text())
    site, end = manifest["dominant_site"], date.fromisoformat(manifest["end_date"])
    rng: dict[str, Any] = {"start_date": end - timedelta(days=29), "end_date": end, "timezone": args.timezone}
    print(f"mallard from {os.path.dirname(mallard.__file__)}; load average "
          + "/".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    with mallard.open(lake) as q:
        queries = {"main": lambda: {"unique_visitors": q.main(site, **rng)["unique_visitors"]},
                   "pages": lambda: q.breakdown(site, "pages", **rng).rows[0],
                   "events": lambda: q.breakdown(site, "events", **rng).rows[0]}
        for name, run in queries.items():
            times = []
            for _ in range(args.runs + 1):
                t = time.perf_counter()
                first = run()
                times.append(time.perf_counter() - t)
            print(f"{name:7} first {times[0]:.3f} s  median {statistics.median(times[1:]):.3f} s  "
                  f"{str(first)[:100]}", flush=True)


if __name__ == "__main__":
    main()
