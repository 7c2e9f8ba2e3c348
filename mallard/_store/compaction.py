"""Compaction: a partition's small files merged into one, swapped in for them under the lake lock
(:meth:`mallard._store.lake.Lake.swap`), so that readers never count a row twice or miss one."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import duckdb

from .._errors import StorageError
from .lake import Lake
from .quarantine import Quarantine, filesystem_failure, is_file_error
from .reader import PROJECTION, READ_PARQUET, TEMPLATE

__all__ = ["merge", "merge_sql"]

log = logging.getLogger("mallard.store")


def _sql_literal(text: str) -> str:
    return text.replace("'", "''")


def merge_sql(target: str) -> str:
    """The statement that writes the files of its one parameter (a list) merged into ``target``: rows
    sorted by time, the full lake schema, ZSTD. DuckDB answers it with the number of rows."""
    return (f"COPY (SELECT {PROJECTION} FROM (SELECT * FROM {TEMPLATE} UNION ALL BY NAME "
            f"SELECT * FROM {READ_PARQUET}) ORDER BY timestamp) TO '{_sql_literal(target)}' "
            f"(FORMAT parquet, COMPRESSION zstd)")


def merge(con: duckdb.DuckDBPyConnection, lake: Lake, quarantine: Quarantine, sources: list[str]) -> bool:
    """Merge ``sources`` (one partition's files) into one; False when one of them is unreadable."""
    directory = Path(sources[0]).parent
    tmp = directory / f".merge-{os.getpid()}-{threading.get_ident()}.parquet.tmp"
    try:
        con.execute(merge_sql(str(tmp)), [sources]).fetchall()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except duckdb.Error as exc:
        tmp.unlink(missing_ok=True)
        bad = quarantine.diagnose(con, sources, exc) if is_file_error(exc) else []
        if not bad:
            raise StorageError(f"Compaction of {directory} failed: {filesystem_failure(exc) or exc}") from exc
        quarantine.move([b for b in bad if quarantine.skip_or_move(b)])
        log.warning("compaction skipped %s: %d unreadable file(s)", directory.relative_to(
            lake.root).as_posix(), len(bad))
        return False
    lake.swap(tmp, sources)
    return True

