"""What DuckDB reads objects through (mallard/_store/objectfs.py): answers from a listing, small objects
fetched whole once and kept, large ones read in ranges; checked against a real S3 server by its own
request counters."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from mallard import StorageError
from mallard._store.lake import Lake
from mallard._store.objectfs import WHOLE_BYTES, LakeFileSystem, ObjectCache
from mallard._store.quarantine import Quarantine, filesystem_failure, is_file_error
from mallard._store.reader import Reader

from ..s3server import BUCKET, S3Server


def test_the_cache_drops_the_least_recently_used_past_its_capacity() -> None:
    cache = ObjectCache(capacity=10)
    cache.put("a", pa.py_buffer(b"aaaa"))
    cache.put("b", pa.py_buffer(b"bbbb"))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", pa.py_buffer(b"cccc"))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.size == 8
    cache.put("huge", pa.py_buffer(b"x" * 11))  # larger than the whole cache: not kept
    assert cache.get("huge") is None and cache.size == 8


@pytest.fixture
def objects(s3_server: S3Server, tmp_path: Path) -> Iterator[tuple[LakeFileSystem, dict[str, pafs.FileInfo]]]:
    """A small Parquet object and a large plain one in the bucket, and a LakeFileSystem that knows both
    (as a listing would)."""
    local = tmp_path / "objects"
    local.mkdir()
    pq.write_table(pa.table({"n": list(range(1000))}), local / "small.parquet")
    (local / "large.bin").write_bytes(os.urandom(WHOLE_BYTES + 1))
    s3_server.upload(local, "objectfs")
    fs = s3_server.filesystem()
    infos = {i.path: i for i in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/objectfs"))}
    yield LakeFileSystem(fs, lambda p: infos.get(p.removeprefix("s3://")), ObjectCache(),
                         skip_instance_cache=True), infos


@pytest.mark.slow
def test_listed_files_are_described_without_a_request(
        s3_server: S3Server, objects: tuple[LakeFileSystem, dict[str, pafs.FileInfo]]) -> None:
    lfs, infos = objects
    path = f"s3://{BUCKET}/objectfs/small.parquet"
    before = s3_server.requests()
    assert lfs.info(path)["size"] == infos[path[5:]].size
    assert lfs.exists(path) and lfs.size(path) == infos[path[5:]].size
    assert lfs.modified(path) == infos[path[5:]].mtime
    assert lfs.glob(path) == [path[5:]]
    assert s3_server.requests() == before
    assert not lfs.exists(f"s3://{BUCKET}/objectfs/unlisted.parquet")  # asked of the store
    assert s3_server.requests() != before


@pytest.mark.slow
def test_duckdb_reads_a_small_object_once(s3_server: S3Server,
                                          objects: tuple[LakeFileSystem, dict[str, pafs.FileInfo]]) -> None:
    lfs, infos = objects
    con = duckdb.connect()
    con.register_filesystem(lfs)
    path = f"s3://{BUCKET}/objectfs/small.parquet"
    sql = "SELECT sum(n) FROM read_parquet(?)"
    assert con.execute(sql, [[path]]).fetchall() == [(499500,)]
    before = s3_server.requests()
    assert con.execute(sql, [[path]]).fetchall() == [(499500,)]
    assert s3_server.requests() == before
    assert lfs.cache.get(path[5:]) is not None and lfs.cache.size == infos[path[5:]].size


@pytest.mark.slow
def test_a_large_object_is_read_in_ranges_and_not_kept(
        objects: tuple[LakeFileSystem, dict[str, pafs.FileInfo]], tmp_path: Path) -> None:
    lfs, _ = objects
    path = f"s3://{BUCKET}/objectfs/large.bin"
    expected = (tmp_path / "objects" / "large.bin").read_bytes()
    with lfs.open(path, "rb") as f:
        f.seek(WHOLE_BYTES - 10)
        assert f.read(11) == expected[-11:]
        f.seek(0)
        assert f.read(100) == expected[:100]
    assert lfs.cache.get(path[5:]) is None


class _Local(LakeFileSystem):  # type: ignore[misc]
    protocol = "lakefs-test"


def test_duckdb_reads_files_from_many_threads_through_one_handle_each(tmp_path: Path) -> None:
    """DuckDB reads the row groups of one file from several threads through one handle: every read is
    exact, for files fetched whole and files read in ranges alike (with a single position per handle,
    threads read from where another had seeked: short reads, decompression failures, or a file
    skipped as unreadable). Local files stand in for objects: the handles are the same."""
    rng = np.random.default_rng(7)
    words = np.array([f"/page/{i}/{'x' * (i % 40)}" for i in range(5000)])
    paths = []
    for i in range(2):  # fewer files than threads: threads share a file
        n = 300_000
        table = pa.table({"n": np.arange(n, dtype=np.int64) + i * n,
                          **{f"page{c}": words[rng.integers(0, len(words), n)] for c in range(4)},
                          "value": rng.random(n)})
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(table, path, row_group_size=10_000, compression="zstd")
        paths.append(path)
    local = pafs.LocalFileSystem()
    infos = {str(paths[0]): local.get_file_info(str(paths[0]))}  # the other: read in ranges
    lfs = _Local(local, lambda p: infos.get(p.removeprefix("lakefs-test://")), ObjectCache(),
                 skip_instance_cache=True)
    sql = ("SELECT count(*), sum(n), sum(length(page0) + length(page1) + length(page2) + length(page3)), "
           "sum(value) FROM read_parquet(?)")
    expected = duckdb.connect().execute(sql, [[str(p) for p in paths]]).fetchall()
    con = duckdb.connect(config={"threads": 4})
    con.register_filesystem(lfs)
    for _ in range(6):  # a race: the old handles failed within a few reads (more often than not)
        got = con.execute(sql, [[f"lakefs-test://{p}" for p in paths]]).fetchall()
        assert got[0][:3] == expected[0][:3] and got[0][3] == pytest.approx(expected[0][3])
    assert lfs.cache.get(str(paths[0])) is not None and lfs.cache.get(str(paths[1])) is None


@pytest.mark.parametrize("known", [True, False], ids=["whole", "ranges"])
def test_each_thread_reads_from_where_it_seeked(tmp_path: Path, known: bool) -> None:
    """Two threads seek one handle to different places, then read: each reads from its own place, the
    exact number of bytes asked (up to the end)."""
    path = tmp_path / "data.bin"
    data = os.urandom(100_000)
    path.write_bytes(data)
    local = pafs.LocalFileSystem()
    info = local.get_file_info(str(path))
    lfs = _Local(local, lambda p: info if known else None, ObjectCache(), skip_instance_cache=True)
    handle = lfs.open(f"lakefs-test://{path}", "rb")
    both = threading.Barrier(2, timeout=10)
    got: dict[int, bytes] = {}

    def reader(at: int) -> None:
        handle.seek(at)
        both.wait()  # both have seeked before either reads
        got[at] = handle.read(5_000) + handle.read(5_000)

    threads = [threading.Thread(target=reader, args=(at,)) for at in (0, 95_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: data[:10_000], 95_000: data[95_000:]}
    handle.seek(-10, 2)
    assert handle.tell() == 99_990 and handle.read() == data[-10:] and handle.read(5) == b""
    handle.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_store_that_fails_a_read_is_a_storage_error_not_a_damaged_file(tmp_path: Path) -> None:
    """A store that does not answer (here: nothing listens on its port) fails DuckDB's read with an
    untyped error whose message is pyarrow's Python traceback. That is no damaged file: no diagnosis,
    nothing left out or moved, and the reading says why in a StorageError without the traceback."""
    store = pafs.S3FileSystem(access_key="k", secret_key="s", region="us-east-1", scheme="http",
                              endpoint_override=f"127.0.0.1:{_closed_port()}", connect_timeout=1,
                              retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1))
    listed = pafs.FileInfo("bucket/events/a.parquet", type=pafs.FileType.File, size=1000)
    lfs = LakeFileSystem(store, lambda p: listed, ObjectCache(), skip_instance_cache=True)
    con = duckdb.connect()
    con.register_filesystem(lfs)
    files = [f"s3://{listed.path}"]
    with pytest.raises(duckdb.Error) as raised:
        con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()
    assert str(raised.value).startswith("Traceback")  # what DuckDB makes of a Python exception
    failure = filesystem_failure(raised.value)
    assert failure is not None and failure.startswith("OSError: ") and "Traceback" not in failure
    assert not is_file_error(raised.value)

    lake = Lake(tmp_path, tmp_path / "lake.lock")
    reader = Reader(con, files, None, None, "v", Quarantine(lake, tmp_path / "quarantine", grace_secs=0))
    with pytest.raises(StorageError) as said:
        reader.execute("SELECT count(*) FROM read_parquet(?)", [files])
    # the same failure (the two connection attempts' messages differ only in how many ms they took)
    def timeless(text: str) -> str:
        return re.sub(r"after \d+ ms", "after N ms", text)

    assert timeless(str(said.value)) == timeless(f"Cannot read the lake: {failure}")
    assert "Traceback" not in str(said.value)
    assert reader.files == tuple(files) and reader.excluded == 0 and reader.doomed == []


def test_a_damaged_or_missing_file_is_still_a_file_error(tmp_path: Path) -> None:
    local = pafs.LocalFileSystem()
    pq.write_table(pa.table({"n": list(range(1000))}), tmp_path / "whole.parquet")
    body = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(body[: len(body) // 2])
    lfs = _Local(local, lambda p: None, ObjectCache(), skip_instance_cache=True)
    con = duckdb.connect()
    con.register_filesystem(lfs)
    for name in ("cut.parquet", "gone.parquet"):
        with pytest.raises(duckdb.Error) as raised:
            con.execute("SELECT count(*) FROM read_parquet(?)", [[f"lakefs-test://{tmp_path / name}"]])
        assert filesystem_failure(raised.value) is None and is_file_error(raised.value), name
