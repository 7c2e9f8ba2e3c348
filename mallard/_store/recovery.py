"""Replaying what processes that are gone left in the spool (spool.py): their commit records and
segments.

A segment whose ``flock`` can be taken belongs to a process that is gone: :func:`orphans` yields those,
locked, so that the Store replays their events into the lake and deletes them. A commit record left by a
publish that was interrupted is completed by :func:`finish_commits` instead (its batch's files are
renamed into place and its segments deleted: replaying them would store the batch twice). On object
storage a record names the objects of a commit to the log whose outcome the writer did not learn (it
died, or the store stopped answering): ``published`` says whether the log holds them, and the record's
segments are deleted if so, else replayed.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Final

import orjson

from .._events import Event
from .spool import decode, lock_segment

__all__ = ["Orphan", "finish_commits", "orphans", "read_segment"]

log = logging.getLogger("mallard.store")


def read_segment(path: Path) -> Iterator[Event]:
    """The events of a segment file; a torn last line (a kill mid-copy, power loss) and the zeros after
    the last event of a segment that was never finished are skipped."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n") or line[0] == 0:
                continue
            try:
                yield decode(line)
            except (ValueError, IndexError, TypeError):
                continue


class Orphan:
    """A spool segment of a process that is gone; locked by us while we replay it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def events(self) -> Iterator[Event]:
        """The segment's events (see :func:`read_segment`)."""
        return read_segment(self.path)

    def written_at(self) -> float:
        """When the segment was last written (epoch seconds; its modification time)."""
        return os.fstat(self._fd).st_mtime

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def release(self) -> None:
        os.close(self._fd)


def finish_commits(directory: Path, published: Callable[[Sequence[str]], bool] | None = None) -> int:
    """Complete publishes interrupted by a crash: rename the temporary files still in place and delete
    the segments, whose events are then in the lake. Records of live processes (their segments are
    locked) are left alone. A record of objects (``keys``) asks ``published``: if they were committed
    its segments are deleted, else only the record (the segments are then replayed as orphans).
    Returns the number of records completed."""
    _remove_unfinished_records(directory)
    _remove_unborn_segments(directory)
    done = 0
    for record in sorted(directory.glob(".*.commit")):
        try:
            spec = orjson.loads(record.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, orjson.JSONDecodeError):  # written atomically: not ours
            continue
        segments = [directory / name for name in spec["segments"]]
        owner = [directory / spec["owner"]] if spec.get("owner") else []
        fds: list[int] = []
        try:
            busy = False
            for segment in owner + segments:
                try:
                    fd = os.open(segment, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                fds.append(fd)
                if not lock_segment(fd):
                    busy = True
                    break
            if busy:
                continue
            keys = spec.get("keys")
            if keys and (published is None or not published(keys)):
                record.unlink(missing_ok=True)  # not committed: its segments replay as orphans
                continue
            for tmp, final in spec["files"]:
                with suppress(FileNotFoundError):  # published already (or erased since)
                    os.rename(tmp, final)
            for segment in segments:
                segment.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            done += 1
        finally:
            for fd in fds:
                os.close(fd)
    return done


_WRITER: Final = re.compile(r"\.(.+?-\d+-[0-9a-f]{6})\.")


def _remove_unfinished_records(directory: Path) -> None:
    """Delete the ``.commit.tmp`` of writers that are gone (killed between writing and renaming it).

    The rename had not happened, so neither had the publish: the segments are replayed as orphans and
    the half-written record means nothing. A writer writes its record while it holds the locks of the
    segments it names, so a record whose writer has no locked segment left is stale. (Replay records
    are written under the recovery lock the caller holds, so a leftover one is always stale.)"""
    for tmp in directory.glob(".*.commit.tmp"):
        writer = _WRITER.match(tmp.name)
        replay = tmp.name.endswith(".recovered.commit.tmp")
        if writer is None or replay or not _locked_by(directory, writer[1]):
            tmp.unlink(missing_ok=True)


def _remove_unborn_segments(directory: Path) -> None:
    """Delete the hidden ``.<segment>.new`` of writers killed before they renamed it: nobody holds its
    lock. It holds no event (a segment is appended to only after the rename). A live writer that
    created one but had not locked it yet finds it unlinked once it locks, and starts another."""
    for hidden in directory.glob(".*.new"):
        try:
            fd = os.open(hidden, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if lock_segment(fd):
                hidden.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _locked_by(directory: Path, writer: str) -> bool:
    """Whether a live process holds the lock of a segment of ``writer`` (``<host>-<pid>-<token>``)."""
    for segment in directory.glob(f"{glob.escape(writer)}.*"):
        try:
            fd = os.open(segment, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if not lock_segment(fd):
                return True
        finally:
            os.close(fd)
    return False


def _order(entry: os.DirEntry[str]) -> tuple[str, int, str]:
    """Segments by writer, then in the order written (``<writer>.<n>``: 10 after 9)."""
    writer, _, n = entry.name.rpartition(".")
    return (writer, int(n), "") if n.isdigit() else (entry.name, 0, entry.name)


def orphans(directory: Path) -> Iterator[Orphan]:
    """Segments nobody holds a lock on (their writer exited or was killed)."""
    if not directory.is_dir():
        return
    for entry in sorted(os.scandir(directory), key=_order):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        if not lock_segment(fd):
            os.close(fd)
            continue
        if not os.path.exists(entry.path):  # replayed by someone else meanwhile
            os.close(fd)
            continue
        yield Orphan(Path(entry.path), fd)
