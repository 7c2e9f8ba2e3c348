"""Writing one lake from many hosts on object storage: mallard's own commit log against Delta Lake and
Apache Iceberg, on SeaweedFS on 127.0.0.1 (started as the tests start it: ``tests/s3server.py``).

The three ways under test, each writing events of mallard's schema (``generate.partition_table``: the
benchmark traffic, so file sizes are those of a real flush):

* ``mlog``: mallard's own protocol (``mallard/_store/objectlog.py``): immutable, uniquely named Parquet
  files under ``events/site_id=…/date=…/`` and a log of commits ``_log/<n>.json``, each created with
  ``If-None-Match: *`` through botocore (pyarrow cannot send that header);
* ``delta``: Delta Lake through ``deltalake`` (delta-rs), ``write_deltalake(mode="append")`` with
  ``conditional_put=etag`` (its commits are conditional creates of ``_delta_log/<n>.json`` too),
  partitioned by ``site_id`` and ``date``; compaction is its ``optimize.compact``;
* ``iceberg``: Apache Iceberg through ``pyiceberg`` and SeaweedFS's own Iceberg REST catalog (a table
  bucket; on AWS that is S3 Tables, elsewhere a catalog server: Iceberg needs one, see the report),
  partitioned by ``site_id`` and ``day(timestamp)``; pyiceberg has no compaction, so a day is compacted
  by ``overwrite`` of its rows, retried when another commit came first.

Measured for each:

1. ``latency``: one process commits ``--appends`` appends of ``--rows`` events (one flush) in turn:
   p50 / p95 of a commit (upload and log);
2. ``concurrent``: ``--writers`` writer processes append ``--commits`` commits each at once: commits per
   second, commits that lost a race and were retried, and then rows lost or stored twice (must be 0);
3. ``race``: the day written in (2) (many small files) is compacted while two writer processes go on
   appending to it and a reader process reads it in a loop: each read must hold every batch
   acknowledged before it exactly once (a batch is ``--rows`` rows with one tag in ``visitor_id``);
   also what a plain listing of the files (a reader that ignores the log) counts before the removed
   files are vacuumed;
4. ``read``: the two days written, read with DuckDB (``read_parquet`` over the snapshot's files, through
   pyarrow's S3 filesystem as mallard reads a lake: DuckDB's delta and iceberg extensions would have
   to be downloaded): median of the snapshot plus the query;
5. ``engines``: whether polars and ClickHouse (chdb) read the table (count of rows).

Usage::

    python benchmarks/bench_lake_formats.py                        # all three
    python benchmarks/bench_lake_formats.py --formats mlog,delta --rows 5000
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import generate
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import traffic

from mallard._store.lake import SCHEMA, site_dir_name
from mallard._store.objectlog import Conflict, Entry, ObjectLog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, seaweedfs

SITE = traffic.SITE_IDS[0]
DAY0 = date(2025, 6, 1)
POOL = 60_000
#: Seconds the writer processes get to start (imports, the pool of events) before they all begin.
START_SECS = 10.0
#: Tries of an Iceberg compaction (an overwrite of the day) before it gives up.
COMPACT_TRIES = 10
TAG = 12  # hex digits of visitor_id that tag a batch: 4 of the writer, 8 of its sequence number


# -- events -------------------------------------------------------------------------------------------
_pool: pa.Table | None = None


def pool() -> pa.Table:
    """POOL events of one day of benchmark traffic (the same in every process: seeded)."""
    global _pool
    if _pool is None:
        vocab = generate.Vocabulary()
        rng = np.random.default_rng(11)
        perm = np.arange(len(vocab.paths_list))
        _pool, _ = generate.partition_table(vocab, rng, SITE, DAY0, POOL, perm, vocab.sources(SITE))
    return _pool


def batch(writer: int, seq: int, rows: int, day: date) -> pa.Table:
    """``rows`` events of ``day`` (a slice of the pool, in time order), every visitor_id tagged with
    (writer, seq) in its first TAG digits."""
    src = pool()
    start = (writer * 7919 + seq * 104_729) % (POOL - rows)
    t = src.slice(start, rows)
    tag = f"{writer:04x}{seq:08x}"
    ids = pc.binary_join_element_wise(pa.scalar(tag), pc.utf8_slice_codeunits(t["visitor_id"], TAG), "")
    shift = pa.scalar((day - DAY0).days * 86_400_000_000, pa.duration("us"))
    t = t.set_column(t.schema.get_field_index("visitor_id"), SCHEMA.field("visitor_id"), ids)
    t = t.set_column(t.schema.get_field_index("timestamp"), SCHEMA.field("timestamp"),
                     pc.add(t["timestamp"], shift))
    return t.cast(SCHEMA)


def tags_of(table: pa.Table) -> Counter[str]:
    counts = pc.value_counts(pc.utf8_slice_codeunits(table["visitor_id"], 0, TAG)).to_pylist()
    return Counter({d["values"]: d["counts"] for d in counts})


# -- the three formats --------------------------------------------------------------------------------
class Format:
    name = ""

    def __init__(self, cfg: dict[str, Any], writer: int = 0) -> None:
        self.cfg = cfg
        self.writer = writer
        self.retries = 0
        self.fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION,
                                    endpoint_override=cfg["endpoint"].removeprefix("http://"),
                                    scheme="http")

    def append(self, table: pa.Table, day: date) -> None:
        raise NotImplementedError

    def files(self, day: date | None) -> list[tuple[str, int]]:
        """The live files (pyarrow paths ``bucket/key``) of the day (None: all), and their sizes."""
        raise NotImplementedError

    def compact(self, day: date) -> str:
        raise NotImplementedError

    def vacuum(self) -> None:
        raise NotImplementedError

    def read_tags(self, day: date) -> Counter[str]:
        paths = [p for p, _ in self.files(day)]
        if not paths:
            return Counter()
        dataset = pq.ParquetDataset(paths, filesystem=self.fs, partitioning=None)
        return tags_of(dataset.read(columns=["visitor_id"]))

    def glob_rows(self, folder: str) -> int:
        """Rows a reader that ignores the log counts: every Parquet object under ``folder``."""
        infos = self.fs.get_file_info(pafs.FileSelector(folder, recursive=True))
        paths = [i.path for i in infos if i.path.endswith(".parquet") and "/_" not in i.path]
        return sum(pq.read_metadata(p, filesystem=self.fs).num_rows for p in paths)


def _client(cfg: dict[str, Any]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=cfg["endpoint"], aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION)


class Mlog(Format):
    name = "mlog"

    def __init__(self, cfg: dict[str, Any], writer: int = 0) -> None:
        super().__init__(cfg, writer)
        self.client = _client(cfg)
        self.log = ObjectLog(self.client, BUCKET, "mlog", writer=f"w{writer}")

    def _upload(self, table: pa.Table, day: date) -> Entry:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        body = sink.getvalue()
        path = (f"events/{site_dir_name(SITE)}/date={day.isoformat()}/"
                f"{time.time_ns() // 1000}-w{self.writer}-{uuid.uuid4().hex[:12]}.parquet")
        assert self.log.put_new(path, body)
        return Entry(path, table.num_rows, len(body))

    def append(self, table: pa.Table, day: date) -> None:
        before = self.log.lost_races
        self.log.commit(add=[self._upload(table, day)])
        self.retries += self.log.lost_races - before

    def files(self, day: date | None) -> list[tuple[str, int]]:
        snap = self.log.snapshot()
        part = None if day is None else f"/date={day.isoformat()}/"
        return [(f"{BUCKET}/mlog/{e.path}", e.bytes) for e in snap.files.values()
                if part is None or part in e.path]

    def compact(self, day: date) -> str:
        snap = self.log.snapshot()
        part = f"/date={day.isoformat()}/"
        sources = [e.path for e in snap.files.values() if part in e.path and e.bytes < 64 << 20]
        if len(sources) < 2:
            return "nothing to merge"
        merged = pq.ParquetDataset([f"{BUCKET}/mlog/{p}" for p in sources], filesystem=self.fs,
                                   partitioning=None).read()
        entry = self._upload(merged.sort_by("timestamp"), day)
        try:
            self.log.commit(add=[entry], remove=sources)
        except Conflict as exc:
            self.client.delete_object(Bucket=BUCKET, Key=f"mlog/{entry.path}")
            return f"conflict: {exc}"
        return f"merged {len(sources)} files"

    def vacuum(self) -> None:
        self.log.vacuum("events/", 0.0)


class Delta(Format):
    name = "delta"

    def __init__(self, cfg: dict[str, Any], writer: int = 0) -> None:
        super().__init__(cfg, writer)
        self.uri = f"s3://{BUCKET}/delta"
        self.so = {"AWS_ENDPOINT_URL": cfg["endpoint"], "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION, "AWS_ALLOW_HTTP": "true",
                   "conditional_put": "etag"}

    def append(self, table: pa.Table, day: date) -> None:
        from deltalake import CommitProperties, WriterProperties, write_deltalake

        table = table.append_column("date", pa.array([day.isoformat()] * table.num_rows, pa.string()))
        while True:
            try:
                write_deltalake(self.uri, table, mode="append", partition_by=["site_id", "date"],
                                storage_options=self.so,
                                writer_properties=WriterProperties(compression="ZSTD"),
                                commit_properties=CommitProperties(max_commit_retries=100))
                return
            except Exception as exc:  # delta-rs retried max_commit_retries times already
                if "ommit" not in str(exc):
                    raise
                self.retries += 1

    def table(self) -> Any:
        from deltalake import DeltaTable

        return DeltaTable(self.uri, storage_options=self.so)

    def files(self, day: date | None) -> list[tuple[str, int]]:
        actions = pa.table(self.table().get_add_actions(flatten=True)).to_pydict()
        out = []
        for path, size, d in zip(actions["path"], actions["size_bytes"], actions["partition.date"],
                                 strict=True):
            if day is None or d == day.isoformat():
                out.append((f"{BUCKET}/delta/{path}", size))
        return out

    def compact(self, day: date) -> str:
        from deltalake import WriterProperties

        m = self.table().optimize.compact(partition_filters=[("date", "=", day.isoformat())],
                                          writer_properties=WriterProperties(compression="ZSTD"))
        return f"merged {m.get('numFilesRemoved')} files into {m.get('numFilesAdded')}"

    def vacuum(self) -> None:
        self.table().vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


class Iceberg(Format):
    name = "iceberg"

    def __init__(self, cfg: dict[str, Any], writer: int = 0) -> None:
        super().__init__(cfg, writer)
        from pyiceberg.catalog.rest import RestCatalog

        self.catalog = RestCatalog("seaweedfs", uri=cfg["iceberg"], warehouse="s3://lake",
                                   credential=f"{ACCESS_KEY}:{SECRET_KEY}",
                                   **{"s3.endpoint": cfg["endpoint"], "s3.access-key-id": ACCESS_KEY,
                                      "s3.secret-access-key": SECRET_KEY, "s3.region": REGION})
        self.tbl = self.catalog.load_table("mallard.events") if writer >= 0 else None

    @staticmethod
    def create(cfg: dict[str, Any]) -> None:
        import boto3
        from pyiceberg.transforms import DayTransform

        boto3.client("s3tables", endpoint_url=cfg["endpoint"], aws_access_key_id=ACCESS_KEY,
                     aws_secret_access_key=SECRET_KEY, region_name=REGION).create_table_bucket(name="lake")
        me = Iceberg(cfg, writer=-1)
        me.catalog.create_namespace("mallard")
        tbl = me.catalog.create_table("mallard.events", schema=SCHEMA)
        with tbl.update_spec() as spec:
            spec.add_identity("site_id")
            spec.add_field("timestamp", DayTransform(), "day")

    def _retrying(self, action: Any, tries: int = 1_000) -> bool:
        """Run ``action`` until it commits (True) or has lost ``tries`` races (False)."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        for _ in range(tries):
            try:
                action()
                return True
            except (CommitFailedException, ValidationException):  # another commit came first
                self.retries += 1
                self.tbl.refresh()
        return False

    def append(self, table: pa.Table, day: date) -> None:
        self._retrying(lambda: self.tbl.append(table))

    def _filter(self, day: date) -> Any:
        from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

        nxt = day + timedelta(days=1)
        return And(GreaterThanOrEqual("timestamp", f"{day.isoformat()}T00:00:00"),
                   LessThan("timestamp", f"{nxt.isoformat()}T00:00:00"))

    def files(self, day: date | None) -> list[tuple[str, int]]:
        self.tbl.refresh()
        scan = self.tbl.scan() if day is None else self.tbl.scan(row_filter=self._filter(day))
        return [(t.file.file_path.removeprefix("s3://"), t.file.file_size_in_bytes)
                for t in scan.plan_files()]

    def compact(self, day: date) -> str:
        def once() -> None:
            self.tbl.refresh()
            rows = self.tbl.scan(row_filter=self._filter(day)).to_arrow().sort_by("timestamp")
            self.tbl.overwrite(rows.cast(SCHEMA), overwrite_filter=self._filter(day))

        before = self.retries
        done = self._retrying(once, tries=COMPACT_TRIES)
        return (f"overwrite of the day {'committed' if done else 'gave up'} after "
                f"{self.retries - before} lost races")

    def vacuum(self) -> None:
        pass  # pyiceberg deletes no data file (expire_snapshots leaves them); not measured


FORMATS: dict[str, type[Format]] = {"mlog": Mlog, "delta": Delta, "iceberg": Iceberg}


# -- worker processes -----------------------------------------------------------------------------------
def writer_proc(fmt: str, cfg: dict[str, Any], writer: int, commits: int, rows: int, day: date,
                acks: str, pause: float, start_at: float, out: Any) -> None:
    try:
        f = FORMATS[fmt](cfg, writer)
        pool()
        time.sleep(max(0.0, start_at - time.time()))  # every writer starts at once
        times = []
        with open(acks, "a") as ack:
            for seq in range(commits):
                t = batch(writer, seq, rows, day)
                t0 = time.perf_counter()
                f.append(t, day)
                times.append(time.perf_counter() - t0)
                ack.write(f"{writer:04x}{seq:08x}\n")
                ack.flush()
                time.sleep(pause)
        out.put((writer, times, f.retries, time.time()))
    except BaseException as exc:
        out.put(exc.__class__.__name__ + ": " + str(exc)[:2000])
        raise


def results_of(q: Any, n: int) -> list[Any]:
    got = [q.get(timeout=900) for _ in range(n)]
    failed = [r for r in got if isinstance(r, str)]
    if failed:
        raise SystemExit(f"a writer process failed: {failed[0]}")
    return got


def reader_proc(fmt: str, cfg: dict[str, Any], day: date, rows: int, acks: list[str], stop: str,
                out: Any) -> None:
    f = FORMATS[fmt](cfg, 99)
    reads = dup = missing = partial = errors = 0
    while not os.path.exists(stop):
        acked: set[str] = set()
        for a in acks:
            if os.path.exists(a):
                acked |= lines(a)
        try:
            seen = f.read_tags(day)
        except Exception:  # a file removed under a reader's older snapshot (not expected: no vacuum)
            errors += 1
            continue
        reads += 1
        dup += sum(1 for n in seen.values() if n > rows)
        partial += sum(1 for n in seen.values() if n % rows)
        missing += sum(1 for a in acked if a not in seen)
    out.put((reads, dup, missing, partial, errors))


# -- the phases -----------------------------------------------------------------------------------------
def lines(path: str) -> set[str]:
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def run_format(fmt: str, cfg: dict[str, Any], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if fmt == "iceberg":
        Iceberg.create(cfg)
    main = FORMATS[fmt](cfg, 0)
    day_a, day_b = DAY0, DAY0 + timedelta(days=1)
    ctx = mp.get_context("spawn")

    # 1. latency of one append, one process
    times = []
    for seq in range(args.appends):
        t = batch(0, seq, args.rows, day_a)
        t0 = time.perf_counter()
        main.append(t, day_a)
        times.append(time.perf_counter() - t0)
    res["latency"] = (pct(times, 50), pct(times, 95))
    print(f"  [{fmt}] latency done", flush=True)

    # 2. concurrent writer processes, all on day_b
    q = ctx.Queue()
    acks = str(work / f"{fmt}-acks-b")
    start_at = time.time() + START_SECS
    procs = [ctx.Process(target=writer_proc, args=(fmt, cfg, w + 1, args.commits, args.rows, day_b, acks,
                                                   0.0, start_at, q)) for w in range(args.writers)]
    for p in procs:
        p.start()
    results = results_of(q, len(procs))
    for p in procs:
        p.join()
    all_times = [t for r in results for t in r[1]]
    wall = max(r[3] for r in results) - start_at
    tags = main.read_tags(day_b)
    expected = lines(acks)
    res["concurrent"] = {
        "commits_per_s": len(all_times) / wall, "p50": pct(all_times, 50), "p95": pct(all_times, 95),
        "retries": sum(r[2] for r in results),
        "lost": sum(1 for a in expected if a not in tags),
        "duplicated": sum(1 for n in tags.values() if n > args.rows),
        "rows": sum(tags.values()), "expected_rows": len(expected) * args.rows,
    }

    print(f"  [{fmt}] concurrent writers done", flush=True)

    # 3. compaction of day_b racing two writers and a reader
    acks_c = str(work / f"{fmt}-acks-c")
    stop = str(work / f"{fmt}-stop")
    rq, wq = ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=reader_proc, args=(fmt, cfg, day_b, args.rows, [acks, acks_c], stop, rq))
    start_at = time.time() + START_SECS
    writers = [ctx.Process(target=writer_proc, args=(fmt, cfg, 10 + w, args.race_commits, args.rows, day_b,
                                                     acks_c, 0.1, start_at, wq)) for w in range(2)]
    reader.start()
    for p in writers:
        p.start()
    time.sleep(max(0.0, start_at + 0.3 - time.time()))
    try:
        files_before = len(main.files(day_b))
        t0 = time.perf_counter()
        outcome = main.compact(day_b)
        compact_s = time.perf_counter() - t0
        wres = results_of(wq, len(writers))
        for p in writers:
            p.join()
        t1 = time.perf_counter()
        outcome2 = main.compact(day_b)
        compact2_s = time.perf_counter() - t1
        time.sleep(0.5)
    finally:
        Path(stop).touch()
    reads, dup, missing, partial, errors = rq.get()
    reader.join()
    tags = main.read_tags(day_b)
    expected = lines(acks) | lines(acks_c)
    folder = {"mlog": f"{BUCKET}/mlog/events", "delta": f"{BUCKET}/delta",
              "iceberg": "lake"}[fmt]
    glob_before = main.glob_rows(folder) if fmt != "iceberg" else None
    main.vacuum()
    glob_after = main.glob_rows(folder) if fmt != "iceberg" else None
    res["race"] = {
        "files_before": files_before, "files_after": len(main.files(day_b)),
        "compact_s": compact_s, "outcome": outcome, "compact2_s": compact2_s, "outcome2": outcome2,
        "writer_retries": sum(r[2] for r in wres), "reads": reads, "dup": dup, "missing": missing,
        "partial": partial, "read_errors": errors,
        "final_lost": sum(1 for a in expected if a not in tags),
        "final_dup": sum(1 for n in tags.values() if n > args.rows),
        "rows": sum(tags.values()), "glob_before_vacuum": glob_before, "glob_after_vacuum": glob_after,
    }

    print(f"  [{fmt}] compaction race done", flush=True)

    # 4. DuckDB over the snapshot's files, days a..c
    res["read"] = duckdb_reads(main, args.runs)
    res["engines"] = engines(fmt, cfg, main)
    return res


def duckdb_reads(f: Format, runs: int) -> dict[str, Any]:
    import duckdb

    from mallard._store.objectfs import LakeFileSystem, ObjectCache

    sql = ("SELECT count(*), count(DISTINCT visitor_id), "
           "(SELECT pathname FROM t GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) FROM t")
    snap_t, query_t, answer = [], [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        files = f.files(None)
        t1 = time.perf_counter()
        known = {p: pafs.FileInfo(p, pafs.FileType.File, size=s, mtime=0) for p, s in files}
        con = duckdb.connect()
        con.register_filesystem(LakeFileSystem(f.fs, lambda p, k=known: k.get(p.removeprefix("s3://")),
                                               ObjectCache(), skip_instance_cache=True))
        listed = ", ".join(f"'s3://{p}'" for p, _ in files)
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
        answer = con.execute(sql).fetchone()
        t2 = time.perf_counter()
        snap_t.append(t1 - t0)
        query_t.append(t2 - t1)
        con.close()
    return {"files": len(files), "snapshot_ms": statistics.median(snap_t) * 1000,
            "query_ms": statistics.median(query_t) * 1000, "answer": answer}


def engines(fmt: str, cfg: dict[str, Any], f: Format) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        import polars as pl

        if fmt == "delta":
            assert isinstance(f, Delta)
            n = pl.read_delta(f.uri, storage_options=f.so).height
        elif fmt == "iceberg":
            assert isinstance(f, Iceberg)
            f.tbl.refresh()
            n = pl.scan_iceberg(f.tbl).select(pl.len()).collect().item()
        else:
            n = "only through the log (mallard) or a plain glob of the files"
        out["polars"] = str(n)
    except Exception as exc:
        out["polars"] = f"error: {type(exc).__name__}: {str(exc)[:160]}"
    try:
        import chdb

        ep = cfg["endpoint"]
        if fmt == "delta":
            q = f"SELECT count() FROM deltaLake('{ep}/{BUCKET}/delta/', '{ACCESS_KEY}', '{SECRET_KEY}')"
        elif fmt == "iceberg":
            q = (f"SELECT count() FROM icebergS3('{ep}/lake/mallard/events/', '{ACCESS_KEY}', "
                 f"'{SECRET_KEY}')")
        else:
            q = (f"SELECT count() FROM s3('{ep}/{BUCKET}/mlog/events/**.parquet', '{ACCESS_KEY}', "
                 f"'{SECRET_KEY}', 'Parquet')")
        out["clickhouse"] = chdb.query(q, "CSV").data().strip()
    except Exception as exc:
        out["clickhouse"] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", default="mlog,delta,iceberg")
    ap.add_argument("--rows", type=int, default=2000, help="events per append (one flush)")
    ap.add_argument("--appends", type=int, default=30, help="appends of the latency phase")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--commits", type=int, default=20, help="commits per concurrent writer")
    ap.add_argument("--race-commits", type=int, default=20, help="commits per writer during compaction")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(traffic.describe_machine())
    print(f"load: {os.getloadavg()}")
    pool()
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory() as d, seaweedfs(Path(d) / "s3", iceberg=fmt == "iceberg") as srv:
            cfg = {"endpoint": srv.endpoint, "iceberg": srv.iceberg}
            before = srv.requests()
            res = run_format(fmt, cfg, args, Path(d))
            after = srv.requests()
            reqs = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
        lat = res["latency"]
        c = res["concurrent"]
        r = res["race"]
        rd = res["read"]
        print(f"\n== {fmt} ({args.rows} events per append)")
        print(f"  append latency, 1 process: p50 {lat[0]:.0f} ms, p95 {lat[1]:.0f} ms")
        print(f"  {args.writers} writer processes x {args.commits} commits: "
              f"{c['commits_per_s']:.1f} commits/s, p50 {c['p50']:.0f} ms, p95 {c['p95']:.0f} ms, "
              f"{c['retries']} lost races retried; rows {c['rows']} of {c['expected_rows']}, "
              f"batches lost {c['lost']}, duplicated {c['duplicated']}")
        print(f"  compaction of {r['files_before']} files racing 2 writers + a reader: {r['outcome']} in "
              f"{r['compact_s']:.2f} s; again after the writers: {r['outcome2']} in {r['compact2_s']:.2f} s; "
              f"files left {r['files_after']}; writer retries {r['writer_retries']}")
        print(f"  reader: {r['reads']} reads, batches twice {r['dup']}, acknowledged missing {r['missing']}, "
              f"partial {r['partial']}, read errors {r['read_errors']}; final lost {r['final_lost']}, "
              f"duplicated {r['final_dup']}, rows {r['rows']}")
        print(f"  a plain listing of the files counts {r['glob_before_vacuum']} rows before vacuum, "
              f"{r['glob_after_vacuum']} after (the log: {r['rows'] + args.appends * args.rows})")
        print(f"  DuckDB, the 2 days ({rd['files']} files): snapshot {rd['snapshot_ms']:.0f} ms + query "
              f"{rd['query_ms']:.0f} ms (median of {args.runs}); answer {rd['answer']}")
        print(f"  engines: {res['engines']}")
        print(f"  S3 requests: {reqs}")


if __name__ == "__main__":
    main()
