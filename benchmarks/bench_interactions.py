"""Dashboard interactions in a real browser against ``mallard serve``: load, period change, filter click.

For each size (``--sizes``, default 1m,5m) the lake of ``bench_dashboard.py`` (one site over 42 days,
sessions and rollups stored with ``Mallard.build_sessions()``) is generated or reused, here ending
TODAY (UTC) so that the dashboard's relative periods ("Last 30 days") cover it: it is cached under
``benchmarks/.data/dashboard-<size>-today`` and regenerated when the day changes. The generator spreads
today's events over the whole day, so ``live_tail`` first drops those later than now (the lake then ends
now, as a live site's does, and today holds as many events as the time of day says: print the time with
the figures) and builds what a running server's maintenance keeps stored: the settled days, and the
open days' provisional sessions and today's rollups (queries/provisional.py) up to a minute ago. No
event arrives during the runs (a live site would add a few minutes of events after the horizon).

Each run starts a fresh ``mallard serve`` (127.0.0.1, a free port, open mode: no password, loopback) so
no query cache or in-memory state of an earlier run helps (the OS page cache does: the Parquet files
stay in memory between runs), and a fresh browser context of Debian's headless Chromium through
Playwright (desktop User-Agent and launch arguments of tests/chromium.py, a 1920×1080 viewport):

1. load: ``/?site=<site>&period=30d``, timed from the start of the navigation;
2. period change: the ``w`` key (Last 7 days), timed from the keydown;
3. filter click: the top row of the Sources panel, timed from the pointerdown;
4. filtered: the ``t`` key (back to Last 30 days, the filter kept: a filtered view of the default
   period), timed from the keydown;

then the same four again in a new context on the same server: the query cache warm.

**Settled** is decided in the page by a monitor installed before the app's scripts: every ``fetch`` of
an ``api/`` URL issued since the action has its whole body received (realtime polls, ``api/stats/realtime``
and ``api/v1/stats/realtime/visitors``, are ignored after the load: no interaction asks for them), AND
no element intersecting the viewport shows a loading state (class ``is-loading``, ``aria-busy="true"``,
the boot message, or a text starting with "Loading"). The time is that of the animation frame right
after the DOM mutation that made both true,
once they have stayed true for ``QUIET_MS`` with no new request. Panels below the fold fetch only when
scrolled near (``useShown``), so the load covers the first screen and what the page loads eagerly.
Printed per interaction: the number of ``api/`` requests, the slowest by server time (Resource Timing's
responseStart − requestStart: on loopback, the server's work) and its ``X-Mallard-Cache``, and the CPU
time the server process and Chromium's processes used from the action to the settled moment (their
``/proc`` counters: on two cores, what the browser takes of the machine while the server computes).

Peers, alternating with the browser runs in each run: the same ``api/`` requests the browser issued for
each interaction (captured from Playwright's request events in the first run) sent with httpx to a fresh
server, one after the other (then the same, warm) and all at once (on another fresh server, cold, then
warm), which shows the browser's and the rendering's share; and ClickHouse (chdb, in-process, over the
same Parquet files, written by ``bench_dashboard.ch_sql``; in the first ``--chdb-runs`` runs) for the
queries of the view answer (main and the timeseries for the range and the compared one, sessions, and
the five breakdowns) one after the other; the lazy panels (goals, properties, funnel, flow…) have no
ClickHouse formulation there and are left out of its figure.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_interactions.py                  # --sizes 1m,5m --runs 3
    PYTHONPATH=$PWD python benchmarks/bench_interactions.py --sizes 1m --runs 1 --chdb-runs 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import chdb
import httpx
import traffic
from bench_behavioural import chdb_run
from bench_dashboard import DATA, ch_sql, lake_bytes, load_average, prepare

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.chromium import ARGS, CHROMIUM, UA  # noqa: E402  (the browser tests' launch settings)

TARGET_S = 1.0  # issue 11: each interaction ≤ 1 s
QUIET_MS = 600  # settled for this long with no new request before the time is read
TIMEOUT_S = 180.0
VIEWPORT = {"width": 1920, "height": 1080}  # the commonest desktop screen: Sources' rows in view
INTERACTIONS = ("load", "period", "filter", "filtered")

# Installed before any script of the page (Playwright's init script): wraps fetch and watches the DOM.
MONITOR = r"""
(() => {
  if (window.__bench) return;
  const B = { inflight: 0, started: 0, wasBusy: true, settledAt: null, t0: 0, armed: false,
              pending: false, skipRealtime: false, why: '' };
  window.__bench = B;
  const apiPath = (u) => { try { return new URL(u, document.baseURI).pathname; } catch (e) { return ''; } };
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight
      && r.right > 0 && r.left < innerWidth;
  };
  const loading = () => {
    for (const el of document.querySelectorAll('.is-loading, [aria-busy="true"], .boot')) {
      if (shown(el)) return el.getAttribute('aria-label') || el.className || el.tagName;
    }
    const root = document.body;
    if (!root) return 'no body';
    const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = w.nextNode(); n; n = w.nextNode()) {
      const el = n.parentElement;
      if (/^\s*Loading/.test(n.data) && el && shown(el)) return 'text: ' + n.data.trim();
    }
    return '';
  };
  const busy = () => { B.why = B.inflight > 0 ? `${B.inflight} request(s)` : loading(); return !!B.why; };
  const check = () => {
    if (busy()) { B.wasBusy = true; B.settledAt = null; return; }
    if (!B.wasBusy || B.settledAt !== null || B.pending) return;
    B.pending = true;
    requestAnimationFrame(() => {
      B.pending = false;
      if (busy()) B.wasBusy = true; else B.settledAt = performance.now();
    });
  };
  const orig = window.fetch;
  window.fetch = function (input, init) {
    const p = orig.call(this, input, init);
    const path = apiPath(input instanceof Request ? input.url : String(input));
    const poll = /\/api\/(stats\/realtime|v1\/stats\/realtime\/visitors)$/.test(path);
    if (!path.includes('/api/') || (B.skipRealtime && poll)) return p;
    B.inflight++; B.started++; check();
    const done = () => { B.inflight--; check(); };
    p.then((r) => r.clone().arrayBuffer()).then(done, done);
    return p;
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true,
                                                  characterData: true });
  B.arm = () => {
    B.armed = true; B.t0 = null; B.started = 0; B.wasBusy = false; B.settledAt = null; B.skipRealtime = true;
  };
  const mark = (e) => { if (B.armed && B.t0 === null) { B.t0 = e.timeStamp; B.armed = false; } };
  addEventListener('keydown', mark, true);
  addEventListener('pointerdown', mark, true);
  B.state = () => ({ inflight: B.inflight, started: B.started, settledAt: B.settledAt, t0: B.t0,
                     now: performance.now(), why: B.why });
})();
"""


# -- the server ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(data: Path, query_timeout: float | None = None) -> Iterator[str]:
    """A fresh ``mallard serve`` of ``data`` on a free loopback port (this checkout's mallard), ready;
    its base URL. ``query_timeout`` sets ``query_timeout_secs`` (mallard's default when None). Stopped
    (SIGTERM, then SIGKILL after 30 s) on exit."""
    port = _free_port()
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if query_timeout is not None:
        env["MALLARD_QUERY_TIMEOUT_SECS"] = str(query_timeout)
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in the finally below)
    proc = subprocess.Popen([sys.executable, "-m", "mallard", "serve", "--data-dir", str(data), "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    SERVERS[base] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"mallard serve exited {proc.returncode}: {log.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mallard serve was not ready within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- one interaction in the browser --------------------------------------------------------------------
#: The realtime routes the dashboard polls (the header figure every 30 s; the realtime view every 10 s).
REALTIME: Final = ("/api/stats/realtime", "/api/v1/stats/realtime/visitors")


@dataclass
class Req:
    method: str
    url: str
    body: str | None
    status: int | None = None
    server_ms: float | None = None  # Resource Timing: responseStart - requestStart
    cache: str = ""
    answer: Any = None  # the JSON of a view answer (its ranges), else None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path.lstrip("/")


@dataclass
class Measured:
    seconds: float
    requests: list[Req]
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process kind

    def slowest(self) -> Req | None:
        timed = [r for r in self.requests if r.server_ms is not None]
        return max(timed, key=lambda r: r.server_ms or 0.0) if timed else None


class Watch:
    """The ``api/`` requests of a page (from Playwright's request events) and its errors."""

    def __init__(self, page: Any) -> None:
        self.requests: list[tuple[Any, Req]] = []
        self.open: set[int] = set()
        self.errors: list[str] = []
        self.skip_realtime = False
        page.on("request", self._sent)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._failed)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _api(self, request: Any) -> bool:
        path = urlsplit(request.url).path
        return "/api/" in path and not (self.skip_realtime and path.endswith(REALTIME))

    def _sent(self, request: Any) -> None:
        if self._api(request):
            self.open.add(id(request))
            self.requests.append((request, Req(request.method, request.url, request.post_data)))

    def _done(self, request: Any) -> None:
        self.open.discard(id(request))

    def _failed(self, request: Any) -> None:
        self._done(request)
        if "ERR_ABORTED" not in (request.failure or ""):  # aborted: a panel's parameters changed
            self.errors.append(f"failed {request.url}: {request.failure}")

    def take(self) -> list[Req]:
        """The answered requests since the last take, with their status, server time and cache state
        (a request the page aborted, as a panel's parameters changed, is left out)."""
        out = []
        for request, req in self.requests:
            response = None if request.failure else request.response()
            if response is None:
                continue
            if response is not None:
                req.status = response.status
                req.cache = response.headers.get("x-mallard-cache", "not cached")
                if req.status >= 400:
                    self.errors.append(f"{req.status} {req.path}")
                elif req.path.endswith("api/stats/view"):
                    req.answer = response.json()
            timing = request.timing
            if timing.get("responseStart", -1) >= 0 and timing.get("requestStart", -1) >= 0:
                req.server_ms = timing["responseStart"] - timing["requestStart"]
            out.append(req)
        self.requests = []
        return out


def settle(page: Any, watch: Watch, what: str) -> float:
    """Milliseconds from the action (``__bench.t0``) to the settled moment (see the module docstring)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        st = page.evaluate("() => window.__bench.state()")
        if (st["settledAt"] is not None and not st["inflight"] and not watch.open
                and st["now"] - st["settledAt"] >= QUIET_MS and st["t0"] is not None):
            return float(st["settledAt"] - st["t0"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not settled after {TIMEOUT_S:.0f} s ({st})")
        page.wait_for_timeout(40)


def sources_top_row(page: Any) -> Any:
    panel = page.locator("section.panel").filter(has=page.locator("h2", has_text=re.compile(r"^Sources$")))
    return panel.locator("tbody tr").first.locator("button.row-btn")


#: The ``mallard serve`` process of each base URL (for its CPU time).
SERVERS: dict[str, int] = {}


def cpu_seconds(server: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the server process and by Chromium's processes."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"server": 0.0, "browser": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            cmd = (stat.parent / "cmdline").read_bytes()
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue  # ended meanwhile
        kind = "server" if pid == server else "browser" if b"chromium" in cmd else None
        if kind is not None:
            out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return out


def browse(browser: Any, base: str, site: str) -> dict[str, Measured]:
    """Load, period change, filter click and the filtered default period in a new context; the
    measurements by interaction."""
    context = browser.new_context(user_agent=UA, viewport=VIEWPORT)
    context.add_init_script(MONITOR)
    page = context.new_page()
    watch = Watch(page)
    out: dict[str, Measured] = {}
    server = SERVERS[base]
    cpu = cpu_seconds(server)

    def used() -> dict[str, float]:
        nonlocal cpu
        before, cpu = cpu, cpu_seconds(server)
        return {k: cpu[k] - before[k] for k in cpu}

    try:
        page.goto(f"{base}?site={site}&period=30d", wait_until="commit")
        ms = settle(page, watch, "load")  # t0 = 0: the navigation's start (performance.timeOrigin)
        out["load"] = Measured(ms / 1000, watch.take(), watch.errors, used())
        watch.errors = []

        watch.skip_realtime = True  # realtime polls (every 30 s) are no interaction's
        page.evaluate("() => window.__bench.arm()")
        used()
        page.keyboard.press("w")
        ms = settle(page, watch, "period")
        if "period=7d" not in page.url:
            raise RuntimeError(f"the w key did not switch to Last 7 days: {page.url}")
        out["period"] = Measured(ms / 1000, watch.take(), watch.errors, used())
        watch.errors = []

        row = sources_top_row(page)
        box = row.bounding_box()
        if box is None or box["y"] + box["height"] > VIEWPORT["height"]:
            raise RuntimeError(f"the Sources panel's top row is below the fold: {box}")
        page.evaluate("() => window.__bench.arm()")
        used()
        row.click()
        ms = settle(page, watch, "filter")
        if "filters=" not in page.url:
            raise RuntimeError(f"the Sources row click set no filter: {page.url}")
        out["filter"] = Measured(ms / 1000, watch.take(), watch.errors, used())
        watch.errors = []

        page.evaluate("() => window.__bench.arm()")
        used()
        page.keyboard.press("t")
        ms = settle(page, watch, "filtered")
        if "period=30d" not in page.url or "filters=" not in page.url:
            raise RuntimeError(f"the t key did not switch to a filtered Last 30 days: {page.url}")
        out["filtered"] = Measured(ms / 1000, watch.take(), watch.errors, used())
    finally:
        for p in context.pages:
            with contextlib.suppress(Exception):
                p.goto("about:blank", timeout=10_000)
        context.close()
    return out


def blank(browser: Any, base: str) -> Measured:
    """The browser's own share: a new context loading the dashboard's icon (one static file, no script),
    timed like the load (navigation start to the load event) and for the CPU over one second."""
    context = browser.new_context(user_agent=UA, viewport=VIEWPORT)
    server = SERVERS[base]
    try:
        before = cpu_seconds(server)
        page = context.new_page()
        page.goto(base + "favicon.svg", wait_until="load")
        seconds = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
        page.wait_for_timeout(1000)
        after = cpu_seconds(server)
    finally:
        context.close()
    return Measured(seconds, [], cpu={k: after[k] - before[k] for k in after})


# -- the same requests over HTTP -----------------------------------------------------------------------
def _send_args(base: str, req: Req) -> dict[str, Any]:
    split = urlsplit(req.url)
    url = base + split.path.lstrip("/") + (f"?{split.query}" if split.query else "")
    headers = {"Accept": "application/json"}
    if req.body is not None:
        headers["Content-Type"] = "application/json"
    return {"method": req.method, "url": url, "headers": headers, "content": req.body}


def replay_sequential(base: str, reqs: list[Req]) -> float:
    with httpx.Client(timeout=TIMEOUT_S) as client:
        t = time.perf_counter()
        for req in reqs:
            client.request(**_send_args(base, req)).raise_for_status()
        return time.perf_counter() - t


def replay_concurrent(base: str, reqs: list[Req]) -> float:
    """All of ``reqs`` at once (a thread each, one connection each, as a browser's parallel fetches):
    seconds from the first sent to the last answered. Threads, not asyncio: Playwright's sync API runs
    an event loop in this thread."""
    with httpx.Client(timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=len(reqs))) as client, \
            ThreadPoolExecutor(len(reqs)) as pool:
        t = time.perf_counter()
        answers = list(pool.map(lambda r: client.request(**_send_args(base, r)), reqs))
        elapsed = time.perf_counter() - t
    for a in answers:
        a.raise_for_status()
    return elapsed


# -- the view's queries in ClickHouse ------------------------------------------------------------------
def view_queries(reqs: list[Req]) -> tuple[list[tuple[str, bool, date, date]], str]:
    """The (name, filtered, first day, last day) of the ClickHouse queries answering the view request
    among ``reqs`` (its answer gives the ranges), and the source filtered on ('' if none)."""
    view = next(r for r in reqs if r.path.endswith("api/stats/view"))
    view_json = view.answer
    q = parse_qs(urlsplit(view.url).query)
    source = ""
    if "filters" in q:
        filters = json.loads(q["filters"][0])
        if filters != [["is", "visit:source", filters[0][2]]] or len(filters[0][2]) != 1:
            raise RuntimeError(f"unexpected filter {filters}: no ClickHouse formulation here")
        source = filters[0][2][0]
    rng = view_json["range"]
    cur = (date.fromisoformat(rng["start_date"]), date.fromisoformat(rng["end_date"]))
    out = [("main", bool(source), *cur), ("sessions", bool(source), *cur), ("timeseries", bool(source), *cur)]
    cmp = view_json["main"].get("comparison")
    if cmp:
        prev = (date.fromisoformat(cmp["start_date"]), date.fromisoformat(cmp["end_date"]))
        out += [("main", bool(source), *prev), ("timeseries", bool(source), *prev)]
    out += [(name, bool(source), *cur) for name in q["breakdowns"][0].split(",")]
    return out, source


def chdb_view(path: Path, site: str, gap_us: int, queries: list[tuple[str, bool, date, date]],
              source: str) -> float:
    glob = str(path.resolve() / "events" / "**" / "*.parquet")
    t = time.perf_counter()
    for name, filtered, first, last in queries:
        lo = datetime.combine(first, datetime.min.time())
        hi = datetime.combine(last, datetime.min.time()) + timedelta(days=1)
        chdb_run(ch_sql(name, filtered), {"glob": glob, "site": site, "gap_us": gap_us, "source": source,
                                          "lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f"),
                                          "hi": hi.strftime("%Y-%m-%d %H:%M:%S.%f")})
    return time.perf_counter() - t


# -- the report ----------------------------------------------------------------------------------------
def _fig(runs: list[float]) -> str:
    return f"{statistics.median(runs):7.3f} {min(runs):7.3f}" if runs else f"{'-':>7} {'-':>7}"


def _describe(m: Measured) -> str:
    s = m.slowest()
    cpu = f"; CPU server {m.cpu.get('server', 0):.2f} s, browser {m.cpu.get('browser', 0):.2f} s"
    if s is None or s.server_ms is None:
        return f"{m.seconds:6.3f} s, {len(m.requests)} request(s){cpu}"
    slow = f"slowest {s.path} {s.server_ms:.0f} ms ({s.cache or '?'})"
    return f"{m.seconds:6.3f} s, {len(m.requests)} request(s), {slow}{cpu}"


def live_tail(path: Path) -> str:
    """Make the lake end now, as a live site's does: drop today's events later than now (the generator
    spreads them over the whole day), then build what maintenance keeps stored on a running server (the
    settled days, and the open days' provisional sessions up to a minute ago). Returns what it did."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    import mallard

    now = datetime.now(UTC).replace(tzinfo=None)
    dropped = 0
    for f in sorted((path / "events").glob(f"site_id=*/date={now.date().isoformat()}/*.parquet")):
        table = pq.read_table(f)
        kept = table.filter(pc.less_equal(table.column("timestamp"), pa.scalar(now, pa.timestamp("us"))))
        if kept.num_rows == table.num_rows:
            continue
        dropped += table.num_rows - kept.num_rows
        # under a new name (file names are never reused: stored sessions name the files they read)
        tmp = f.with_name(f".{f.name}.tmp")
        pq.write_table(kept.replace_schema_metadata(table.schema.metadata), tmp, compression="zstd")
        os.replace(tmp, f.with_name(f"cut{now:%H%M%S}-{f.name}"))
        f.unlink()
    t = time.perf_counter()
    m = mallard.Mallard(data_dir=path)  # not started: no buffer, no maintenance thread
    try:
        days = m.build_sessions()
    finally:
        m.close()
    return (f"today's {dropped:,} events after {now:%H:%M} UTC dropped; {days} day(s) of sessions built "
            f"in {time.perf_counter() - t:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,5m", help="comma-separated event counts (1m, 5m…)")
    ap.add_argument("--runs", type=int, default=3, help="runs per size (each: browser, httpx, chdb)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--chdb-runs", type=int, default=1,
                    help="runs (the first ones) that time ClickHouse too; 0 leaves it out (it takes minutes "
                         "at 5M: every query sessionises the site's whole history)")
    ap.add_argument("--data", type=Path, default=DATA, help="where lakes are generated and cached")
    ap.add_argument("--query-timeout", type=float, default=None,
                    help="the servers' query_timeout_secs (mallard's default, 30, when not given): a view "
                         "slower than that answers 503 and the dashboard shows the error")
    ap.add_argument("--omnibox", action="store_true",
                    help="launch Chromium without tests/chromium.py's --disable-features (its omnibox popup "
                         "preloaded in each new context, as in the figures before 2026-12-05)")
    args = ap.parse_args(argv)
    launch_args = [a for a in ARGS if not (args.omnibox and a.startswith("--disable-features="))]

    from playwright.sync_api import sync_playwright

    import mallard

    print(traffic.describe_machine())
    print(f"serving {Path(mallard.__file__).parent}; chdb {chdb.__version__}; browser {CHROMIUM} "
          f"{' '.join(launch_args)}")
    today = datetime.now(UTC).date().isoformat()
    # (size, interaction, mode) → seconds per run; mode: browser cold/warm, httpx seq/conc cold/warm, chdb
    results: dict[tuple[str, str, str], list[float]] = {}
    slowest: dict[tuple[str, str, str], list[tuple[str, float, str]]] = {}
    counts: dict[tuple[str, str, str], list[int]] = {}
    wall = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=launch_args, headless=True)
        try:
            for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
                print(f"\nload average before {label}: {load_average()}", flush=True)
                path = args.data / f"dashboard-{label}-today"
                manifest, built, note = prepare(path, label, seed=args.seed, end_date=today)
                note += "; " + live_tail(path)
                site = manifest["dominant_site"]
                print(f"== {label}: {manifest['sites'][site]['events']:,} events of {site}, "
                      f"{manifest['start_date']}..{manifest['end_date']}, {lake_bytes(path):,} bytes of "
                      f"Parquet (ready in {built:.1f} s); {note}", flush=True)
                gap_us = mallard.Settings().session_window_minutes * 60 * 1_000_000
                captured: dict[str, tuple[list[Req], list[tuple[str, bool, date, date]], str]] = {}
                printed, chdb_done = False, 0
                for run in range(args.runs):
                    with serving(path, args.query_timeout) as base:
                        if run == 0:
                            print(f"  browser alone: a new context showing favicon.svg "
                                  f"{_describe(blank(browser, base))} (over 1 s)", flush=True)
                        for mode in ("cold", "warm"):
                            try:
                                got = browse(browser, base, site)
                            except RuntimeError as exc:  # an error page has no Sources rows to click
                                print(f"  run {run + 1} browser {mode} FAILED: {exc}", flush=True)
                                continue
                            for name, m in got.items():
                                key = (label, name, f"browser {mode}")
                                results.setdefault(key, []).append(m.seconds)
                                counts.setdefault(key, []).append(len(m.requests))
                                s = m.slowest()
                                if s is not None and s.server_ms is not None:
                                    slowest.setdefault(key, []).append((s.path, s.server_ms, s.cache))
                                print(f"  run {run + 1} browser {mode} {name:6s} {_describe(m)}"
                                      + (f"  ERRORS {m.errors}" if m.errors else ""), flush=True)
                                if name not in captured and mode == "cold" and not m.errors:
                                    queries, source = view_queries(m.requests)
                                    captured[name] = (m.requests, queries, source)
                            if mode == "cold" and not printed and len(captured) == len(INTERACTIONS):
                                printed = True
                                for name in INTERACTIONS:
                                    reqs, queries, source = captured[name]
                                    print(f"    {name} requests: " + ", ".join(
                                        f"{r.method} {r.path}" for r in reqs) + f"; chdb: {len(queries)} "
                                        "queries" + (f" filtered by source {source!r}" if source else ""),
                                          flush=True)
                    if len(captured) < len(INTERACTIONS):
                        continue  # no clean browser run yet: nothing to replay
                    for order in ("seq", "conc"):
                        with serving(path, args.query_timeout) as base:
                            for mode in ("cold", "warm"):
                                for name in INTERACTIONS:
                                    reqs = captured[name][0]
                                    fn = replay_sequential if order == "seq" else replay_concurrent
                                    results.setdefault((label, name, f"httpx {order} {mode}"), []).append(
                                        fn(base, reqs))
                    print(f"  run {run + 1} httpx " + "  ".join(
                        f"{name} seq {results[(label, name, 'httpx seq cold')][-1]:.3f}/"
                        f"{results[(label, name, 'httpx seq warm')][-1]:.3f} conc "
                        f"{results[(label, name, 'httpx conc cold')][-1]:.3f}/"
                        f"{results[(label, name, 'httpx conc warm')][-1]:.3f}" for name in INTERACTIONS)
                          + " (cold/warm)", flush=True)
                    if chdb_done < args.chdb_runs:
                        chdb_done += 1
                        for name in INTERACTIONS:
                            _, queries, source = captured[name]
                            secs = chdb_view(path, site, gap_us, queries, source)
                            results.setdefault((label, name, "chdb"), []).append(secs)
                        print(f"  run {run + 1} chdb " + "  ".join(
                            f"{name} {results[(label, name, 'chdb')][-1]:.3f}" for name in INTERACTIONS),
                              flush=True)
        finally:
            browser.close()

    print(f"\nSeconds, median and min of {args.runs} run(s); target ≤ {TARGET_S} s per interaction in the "
          "browser.\nhttpx: the browser's api/ requests of that interaction, one after the other (seq) or "
          "all at once (conc); chdb: the view answer's queries only.")
    print(f"{'size':>4} {'interaction':11s} {'mode':17s} {'median':>7} {'min':>7}  {'reqs':>4}  "
          "slowest request (server ms, median; cache)   target")
    labels = list(dict.fromkeys(k[0] for k in results))
    modes = ("browser cold", "browser warm", "httpx seq cold", "httpx conc cold", "httpx seq warm",
             "httpx conc warm", "chdb")
    for label in labels:
        for name in INTERACTIONS:
            for mode in modes:
                runs = results.get((label, name, mode))
                if not runs:
                    continue
                key = (label, name, mode)
                n_reqs = f"{statistics.median(counts[key]):4.0f}" if key in counts else f"{'':4}"
                slow, verdict = "", ""
                if key in slowest:
                    paths = [p for p, _, _ in slowest[key]]
                    top = max(set(paths), key=paths.count)
                    server = statistics.median(ms for p, ms, _ in slowest[key] if p == top)
                    caches = "/".join(sorted({c for p, _, c in slowest[key] if p == top}))
                    slow = f"{top} {server:.0f} ({caches})"
                    med = statistics.median(runs)
                    verdict = f"{'ok' if med <= TARGET_S else 'MISSED'}"
                print(f"{label:>4} {name:11s} {mode:17s} {_fig(runs)}  {n_reqs}  {slow:44s} {verdict}")
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
