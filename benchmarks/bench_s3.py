"""One 30-day dashboard view over a lake on local disk and over the same lake on S3-compatible object
storage (SeaweedFS on 127.0.0.1, started here as the tests start it: ``tests/s3server.py``), with each
of mallard's engines.

The lake is ``bench_dashboard.py``'s (one dominant site over 42 days, sessions and rollups stored), or
``--lake PATH``. It is uploaded to the bucket with ``pyarrow.fs.copy_files``; then the queries of one
dashboard load (``bench_dashboard.VIEW``: main, sessions, timeseries and the first tab of each breakdown
panel) and the behavioural analyses (funnel, sequences, retention, flow) run, in turn, over each variant,
an engine of ``--engines`` (``duckdb``, ``clickhouse``) and a place:

* ``local``: ``mallard.open(path, engine=…)``;
* ``s3``: ``mallard.open("s3://…", engine=…)`` as shipped: DuckDB reads the objects through pyarrow's
  ``S3FileSystem`` registered as an fsspec filesystem (``register_filesystem``); ClickHouse (chdb)
  through its own ``s3()`` table function (mallard/_queries/clickhouse_lake.py);
* ``s3-datasets`` (DuckDB, with ``--datasets``; a prototype, for the comparison): the same, but every
  ``read_parquet(?)`` of a statement is replaced by a pyarrow dataset over the same objects, handed to
  DuckDB as an Arrow relation (DuckDB pushes its projections and filters into pyarrow's scanner).

Each variant: a warm-up view, then ``--runs`` timed views on the same ``Queries`` (warm: what a worker
computed in memory is reused), and ``--runs`` views each on a fresh ``mallard.open()`` (cold). The
variants alternate within each run (their order rotated from run to run). Printed: the median and min
of each view's total and of each query, the S3 requests each view and analyses made (SeaweedFS's own
counters: a store farther away than the loopback pays its latency on each), and whether every
variant's answers equal DuckDB's on the local lake (floats to 1e-9, as the differential tests compare).

Usage::

    python benchmarks/bench_s3.py                          # the 1m dashboard lake, 5 runs, DuckDB
    python benchmarks/bench_s3.py --lake benchmarks/.data/dashboard-1m --runs 7 --datasets
    python benchmarks/bench_s3.py --engines duckdb,clickhouse --runs 3
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import bench_dashboard
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import traffic

import mallard
from mallard._store import Store
from mallard._store.lake import SCHEMA
from mallard._store.reader import Reader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.queries.dialect_check import same  # the differential tests' comparison
from tests.s3server import seaweedfs

ANALYSES = ("funnel", "sequences", "retention", "flow")
ENGINES = ("duckdb", "clickhouse")
_CALL = re.compile(r"read_parquet\(\?[^)]*\)|\?")


def ask(q: mallard.Queries, site: str, name: str, rng: dict[str, str]) -> Any:
    if name == "funnel":
        return q.funnel(site, ["page:/", "event:Signup"], window="1 day", **rng)
    if name == "sequences":  # as bench_engines.py asks it
        return q.sequences(site, ["page:/pricing", "page:/signup", "event:Signup"], **rng)
    if name == "retention":
        return q.retention(site, weeks=4, **rng)
    if name == "flow":
        return q.flow(site, "/", **rng)
    return bench_dashboard.mallard_call(q, site, name, rng, None)()


# -- the datasets prototype --------------------------------------------------------------------------
def _dataset(fs: pafs.FileSystem, paths: Sequence[str], events: bool) -> ds.Dataset:
    keys = [p.removeprefix("s3://") for p in paths]
    if events:  # site_id is in the files; the date only in the path
        schema = SCHEMA.append(pa.field("date", pa.string()))
        hive = pa.schema([("date", pa.string())])
    else:  # derived rows: site_id and date only in the path
        schema = pq.read_schema(keys[0], filesystem=fs)
        hive = pa.schema([("site_id", pa.string()), ("date", pa.string())])
        schema = pa.unify_schemas([schema, hive])
    base = keys[0].split("/site_id=")[0]
    return ds.dataset(keys, schema=schema, format="parquet", filesystem=fs, partition_base_dir=base,
                      partitioning=ds.partitioning(hive, flavor="hive"))


def datasets_execute(fs: pafs.FileSystem) -> Callable[..., pa.Table]:
    """``Reader.execute`` with each ``read_parquet(?)`` of ``s3://`` paths replaced by a dataset."""
    original = Reader.execute

    def execute(self: Reader, sql: str, params: Sequence[object] = ()) -> pa.Table:
        values, kept, text, pos, views = list(params), [], [], 0, []
        for i, m in enumerate(_CALL.finditer(sql)):
            text.append(sql[pos:m.start()])
            pos = m.end()
            value = values[i]
            if m.group(0) != "?" and isinstance(value, list) and value and str(value[0]).startswith("s3://"):
                name = f"__bench_ds_{id(self)}_{i}"
                self._con.register(name, _dataset(fs, value, "union_by_name" in m.group(0)))
                views.append(name)
                text.append(name)
            else:
                text.append(m.group(0))
                kept.append(value)
        text.append(sql[pos:])
        try:
            return original(self, "".join(text), kept)
        finally:
            for name in views:
                self._con.unregister(name)

    return execute


def _median(counts: list[dict[str, int]], kind: str) -> float:
    return statistics.median(c.get(kind, 0) for c in counts)


# -- timing ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1m", help="the dashboard lake's size (bench_dashboard.py)")
    ap.add_argument("--lake", type=Path, default=None, help="use this data directory instead")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engines", default="duckdb", help="comma-separated engines: duckdb, clickhouse")
    ap.add_argument("--datasets", action="store_true", help="also the s3-datasets prototype (DuckDB)")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or set(engines) - set(ENGINES):
        ap.error(f"--engines takes some of {', '.join(ENGINES)}")
    print(traffic.describe_machine())
    path = args.lake or bench_dashboard.DATA / f"dashboard-{args.size}"
    if args.lake is None:
        bench_dashboard.prepare(path, args.size)
    local = mallard.open(path)
    site = max(local.sites(), key=lambda s: local.main(s, period="all")["total_events"])
    end = max(Store(path, read_only=True).lake.dates(site))
    rng = {"start_date": (end - timedelta(days=bench_dashboard.VIEW_DAYS - 1)).isoformat(),
           "end_date": end.isoformat()}
    names = (*bench_dashboard.VIEW, *ANALYSES)
    variants = [f"{e} {where}" for e in engines for where in ("local", "s3")]
    if args.datasets:
        variants.append("duckdb s3-datasets")
    with tempfile.TemporaryDirectory() as tmp, seaweedfs(Path(tmp)) as server:
        t = time.perf_counter()
        url = server.upload(path, "lake")
        size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
        print(f"lake {path} ({size:,} bytes of Parquet) uploaded in {time.perf_counter() - t:.1f} s; "
              f"view {rng['start_date']}..{rng['end_date']} of {site}; load average "
              f"{bench_dashboard.load_average()}", flush=True)
        fs = server.filesystem()
        patched = datasets_execute(fs)

        def opened(variant: str) -> mallard.Queries:
            engine, where = variant.split(" ")
            if where == "local":
                return mallard.open(path, engine=engine)
            return mallard.open(url, engine=engine, **server.options())

        def view(q: mallard.Queries, variant: str, timings: dict[str, list[float]],
                 requests: dict[str, list[dict[str, int]]] | None = None) -> dict[str, Any]:
            out = {}
            original = Reader.execute
            if variant.endswith("s3-datasets"):
                Reader.execute = patched  # type: ignore[method-assign]
            try:
                for label, group in (("view", bench_dashboard.VIEW), ("analyses", ANALYSES)):
                    before = server.requests()
                    for name in group:
                        t = time.perf_counter()
                        out[name] = ask(q, site, name, rng).to_dict()
                        timings.setdefault(name, []).append(time.perf_counter() - t)
                    if requests is not None:
                        after = server.requests()
                        requests.setdefault(label, []).append(
                            {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)})
            finally:
                Reader.execute = original  # type: ignore[method-assign]
            return out

        warm_q = {v: opened(v) for v in variants}
        reference = view(local, "duckdb local", {})
        different = {v: [n for n, got in view(warm_q[v], v, {}).items() if not same(got, reference[n])]
                     for v in variants}  # the warm-up, and the answers compared
        if any(different.values()):
            print("answers: DIFFERENT from duckdb local: " + "; ".join(
                f"{v}: {', '.join(d)}" for v, d in different.items() if d))
        else:
            print("answers: every variant equals duckdb local")
        width = max(22, max(len(v) for v in variants) + 2)
        for mode in ("warm", "cold"):
            timings: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
            requests: dict[str, dict[str, list[dict[str, int]]]] = {v: {} for v in variants}
            for i in range(args.runs):
                k = i % len(variants)
                for v in variants[k:] + variants[:k]:  # rotate the order
                    q = warm_q[v] if mode == "warm" else opened(v)
                    view(q, v, timings[v], requests[v])
                    if mode == "cold":
                        q.close()
            print(f"\n== {mode} ({args.runs} runs): median (min) seconds; load average "
                  f"{bench_dashboard.load_average()}")
            print(f"{'query':14s}" + "".join(f"{v:>{width}s}" for v in variants))
            for name in names:
                print(f"{name:14s}" + "".join(
                    f"{statistics.median(timings[v][name]):{width - 9}.3f} ({min(timings[v][name]):.3f})"
                    for v in variants))
            for label, group in (("view", bench_dashboard.VIEW), ("analyses", ANALYSES)):
                totals = {v: [sum(timings[v][n][i] for n in group) for i in range(args.runs)]
                          for v in variants}
                print(f"{label:14s}" + "".join(
                    f"{statistics.median(totals[v]):{width - 9}.3f} ({min(totals[v]):.3f})"
                    for v in variants))
            for label in ("view", "analyses"):
                print(f"S3 requests of the {label} (median): " + "; ".join(
                    f"{v} " + ", ".join(f"{kind} {_median(requests[v][label], kind):.0f}"
                                        for kind in sorted({k for r in requests[v][label] for k in r}))
                    for v in variants if " s3" in v))
        for q in warm_q.values():
            q.close()
    return 1 if any(different.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
