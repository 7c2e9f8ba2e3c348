"""HTTP ingestion: ``POST /api/event`` against ``mallard serve`` under load from ``wrk``, with a ceiling.

In the same run, the same server (uvicorn, the same worker count, the same event loop and HTTP parser)
also serves a minimal raw ASGI app that reads the body and answers 202: the most that uvicorn can do on
this machine. mallard's throughput is printed as a ratio of that ceiling, so the figure says how much of
the HTTP stack's capacity mallard's own work (parsing, validation, enrichment, spool, flushes) leaves.

Scenarios (each: a 2 s warm-up, then ``--duration`` seconds measured, ``--connections`` keep-alive
connections from one wrk thread, everything on 127.0.0.1):

* ``raw``: the raw 202 app, ``--workers`` workers (the ceiling);
* ``single``: ``mallard serve --workers N``, one event per POST;
* ``batch``: the same, ``--batch`` events per POST (a JSON array);
* ``raw1``, ``single1``: the raw app and single events with one worker (skipped when ``--workers 1``).

The load is generated into a temporary directory: a Lua script for wrk holding a pool of distinct
requests (sites, Zipf-distributed pages with query strings, landing and internal referrers, custom events
with props, viewport widths that match the device) under ~30 browser User-Agents (the real mix of
``traffic.py`` plus a few never-seen versions); ``request()`` picks one at random for every request, and
``done()`` prints the latency percentiles and the count of every HTTP status. Only browser User-Agents are
sent, so mallard drops nothing as a bot.

After each mallard run the server is stopped with SIGTERM (uvicorn's graceful shutdown: the workers flush
their buffers) and the stored events are counted with ``mallard.open(data_dir)``; they must equal the
events of the 202 responses wrk saw, plus at most the requests still in flight when wrk stopped (wrk
does not wait for them, the server still stores them): ``agree``/``DISAGREE``. Every server gets a fresh
data directory, deleted afterwards, and is killed at the end whatever happens.

wrk and the server share the machine's CPUs (on a 2-core VM: wrk's one thread takes a good part of one
core); the figures are therefore a lower bound of what the server alone would do. The server processes'
CPU time is measured too (from /proc), per process, and events per server CPU-second is the figure to
compare across machines with different load; so is the CPU that other processes took during each run.

uvicorn's workers share one listening socket, and wrk opens all its connections at once: one worker may
accept (nearly) all of them, and then serves the whole run alone. The per-process CPU line says so
(``UNBALANCED``). The raw ceiling is measured again (``--tries``, 3) while that happens, and the fastest
run is the ceiling; mallard's runs are measured once and flagged.

The speed of a shared VM drifts by several percent within a minute, and the ratio compares runs taken
a minute apart. ``--rounds N`` runs the whole list of scenarios N times in a row (raw, single, …, raw,
single, …), reports each round against its own ceiling, and then the median ratio over the rounds,
which is the figure the target is checked against.

Usage::

    python benchmarks/bench_http.py                        # raw, single, batch, raw1, single1
    python benchmarks/bench_http.py --duration 10 --connections 64 --workers 2 --batch 100 --only raw,single
    python benchmarks/bench_http.py --only raw,single --rounds 3     # the ratio as a median of 3 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import traffic

import mallard
from mallard._enrich.useragent import AgentParser

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SITES = traffic.SITE_IDS[:3]
SCENARIOS = ("raw", "single", "batch", "raw1", "single1")
TARGET_EVENTS_PER_S = 10_000
TARGET_P99_MS = 25.0
TARGET_RATIO = 0.3
HEALTH_WAIT_S = 30.0
STOP_WAIT_S = 60.0

RAW_APP = '''\
"""The ceiling: an ASGI app that reads the request body and answers 202, nothing else."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
'''

LUA = r'''-- generated by benchmarks/bench_http.py: a pool of distinct POST /api/event requests, one picked at
-- random for every request; done() prints one JSON line with latencies (µs) and HTTP status counts.
local specs = dofile("%(data)s")
local pool = {}
local threads = {}
counts = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(%(seed)d)
  for i, s in ipairs(specs) do
    pool[i] = wrk.format("POST", "/api/event", {
      ["Host"] = "%(host)s",
      ["User-Agent"] = s[1],
      ["Content-Type"] = "text/plain",
      ["Accept"] = "*/*",
      ["Accept-Language"] = "en-US,en;q=0.9",
      ["Origin"] = "https://" .. s[2],
    }, s[3])
  end
  specs = nil
end

function request()
  return pool[math.random(#pool)]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do
      parts[k] = (parts[k] or 0) + v
    end
  end
  local st = {}
  for k, v in pairs(parts) do
    table.insert(st, string.format('"%%d":%%d', k, v))
  end
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50":%%d,"p90":%%d,"p99":%%d,"p999":%%d,"max":%%d,"mean":%%f,"statuses":{%%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, table.concat(st, ",")))
end
'''


# -- load -------------------------------------------------------------------------------------------
class Traffic:
    """Realistic single events and batches as (User-Agent, site, JSON body) request specs."""

    def __init__(self, seed: int, extra_uas: int = 7) -> None:
        self.rng = random.Random(seed)
        parser = AgentParser(0)
        real = [ua for _, ua in traffic.USER_AGENTS]
        weights = [w for w, _ in traffic.USER_AGENTS]
        # a few never-seen versions of popular browsers, as real traffic spreads over releases
        mutated: list[str] = []
        while len(mutated) < extra_uas:
            ua = traffic.mutate_user_agent(self.rng.choices(real, weights)[0], self.rng)
            if ua not in real and ua not in mutated:
                mutated.append(ua)
        self.uas = real + mutated
        self.ua_w = weights + [1.0] * len(mutated)
        self.device = {ua: parser.parse(ua).device or "desktop" for ua in self.uas}
        bots = [ua for ua in self.uas if parser.parse(ua).is_bot]
        if bots:
            raise SystemExit(f"bench_http: a User-Agent of the load parses as a bot: {bots[0]!r}")
        self.paths = self._paths()
        self.path_w = traffic.zipf_weights(len(self.paths))
        self.refs = [u for _, u in traffic.REFERRERS]
        self.ref_w = [w for w, _ in traffic.REFERRERS]
        self.customs = traffic.custom_events()
        self.custom_w = [c[0] for c in self.customs]
        self.site_w = traffic.site_weights(len(SITES))
        self.urls: set[str] = set()

    @staticmethod
    def _paths() -> list[str]:
        """traffic.py's ~500 pages, blog posts under dated URLs with title-length slugs, as blogs do."""
        tails = ("a-practical-guide", "what-we-learned", "in-production", "for-small-teams",
                 "without-cookies", "step-by-step", "the-hard-way", "in-2025")
        out = []
        for i, path in enumerate(traffic.page_paths()):
            if path.startswith("/blog/"):
                path = f"/blog/{2023 + i % 3}/{1 + i % 12:02d}/{path[6:]}-{tails[i % len(tails)]}"
            out.append(path)
        return out

    def _url(self, site: str, landing: bool) -> str:
        r = self.rng
        path = r.choices(self.paths, self.path_w)[0]
        x = r.random()
        query = ""
        if landing and x < 0.10:
            tags = traffic.UTM_TAGS
            _, src, med, camp, content, term = r.choices(tags, [t[0] for t in tags])[0]
            pairs = [("utm_source", src), ("utm_medium", med), ("utm_campaign", camp),
                     ("utm_content", content), ("utm_term", term)]
            query = "?" + "&".join(f"{k}={v.replace(' ', '+')}" for k, v in pairs if v)
        elif landing and x < 0.16:  # ad clicks: click ids as long as Google's and Meta's are
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            if r.random() < 0.6:
                gclid = "Cj0KCQiA" + "".join(r.choices(alphabet, k=r.randint(70, 90))) + "BwE"
                query = f"?gad_source=1&gclid={gclid}"
            else:
                query = "?fbclid=IwAR" + "".join(r.choices(alphabet, k=r.randint(55, 60)))
        elif x < 0.21:
            query = f"?page={r.randint(2, 12)}"
        elif x < 0.24:
            query = f"?q={r.choice(('pricing', 'api', 'docker', 'gdpr', 'export'))}&lang=en"
        return f"https://{site}{path}{query}"

    def _session(self, ua: str) -> list[dict[str, Any]]:
        """One visit: 1–8 events of one visitor on one site."""
        r = self.rng
        site = r.choices(SITES, self.site_w)[0]
        widths = traffic.SCREEN_WIDTHS[self.device[ua]]
        width = r.choices([w for _, w in widths], [w for w, _ in widths])[0]
        length = r.choices(range(1, 9), (45, 20, 12, 8, 6, 4, 3, 2))[0]
        events: list[dict[str, Any]] = []
        prev: str | None = None
        for step in range(length):
            url = self._url(site, step == 0)
            ref = r.choices(self.refs, self.ref_w)[0] if step == 0 else prev
            event: dict[str, Any] = {"d": site, "n": "pageview", "u": url, "r": ref, "w": width}
            if step > 0 and r.random() < 0.15 and prev is not None:
                _, name, props, revenue, currency = r.choices(self.customs, self.custom_w)[0]
                event.update(n=name, u=prev)
                if props:
                    event["p"] = orjson.dumps(props).decode()  # as mallard.js sends them
                if revenue is not None:
                    event.update(ra=revenue, rc=currency)
            else:
                prev = url
            self.urls.add(event["u"])
            events.append(event)
        return events

    def _events(self, n: int, ua: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < n:
            out.extend(self._session(ua))
        return out[:n]

    def specs(self, count: int, batch: int) -> list[tuple[str, str, bytes]]:
        """``count`` requests of ``batch`` events (one object when ``batch`` is 1), each its own UA."""
        out: list[tuple[str, str, bytes]] = []
        while len(out) < count:
            ua = self.rng.choices(self.uas, self.ua_w)[0]
            if batch == 1:  # every event of a visit, one request each
                out.extend((ua, e["d"], orjson.dumps(e)) for e in self._session(ua))
            else:
                events = self._events(batch, ua)
                out.append((ua, events[0]["d"], orjson.dumps(events)))
        return out[:count]


def lua_string(value: str | bytes) -> str:
    """A double-quoted Lua string literal holding ``value`` byte for byte."""
    data = value.encode() if isinstance(value, str) else value
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in '"\\' or not 32 <= byte < 127:
            out.append(f"\\{byte:03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def write_lua(directory: Path, name: str, specs: list[tuple[str, str, bytes]], seed: int) -> Path:
    data = directory / f"{name}-data.lua"
    with data.open("w") as f:
        f.write("return {\n")
        for ua, site, body in specs:
            f.write(f"{{{lua_string(ua)}, {lua_string(site)}, {lua_string(body)}}},\n")
        f.write("}\n")
    script = directory / f"{name}.lua"
    script.write_text(LUA % {"data": str(data), "seed": seed, "host": HOST})
    return script


# -- servers ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without MALLARD_* variables: mallard's defaults are measured."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}


@dataclass
class Server:
    kind: str  # "raw" or "mallard"
    workers: int
    port: int
    workdir: Path  # the raw app's module directory, or mallard's data directory
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    stopped_cleanly: bool | None = None
    stop_s: float = 0.0

    def command(self) -> list[str]:
        pin = [shutil.which("taskset") or "", "-c", "0,1"] if shutil.which("taskset") else []
        if self.kind == "raw":
            return [*pin, sys.executable, "-m", "uvicorn", "raw_app:app", "--host", HOST,
                    "--workers", str(self.workers), "--port", str(self.port), "--log-level", "warning",
                    "--no-access-log"]
        return [*pin, sys.executable, "-m", "mallard", "serve", "--data-dir", str(self.workdir),
                "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
                "--log-level", "warning"]

    def start(self) -> None:
        env = clean_env()
        if self.kind == "raw":
            env["PYTHONPATH"] = str(self.workdir)
            cwd = self.workdir
        else:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
            cwd = REPO
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=cwd, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + HEALTH_WAIT_S
        url = f"http://{HOST}:{self.port}/health"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode} at start:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if 200 <= resp.status < 300:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} server not healthy after {HEALTH_WAIT_S:.0f} s:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """The server's processes: the uvicorn supervisor (or taskset's exec of it) and its descendants."""
        if self.proc is None:
            return []
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    todo.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
            except OSError:
                pass
        return out

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) of every server process, by pid."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return out

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn's graceful shutdown); SIGKILL the session if it does not end."""
        if self.proc is None or self.proc.poll() is not None:
            return
        t = time.monotonic()
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(STOP_WAIT_S)
            # uvicorn re-raises the signal after its graceful shutdown when it runs one worker in-process
            self.stopped_cleanly = self.proc.returncode in (0, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.stopped_cleanly = False
        finally:
            self.kill()
            self.stop_s = time.monotonic() - t

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session we started (workers included)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


# -- wrk --------------------------------------------------------------------------------------------
@dataclass
class WrkResult:
    requests: int
    duration_s: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    cpu_s: float  # wrk's own CPU time

    @property
    def ok(self) -> int:
        return self.statuses.get(202, 0)

    @property
    def non_202(self) -> int:
        return sum(v for k, v in self.statuses.items() if k != 202)


def run_wrk(wrk: str, script: Path, port: int, duration: float, connections: int) -> WrkResult:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
           "--latency", "-s", str(script), f"http://{HOST}:{port}/api/event"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    d = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        requests=d["requests"], duration_s=d["duration_us"] / 1e6,
        statuses={int(k): v for k, v in d["statuses"].items()},
        socket_errors={k: d[k] for k in ("connect", "read", "write", "timeout") if d[k]},
        p50_ms=d["p50"] / 1000, p90_ms=d["p90"] / 1000, p99_ms=d["p99"] / 1000,
        p999_ms=d["p999"] / 1000, max_ms=d["max"] / 1000, mean_ms=d["mean"] / 1000,
        cpu_s=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime))


# -- scenarios --------------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    kind: str
    workers: int
    batch: int
    title: str


@dataclass
class Outcome:
    scenario: Scenario
    result: WrkResult
    server_cpu_s: float
    warm: WrkResult
    stored: int | None = None
    expected: int = 0
    slack: int = 0
    check: str = ""
    balance: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.result.requests / self.result.duration_s

    @property
    def eps(self) -> float:
        return self.result.ok * self.scenario.batch / self.result.duration_s


def count_stored(data_dir: Path) -> int:
    q = mallard.open(data_dir)
    rows = q.sql("SELECT count(*) AS n FROM events").to_pylist()
    return int(rows[0]["n"])


def log_problems(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    bad = [ln for ln in lines if any(w in ln for w in ("Traceback", "ERROR", "Error", "CRITICAL"))]
    return bad


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all CPUs, /proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def role(pid: int, master: int) -> str:
    if pid == master:
        return "supervisor"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "child"
    return "worker" if b"spawn_main" in cmd else "helper" if b"resource_tracker" in cmd else "child"


def balance(server: Server, per: dict[int, float], workers: int, seconds: float) -> str:
    """Which process did the work: uvicorn's workers share one listening socket, and a burst of new
    keep-alive connections (wrk opens all of them at once) may be accepted by one worker alone."""
    master = server.proc.pid if server.proc else -1
    roles = {pid: role(pid, master) for pid in per}
    shares = [f"{roles[pid]} {v / seconds:.0%}"
              for pid, v in sorted(per.items(), key=lambda kv: (kv[0] != master, -kv[1]))]
    text = f"server CPU by process (of one core): {', '.join(shares)}"
    busy = sorted((v for pid, v in per.items() if roles[pid] == "worker"), reverse=True)
    if workers > 1 and len(busy) >= 2 and busy[1] < 0.25 * busy[0]:
        text += " -- UNBALANCED: one worker took (nearly) all the connections"
    return text


def run_scenario(sc: Scenario, tmp: Path, scripts: dict[int, Path], args: argparse.Namespace,
                 wrk: str) -> Outcome:
    port = free_port()
    fresh = sc.kind == "mallard"
    workdir = Path(tempfile.mkdtemp(prefix=f"data-{sc.name}-", dir=tmp)) if fresh else tmp / "raw"
    server = Server(sc.kind, sc.workers, port, workdir, tmp / f"{sc.name}.log")
    try:
        server.start()
        warm = run_wrk(wrk, scripts[sc.batch], port, args.warmup, args.connections)
        attempts: list[tuple[WrkResult, float, str]] = []
        attempts: list[tuple[WrkResult, float, str, float]] = []
        tries = max(1, args.tries) if sc.kind == "raw" and sc.workers > 1 else 1
        for _ in range(tries):
            cpu0, busy0 = server.cpu_seconds(), machine_busy()
            result = run_wrk(wrk, scripts[sc.batch], port, args.duration, args.connections)
            cpu1, busy1 = server.cpu_seconds(), machine_busy()
            per = {pid: cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1}
            other = (busy1 - busy0) - sum(per.values()) - result.cpu_s
            attempts.append((result, sum(per.values()),
                             balance(server, per, sc.workers, result.duration_s), other))
            if "UNBALANCED" not in attempts[-1][2]:
                break
        # the ceiling is the fastest run; a run whose connections all landed on one worker is retried
        result, cpu, split, other = max(attempts, key=lambda a: a[0].requests / a[0].duration_s)
        out = Outcome(sc, result, cpu, warm)
        out.balance = split
        out.notes.append(split)
        share = max(0.0, other) / result.duration_s
        out.notes.append(f"other processes on the machine during the run: {share:.0%} of one core "
                         "(server and wrk excluded)")
        if len(attempts) > 1:
            out.notes.append(f"{len(attempts)} measured runs (a new one, with new connections, while the "
                             "load landed on one worker; reported: the fastest): "
                             + "; ".join(f"{a[0].requests / a[0].duration_s:,.0f} req/s"
                                         + (" unbalanced" if "UNBALANCED" in a[2] else "")
                                         for a in attempts))
        if sc.kind == "mallard":
            server.stop()
            code = server.proc.returncode if server.proc else None
            out.notes.append(f"stopped with SIGTERM in {server.stop_s:.1f} s, exit code {code}"
                             + ("" if server.stopped_cleanly else " (NOT cleanly: killed after "
                                f"{STOP_WAIT_S:.0f} s or an error)"))
            out.expected = (warm.ok + sum(a[0].ok for a in attempts)) * sc.batch
            # requests in flight when each wrk run stopped: sent, not counted by wrk, stored by the server
            out.slack = (1 + len(attempts)) * args.connections * sc.batch
            out.stored = count_stored(workdir)
            diff = out.stored - out.expected
            ok = 0 <= diff <= out.slack
            out.check = (f"{'agree' if ok else 'DISAGREE'}: {out.stored:,} stored, {out.expected:,} in 202 "
                         f"responses (warm-up included), difference {diff:+,} (in flight when wrk stopped: "
                         f"0…{out.slack:,})")
            spool = workdir / "spool"
            left = [p for p in spool.rglob("*") if p.is_file() and p.stat().st_size] if spool.exists() else []
            if left:
                out.notes.append(f"{len(left)} non-empty spool file(s) left after shutdown")
        problems = log_problems(server.log)
        if problems:
            out.notes.append(f"server log: {len(problems)} error line(s), first: {problems[0][:200]}")
        return out
    finally:
        server.kill()
        if sc.kind == "mallard":
            shutil.rmtree(workdir, ignore_errors=True)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    ceilings = {o.scenario.workers: o for o in outcomes if o.scenario.kind == "raw"}
    print()
    print(f"{'scenario':<34} {'req/s':>9} {'events/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'p99.9':>7} {'max ms':>7} {'non-202':>8} {'sock err':>8} {'ratio':>6} {'srv CPU':>8} "
          f"{'ev/CPU-s':>8}")
    for o in outcomes:
        r = o.result
        ceiling = ceilings.get(o.scenario.workers)
        ratio = f"{o.rps / ceiling.rps:.2f}" if ceiling and o.scenario.kind == "mallard" else ""
        sock = sum(r.socket_errors.values())
        print(f"{o.scenario.title:<34} {o.rps:>9,.0f} {o.eps:>9,.0f} {r.p50_ms:>7.2f} {r.p90_ms:>7.2f} "
              f"{r.p99_ms:>7.2f} {r.p999_ms:>7.1f} {r.max_ms:>7.1f} {r.non_202:>8,} {sock:>8,} {ratio:>6} "
              f"{o.server_cpu_s / r.duration_s:>7.0%} "
              f"{(r.ok * o.scenario.batch / o.server_cpu_s if o.server_cpu_s else 0):>8,.0f}")
    print("(srv CPU: CPU time of the server's processes / wall time, 200% = both cores; "
          "ev/CPU-s: events per server CPU-second)")
    print()
    for o in outcomes:
        r = o.result
        sc = o.scenario
        ceiling = ceilings.get(sc.workers)
        print(f"{sc.title}: {r.requests:,} requests in {r.duration_s:.2f} s; statuses "
              f"{dict(sorted(r.statuses.items()))}; socket errors {r.socket_errors or 'none'}; "
              f"wrk CPU {r.cpu_s / r.duration_s:.0%} of a core; warm-up {o.warm.requests:,} requests "
              f"(statuses {dict(sorted(o.warm.statuses.items()))})")
        if sc.kind == "mallard":
            if ceiling is not None:
                ratio = o.rps / ceiling.rps
                line = (f"  ratio to the raw ceiling ({ceiling.rps:,.0f} req/s, {sc.workers} worker(s)): "
                        f"{ratio:.2f} of requests/s")
                if sc.batch > 1:
                    line += f"; {o.eps / ceiling.rps:.1f}× in events/s"
                if sc.workers == args.workers:
                    line += f"   (target ≥ {TARGET_RATIO}: {mark(ratio >= TARGET_RATIO)})" if sc.batch == 1 \
                        else ""
                print(line)
            if sc.workers == args.workers:
                print(f"  events/s {o.eps:,.0f}   (target ≥ {TARGET_EVENTS_PER_S:,} with {args.workers} "
                      f"workers: {mark(o.eps >= TARGET_EVENTS_PER_S)}"
                      + (f"; {o.eps / TARGET_EVENTS_PER_S:.1f}× the target" if sc.batch > 1 else "") + ")")
                print(f"  p99 {r.p99_ms:.2f} ms   (target < {TARGET_P99_MS:g} ms at {args.connections} "
                      f"connections: {mark(r.p99_ms < TARGET_P99_MS)})")
            print(f"  stored events: {o.check}")
        for note in o.notes:
            print(f"  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per scenario")
    ap.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers (raw app and mallard)")
    ap.add_argument("--batch", type=int, default=100, help="events per POST in the batch scenario")
    ap.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}")
    ap.add_argument("--pool", type=int, default=4096, help="distinct single-event requests in the pool")
    ap.add_argument("--batch-pool", type=int, default=256, help="distinct batch requests in the pool")
    ap.add_argument("--tries", type=int, default=3,
                    help="measured runs at most of a multi-worker ceiling while the load lands on one "
                         "worker (uvicorn's shared socket); the fastest is the ceiling (default 3)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the scenarios this many times in a row; the ratio is the median of the rounds")
    args = ap.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")
    if not 1 <= args.batch <= 1000:
        ap.error("--batch must be 1…1000 (mallard's batch limit)")

    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench_http: wrk is not installed. On Debian/Ubuntu: apt-get update && apt-get install -y wrk "
              "(macOS: brew install wrk)", file=sys.stderr)
        return 2

    n = args.workers
    all_scenarios = {
        "raw": Scenario("raw", "raw", n, 1, f"raw ASGI 202, {n}w (ceiling)"),
        "single": Scenario("single", "mallard", n, 1, f"mallard single events, {n}w"),
        "batch": Scenario("batch", "mallard", n, args.batch, f"mallard batches of {args.batch}, {n}w"),
        "raw1": Scenario("raw1", "raw", 1, 1, "raw ASGI 202, 1w (ceiling)"),
        "single1": Scenario("single1", "mallard", 1, 1, "mallard single events, 1w"),
    }
    if n == 1:
        chosen = [s for s in chosen if s not in ("raw1", "single1")] or chosen
    scenarios = [all_scenarios[s] for s in SCENARIOS if s in chosen]

    print(traffic.describe_machine())
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    print(f"load: {(wrk_version.stdout + wrk_version.stderr).splitlines()[0].strip()}, one thread (-t1), "
          f"{args.connections} keep-alive connections, {args.warmup:g} s warm-up + {args.duration:g} s "
          f"per scenario, on {HOST}")
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"CPU: {os.cpu_count()} CPUs (affinity {affinity}). wrk and the server SHARE them: the servers run "
          f"under `taskset -c 0,1`, wrk unpinned; with 2 cores nothing can be set apart, so the figures "
          f"are what the server does while the load generator takes part of the machine")
    import uvicorn
    from uvicorn.config import Config

    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    cfg = Config("x:y")
    print(f"server: uvicorn {uvicorn.__version__} (loop {cfg.loop} -> {loop}, http {cfg.http} -> {http}) "
          f"for both the raw app and `mallard serve`; mallard settings: defaults (MALLARD_* variables "
          f"removed from the servers' environment)")

    t = time.perf_counter()
    load = Traffic(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="mallard-bench-http-"))
    outcomes: list[Outcome] = []
    try:
        (tmp / "raw").mkdir()
        (tmp / "raw" / "raw_app.py").write_text(RAW_APP)
        scripts: dict[int, Path] = {}
        batches = {s.batch for s in scenarios}
        for b in sorted(batches):
            specs = load.specs(args.pool if b == 1 else args.batch_pool, b)
            scripts[b] = write_lua(tmp, f"load-{b}", specs, args.seed)
            sizes = [len(body) for _, _, body in specs]
            per_event = sum(sizes) / len(sizes) / b
            print(f"requests of {b} event(s): {len(specs):,} distinct, body mean "
                  f"{sum(sizes) / len(sizes):,.0f} "
                  f"bytes ({per_event:,.0f} bytes an event), min {min(sizes):,}, max {max(sizes):,}; "
                  f"{len({ua for ua, _, _ in specs})} User-Agents")
        print(f"pool: {len(load.urls):,} distinct URLs, {len(load.uas)} browser User-Agents (no bots); built "
              f"in {time.perf_counter() - t:.1f} s in {tmp}")
        rounds: list[list[Outcome]] = []
        for k in range(max(1, args.rounds)):
            rounds.append([])
            for sc in scenarios:
                print(f"running {sc.title}{f' (round {k + 1})' if args.rounds > 1 else ''} …", flush=True)
                rounds[-1].append(run_scenario(sc, tmp, scripts, args, wrk))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, outcomes in enumerate(rounds):
        if len(rounds) > 1:
            print(f"\n==== round {k + 1} of {len(rounds)}")
        report(outcomes, args)
    if len(rounds) > 1:
        report_rounds(rounds)
    return 0


def report_rounds(rounds: list[list[Outcome]]) -> None:
    """Each single-event scenario's ratio to its own round's ceiling, and the median over the rounds."""
    print(f"\n==== ratios over {len(rounds)} rounds (each round against its own raw ceiling)")
    for i, sc in enumerate(o.scenario for o in rounds[0]):
        if sc.kind != "mallard" or sc.batch != 1:
            continue
        ratios = []
        for outcomes in rounds:
            ceiling = next((o for o in outcomes if o.scenario.kind == "raw"
                            and o.scenario.workers == sc.workers), None)
            if ceiling is not None:
                ratios.append(outcomes[i].rps / ceiling.rps)
        if not ratios:
            continue
        median = statistics.median(ratios)
        target = f"   (target ≥ {TARGET_RATIO}: {mark(median >= TARGET_RATIO)})" if sc.workers > 1 else ""
        print(f"  {sc.title}: ratios {', '.join(f'{r:.3f}' for r in ratios)}; median {median:.3f}{target}")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
