"""Helpers that build a small lake and damage one of its files the ways disks and tools do.

``build_lake`` writes one mallard Parquet file per day (through :meth:`Store.write_batch`, so they are
real mallard-written files). ``truncate`` cuts a file in half (its footer is gone); ``garble``
overwrites the first page header of every column chunk in place, so the footer still reads but no page
decodes. ``age`` moves a file's modification time back past the quarantine grace period.
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from mallard import Store

from .factories import make_event

__all__ = ["SITE", "age", "build_lake", "garble", "is_undecodable", "truncate"]

SITE = "q.example"
PAGES = ("/a", "/b", "/c", "/d")


def build_lake(store: Store, days: list[date], *, per_day: int = 40) -> dict[date, Path]:
    """One new file per day (returned): visitors and pages that differ per day, several views per
    visitor."""
    files: dict[date, Path] = {}
    for n, day in enumerate(days):
        start = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
        events = [make_event(site_id=SITE, visitor_id=f"{n:032x}{i % 7:032x}",
                             timestamp=start + timedelta(minutes=3 * i + (i % 7) * 37),
                             pathname=PAGES[(i + n) % len(PAGES)])
                  for i in range(per_day + 10 * n)]
        before = set(store.lake.files(SITE, day, day))
        store.write_batch(events)()
        [final] = set(store.lake.files(SITE, day, day)) - before
        files[day] = Path(final)
    return files


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    """Overwrite the first page header of every column chunk: the footer stays intact."""
    meta = pq.read_metadata(path)
    data = bytearray(path.read_bytes())
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            offset = col.dictionary_page_offset if col.has_dictionary_page and \
                col.dictionary_page_offset else col.data_page_offset
            data[offset:offset + 16] = b"\xff" * 16
    with open(path, "r+b") as f:  # in place, as a failing disk would
        f.write(data)


def is_undecodable(path: Path) -> bool:
    """The footer reads (pyarrow) but DuckDB fails to decode the rows."""
    pq.read_metadata(path)
    try:
        duckdb.sql("SELECT sum(hash(t)) FROM read_parquet(?) AS t", params=[[str(path)]]).fetchall()
    except duckdb.Error:
        return True
    return False


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))
