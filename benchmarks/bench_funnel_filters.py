"""A 30-day funnel over the cached dashboard lake, unfiltered and filtered by a visit attribute.

Uses the lake ``bench_dashboard.py`` generates and caches (``benchmarks/.data/dashboard-<size>``; run that
first) with its stored sessions, opened with ``mallard.open()``. Prints, per case, the median and min of
``--runs`` timings after a first (also printed) one, and the step counts, so that two trees can be
compared on the same lake: ``PYTHONPATH=<other tree> python benchmarks/bench_funnel_filters.py``.

Usage::

    python benchmarks/bench_funnel_filters.py --size 5m --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import mallard

DATA = Path(__file__).resolve().parent / ".data"
STEPS = ["page:/", "page:/pricing"]
CASES = {"unfiltered": None, "source=Google": [["is", "visit:source", ["Google"]]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="5m")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    lake = args.data / f"dashboard-{args.size}"
    if not (lake / "manifest.json").exists():
        raise SystemExit(f"{lake} has no lake: run bench_dashboard.py --sizes {args.size} first")
    print(f"mallard from {os.path.dirname(mallard.__file__)}; load average "
          + "/".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    manifest = json.loads((lake / "manifest.json").read_text())
    end = date.fromisoformat(manifest["end_date"])
    start = end - timedelta(days=29)
    site = manifest["dominant_site"]
    with mallard.open(lake) as q:
        for label, filters in CASES.items():
            times = []
            for _ in range(args.runs + 1):
                t = time.perf_counter()
                r = q.funnel(site, STEPS, window="1 hour", start_date=start, end_date=end, filters=filters)
                times.append(time.perf_counter() - t)
            print(f"{label:14} median {statistics.median(times[1:]):.3f} s  min {min(times[1:]):.3f} s  "
                  f"first {times[0]:.3f} s  steps {[s['visitors'] for s in r['steps']]}  "
                  f"total {r['total_visitors']}", flush=True)


if __name__ == "__main__":
    main()
