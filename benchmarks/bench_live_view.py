"""A live site's dashboard view, in-process: the first screen's 30-day view while this process's buffer
holds today's newest events, as on a running server between two flushes.

``bench_interactions.py`` measures a lake nobody writes to: every computation of today is kept between
requests. On a live site the process's buffer nearly always holds a few of today's events, and what a
query computes from them cannot be kept as if it came from files. This script asks the view of
``bench_interactions.py``'s first screen (``/api/stats/view`` of the last 30 days with its five
breakdowns, the comparison and the daily series, no lazy panel) through ``Api.handle`` on a fresh
``Mallard`` over the same lake (``benchmarks/.data/dashboard-<size>-today``, generated or reused, and
made to end now as ``bench_interactions.live_tail`` does unless ``--as-is``): once with an empty buffer,
then ``--events`` times one event tracked (today, now: the buffer holds 1, 2, … events; flushes and
maintenance are held off) followed by the view. The query cache is off (``cache_ttl_secs=0``): each
view is computed, as the first view after each flush is on a live site (a flush changes the cache key;
buffered events do not). Printed per view: wall milliseconds and the CPU milliseconds of the process (all its
threads: the view's parts run at once).

Measure another checkout by putting it first on ``PYTHONPATH`` (the script prints which mallard it ran)::

    PYTHONPATH=$PWD python benchmarks/bench_live_view.py --sizes 1m,5m --events 3
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_live_view.py --sizes 5m --as-is
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_dashboard import DATA, load_average, prepare

import mallard
from mallard._http.api import Api
from mallard._http.messages import Request

SITE = "www.example.com"
VIEW = ("site_id=" + SITE + "&period=30d&limit=10&breakdowns=pages,sources,countries,browsers,events"
        "&compare=previous_period&interval=day")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def view(api: Api) -> tuple[int, float, float]:
    """The view once: (status, wall ms, CPU ms)."""
    t, c = time.perf_counter(), _cpu()
    answer = api.handle(Request("GET", "/api/stats/view", VIEW, headers={"host": "127.0.0.1"},
                                client="127.0.0.1"))
    return answer.status, (time.perf_counter() - t) * 1000, (_cpu() - c) * 1000


def run(path: Path, events: int) -> list[tuple[int, int, float, float]]:
    """(events held, status, wall ms, CPU ms) of each view on a fresh Mallard over ``path``."""
    m = mallard.Mallard(data_dir=path, flush_interval_secs=10**6, flush_event_count=10**9,
                        cache_ttl_secs=0, filter_bots=False)
    try:
        api = Api(m)
        out = [(0, *view(api))]
        for i in range(events):
            outcome = m.track("pageview", site=SITE, url=f"https://{SITE}/live/{i}", ip=f"198.51.100.{i + 1}",
                              user_agent=UA, timestamp=datetime.now(UTC))
            if not outcome:
                raise RuntimeError(f"the event was refused: {outcome}")
            out.append((i + 1, *view(api)))
        return out
    finally:
        m.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,5m", help="comma-separated event counts (1m, 5m…)")
    ap.add_argument("--events", type=int, default=3, help="events tracked, a view after each")
    ap.add_argument("--runs", type=int, default=1, help="fresh Mallard objects per size")
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    ap.add_argument("--as-is", action="store_true", help="use the lakes as they are (no live tail)")
    args = ap.parse_args(argv)
    here = Path(mallard.__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"mallard {here} (git {commit or '?'}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    today = datetime.now(UTC).date().isoformat()
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        path = args.data / f"dashboard-{label}-today"
        prepare(path, label, end_date=today)
        if not args.as_is:
            from bench_interactions import live_tail  # imports the browser harness: only when needed
            print(live_tail(path))
        for r in range(args.runs):
            print(f"== {label}, run {r + 1}, load average {load_average()}")
            for held, status, wall, cpu in run(path, args.events):
                print(f"  {held} event(s) buffered: {status}, wall {wall:6.0f} ms, CPU {cpu:6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
