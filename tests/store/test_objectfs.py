"""What DuckDB reads objects through (mallard/_store/objectfs.py): answers from a listing, small objects
fetched whole once and kept, large ones read in ranges; checked against a real S3 server by its own
request counters."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from mallard._store.objectfs import WHOLE_BYTES, LakeFileSystem, ObjectCache

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
