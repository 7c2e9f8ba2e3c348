"""Shared state on object storage against PostgreSQL: is a ``state_url`` needed (issue 13)?

With ``lake_url = "s3://…"`` the state every host shares lives in the same bucket, changed only by
conditional writes (docs/scaling.md, "Shared state"). The issue asks whether a ``state_url`` should be
able to point elsewhere, PostgreSQL, "where counters need it". The state written most often is the
failed-login count (``login_failures.json``: a compare-and-swap of the whole document per failure);
the rest (salts once a day, the password, keys, goals) changes a few times a day. So this measures,
with ``--procs`` processes writing at once (hosts, here on one machine), for ``--seconds`` each:

* ``counter``: one shared counter incremented by every process: mallard's ``ObjectDocument.update``
  on SeaweedFS (started here as the tests start it, tests/s3server.py) against ``UPDATE … SET n = n +
  1`` on PostgreSQL 15 (Debian's, started here in a temporary directory as the ``postgres`` user);
* ``failures``: failed logins from new clients, as ``DocumentFailures.record`` writes them (the
  document grows by one entry per failure, up to ``--cap`` entries), against an ``INSERT … ON CONFLICT
  DO UPDATE`` per failure on PostgreSQL;
* ``check``: the check each login makes (``DocumentFailures.entry``: cached up to a second) against a
  ``SELECT`` by key.

Printed per workload and store: operations per second (all processes), the median and 99th percentile
of one operation's latency, the lost races retried (S3), and whether the final count is exact.

Needs ``psycopg`` (``pip install -e '.[state-bench]'``) and Debian's ``postgresql`` package (run as
root: ``initdb`` runs as ``postgres``); without them only the object-storage figures are printed.

Usage::

    python benchmarks/bench_state.py                      # 3 processes, 5 s per workload
    python benchmarks/bench_state.py --procs 6 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import traffic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mallard import Settings
from mallard._auth.failures import DocumentFailures
from mallard._sharedstate import shared_state
from tests.s3server import BUCKET, seaweedfs

PG_BIN = Path("/usr/lib/postgresql/15/bin")


# -- the stores ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def postgres(directory: Path) -> Iterator[str | None]:
    """A PostgreSQL server on a Unix socket under ``directory``; its connection string (None: no
    PostgreSQL or psycopg here)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("postgresql: psycopg is not installed (pip install 'psycopg[binary]'): skipped")
        yield None
        return
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0:
        print("postgresql: Debian's postgresql package and root (to run it as postgres) needed: skipped")
        yield None
        return
    data, sock = directory / "pg", directory / "sock"
    directory.chmod(0o755)  # a temporary directory is root's only: postgres must reach its own below
    for d in (data, sock):
        d.mkdir(parents=True)
        shutil.chown(d, "postgres", "postgres")

    def run(*args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")

    run(str(PG_BIN / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres")
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(sock / "pg.log"), "start",
        "-o", f"-k {sock} -c listen_addresses='' -c fsync=on -c synchronous_commit=on")
    try:
        yield f"host={sock} dbname=postgres user=postgres"
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "stop", "-m", "fast")


# -- one process's loop ------------------------------------------------------------------------------
def _s3_op(workload: str, settings: dict[str, Any], worker: int) -> Callable[[int], None]:
    state = shared_state(Settings(**settings), Path(settings["data_dir"]) / "state")
    if workload == "counter":
        doc = state.document("bench/counter.json", parse=lambda b: int(b), dump=lambda n: str(n).encode(),
                             empty=lambda: 0)
        return lambda i: doc.update(lambda n: n + 1)
    failures = DocumentFailures(state)
    if workload == "failures":
        return lambda i: failures.record(f"w{worker}-{i}", lambda e: (1, 0.0, time.time()),
                                         now=time.time(), cap=10_000)
    return lambda i: failures.entry(f"w{worker}-{i % 50}") and None


def _pg_op(workload: str, dsn: str, worker: int) -> Callable[[int], None]:
    import psycopg

    con = psycopg.connect(dsn, autocommit=True)
    if workload == "counter":
        return lambda i: con.execute("UPDATE bench_counter SET n = n + 1 WHERE id = 1") and None
    if workload == "failures":
        return lambda i: con.execute(
            "INSERT INTO login_failures VALUES (%s, 1, 0, %s) ON CONFLICT (key) DO UPDATE SET "
            "failures = login_failures.failures + 1, updated_at = excluded.updated_at",
            (f"w{worker}-{i}", time.time())) and None
    return lambda i: con.execute("SELECT failures, locked_until, updated_at FROM login_failures "
                                 "WHERE key = %s", (f"w{worker}-{i % 50}",)).fetchone() and None


def _worker(store: str, workload: str, target: Any, worker: int, seconds: float, start: float,
            out: Any) -> None:
    op = _s3_op(workload, target, worker) if store == "s3" else _pg_op(workload, target, worker)
    while time.time() < start:
        time.sleep(0.001)
    latencies: list[float] = []
    end = start + seconds
    i = 0
    while time.time() < end:
        t = time.perf_counter()
        op(i)
        latencies.append(time.perf_counter() - t)
        i += 1
    out.put((worker, latencies))


# -- a workload over all processes -------------------------------------------------------------------
def measure(store: str, workload: str, target: Any, procs: int, seconds: float) -> list[float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 3.0  # every process connected first
    workers = [ctx.Process(target=_worker, args=(store, workload, target, w, seconds, start, out))
               for w in range(procs)]
    for w in workers:
        w.start()
    got = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(30)
    return [lat for _, lats in got for lat in lats]


def _s3_count(settings: dict[str, Any], workload: str) -> int:
    state = shared_state(Settings(**settings), Path(settings["data_dir"]) / "state")
    if workload == "counter":
        return int(state.read("bench/counter.json") or b"0")
    return len(DocumentFailures(state)._doc.read(force=True))


def _pg_count(dsn: str, workload: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        row = con.execute("SELECT n FROM bench_counter" if workload == "counter"
                          else "SELECT count(*) FROM login_failures").fetchone()
    assert row is not None
    return int(row[0])


def _pg_reset(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS bench_counter, login_failures")
        con.execute("CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)")
        con.execute("INSERT INTO bench_counter VALUES (1, 0)")
        con.execute("CREATE TABLE login_failures (key text PRIMARY KEY, failures int NOT NULL, "
                    "locked_until double precision NOT NULL, updated_at double precision NOT NULL)")


def report(store: str, workload: str, latencies: list[float], seconds: float, count: int | None,
           lost: str) -> None:
    ops = len(latencies)
    q = statistics.quantiles(latencies, n=100) if ops > 1 else [latencies[0]] * 99
    exact = "" if count is None else f"; final count {count:,} ({'exact' if count == ops else 'WRONG'})"
    median = statistics.median(latencies) * 1000
    print(f"  {workload:9s} {store:10s} {ops / seconds:9.1f} op/s  median {median:7.2f} ms  "
          f"p99 {q[98] * 1000:7.2f} ms  ({ops:,} ops{exact}{lost})", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=3, help="writing processes (hosts)")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per workload and store")
    args = ap.parse_args(argv)
    print(traffic.describe_machine())
    with tempfile.TemporaryDirectory() as tmp, seaweedfs(Path(tmp) / "weed") as s3, \
            postgres(Path(tmp)) as dsn:
        for workload in ("counter", "failures", "check"):
            prefix = f"state-bench-{uuid.uuid4().hex[:8]}"
            settings = {"data_dir": str(Path(tmp) / prefix), "lake_url": f"s3://{BUCKET}/{prefix}",
                        **s3.options()}
            if dsn is not None:
                _pg_reset(dsn)
            if workload == "check":  # the entries the checks read
                measure("s3", "failures", settings, 1, 0.5)
                if dsn is not None:
                    measure("pg", "failures", dsn, 1, 0.5)
            before = s3.requests()
            lat = measure("s3", workload, settings, args.procs, args.seconds)
            after = s3.requests()
            puts = after.get("PUT", 0) - before.get("PUT", 0)
            lost = f"; {puts - len(lat)} PUTs lost a race and were retried" if workload != "check" else ""
            report("s3", workload, lat, args.seconds,
                   _s3_count(settings, workload) if workload != "check" else None, lost)
            if dsn is not None:
                lat = measure("pg", workload, dsn, args.procs, args.seconds)
                report("postgresql", workload, lat, args.seconds,
                       _pg_count(dsn, workload) if workload != "check" else None, "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
