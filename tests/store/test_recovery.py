"""Recovery of processes that are gone: commit records of live and killed writers, unborn segments."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from typing import Any

from mallard import EventBuffer, Store
from mallard._events import Event
from mallard._store.spool import Spool, encode

from ..factories import make_event, make_events
from .conftest import (
    count,
)


def test_recovery_leaves_the_commit_record_of_a_live_process_alone(store: Store) -> None:
    """Another process starts (and recovers) while this one is between publishing a batch and deleting
    its spool segment: it must neither replay the segment nor act on the commit record."""
    journal = store.journal()
    recovered: list[int] = []

    def sink(batch: Sequence[Event]) -> Any:
        publish = store.write_batch(batch)

        def publish_then_someone_recovers() -> None:
            publish()
            assert any(p.name.endswith(".commit") for p in store.spool_dir.iterdir())
            other = Store(store.data_dir)
            try:
                recovered.append(other.recover())
            finally:
                other.close()
            assert any(p.name.endswith(".commit") for p in store.spool_dir.iterdir())

        return publish_then_someone_recovers

    buf = EventBuffer(sink, journal=journal, flush_at=10**6, flush_interval=3600)
    for e in make_events(5) + make_events(3, site_id="a:b"):
        buf.offer(e)
    assert buf.flush() == 8
    assert recovered == [0]
    assert buf.close(1)
    assert count(store) == 8
    assert list(store.spool_dir.iterdir()) == []


def test_recovery_removes_the_half_written_commit_record_of_a_killed_writer(store: Store) -> None:
    """A writer killed between writing its commit record and renaming it leaves ``.commit.tmp``: the
    publish never happened, so its segment is replayed and the stale record deleted; a live writer's
    record in the same state is left alone."""
    dead = "vm-4242-abcdef"
    (store.spool_dir / f"{dead}.0").write_bytes(b"".join(encode(e) for e in make_events(3)))
    (store.spool_dir / f".{dead}.commit.tmp").write_bytes(b'{"segments": ["vm-42')  # cut short
    (store.spool_dir / f".{dead}.0.recovered.commit.tmp").write_bytes(b"")
    live = Spool(store.spool_dir)  # another process, alive: it holds the lock of its segment
    try:
        live.append(make_event())
        [segment] = [p.name for p in store.spool_dir.iterdir() if p.name[0] != "." and dead not in p.name]
        live_tmp = store.spool_dir / f".{segment.rsplit('.', 1)[0]}.commit.tmp"
        live_tmp.write_bytes(b"{")
        other = Store(store.data_dir)
        try:
            assert other.recover() == 3
        finally:
            other.close()
        assert sorted(p.name for p in store.spool_dir.glob(".*")) == [live_tmp.name]
        assert count(store) == 3
    finally:
        live.close()


def test_recovery_removes_the_unborn_segment_of_a_writer_killed_while_opening_it(store: Store) -> None:
    """A writer killed between creating its next segment under a hidden name and renaming it leaves
    ``.<segment>.new`` (empty: nothing is appended before the rename); recovery deletes it, and a live
    writer's segment, locked, is left alone. (CI found one left behind by a gunicorn worker killed with
    SIGKILL.)"""
    unborn = store.spool_dir / ".vm-4242-abcdef.3.new"
    unborn.write_bytes(b"\0" * 4096)
    live = Spool(store.spool_dir)  # another process, alive, whose segment is locked
    try:
        live.append(make_event())
        held = store.spool_dir / ".vm-4343-fedcba.1.new"
        held_fd = os.open(held, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(held_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a writer between lock and rename
        other = Store(store.data_dir)
        try:
            other.recover()
        finally:
            other.close()
        assert sorted(p.name for p in store.spool_dir.glob(".*")) == [held.name]
        os.close(held_fd)
    finally:
        live.close()
