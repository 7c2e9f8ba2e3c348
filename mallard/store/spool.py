"""The spool: a per-process append-only log of accepted events, the buffer's journal.

Each process writes ``spool/<host>-<pid>-<token>.<n>`` segments, one JSON array and a newline per event,
copied into a shared memory map of the segment before the event is acknowledged, and holds an exclusive
``flock`` on every segment it owns. A flush rotates to the next segment; once the events of a segment
are in the lake the segment is deleted. A segment whose lock can be taken belongs to a process that is
gone: :func:`orphans` finds those so the Store can replay them.

A segment's blocks are allocated (``posix_fallocate``) before they are mapped: a copy into a mapped
page that the filesystem cannot back (a full disk) would kill the process with ``SIGBUS``, whereas an
allocation fails with ``ENOSPC``, which refuses the event (HTTP 503) and keeps the process alive. When no
segment can be opened, the next append tries again.

Publishing a batch and deleting its segments are two steps, so a crash between them must not replay
(duplicate) the batch. Before the batch's Parquet files are renamed into place, a *commit record*
(``.<name>.commit``: the segments and the temporary → final file names) is written atomically;
:func:`finish_commits` completes the renames of an interrupted publish and deletes its segments instead
of replaying them.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import mmap
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from ..events import Event, Row

log = logging.getLogger("mallard.store")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def encode(event: Row) -> bytes:
    return orjson.dumps(tuple(event), default=_default, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> Event:
    values = orjson.loads(line)
    values[2] = datetime.fromisoformat(values[2])
    if values[23] is not None:
        values[23] = Decimal(values[23])
    # Older spools may have fewer columns: pad with NULLs.
    values.extend([None] * (len(Event._fields) - len(values)))
    return Event(*values[: len(Event._fields)])


def write_commit(path: Path, segments: Sequence[str], files: Sequence[tuple[Path, Path]],
                 owner: str | None = None) -> None:
    """Atomically record that the events of ``segments`` are in ``files`` (temporary, final).

    ``owner`` names a segment the writer keeps locked while it lives (its current one): the record of
    a live process is never acted upon, even once its listed segments are gone.
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps({"segments": list(segments), "owner": owner,
                                  "files": [[str(t), str(f)] for t, f in files]}))
    os.rename(tmp, path)


def _lock(fd: int, *, block: bool = False) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


_SEGMENT_BYTES: Final = 1 << 20  # initial size of a segment's mapping; doubled when full
_MAP_FLAGS: Final = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


class Spool:
    """This process's spool segments. Thread-safe (callers serialise ``append`` with ``rotate``).

    A segment is written through a shared memory map rather than one ``write()`` per event: a copy into
    the map puts the bytes in the kernel's page cache exactly as ``write()`` does (a killed process
    loses nothing it appended), but without a system call that releases the GIL, which on a busy
    server hands the interpreter to the flusher thread in the middle of every request. The file is
    cut to its content when the segment is finished; a segment of a killed process ends in zeros,
    which :meth:`Orphan.events` skips.
    """

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._lock = threading.Lock()
        self._owned: dict[Path, int] = {}  # path -> fd (locked)
        self._commit = self._dir / f".{self._prefix}.commit"
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._pos = 0
        self._closed = False
        #: The current segment; None while none could be opened (a full disk): the next append retries.
        self._path: Path | None = None
        #: Why the last attempt to open a segment failed (e.g. "No space left on device"), else None.
        self.error: str | None = None
        self._try_open()

    def _try_open(self) -> OSError | None:
        """Open the next segment; on failure keep the reason in :attr:`error` and return the error."""
        try:
            self._path = self._open_segment()
        except OSError as exc:
            if self.error is None:
                log.warning("cannot open a spool segment in %s (%s); ingestion is refused until one "
                            "can be opened", self._dir, exc.strerror or exc)
            self.error = str(exc.strerror or exc)
            return exc
        return None

    def _open_segment(self) -> Path:
        self._seq += 1
        path = self._dir / f"{self._prefix}.{self._seq}"
        # Create and lock under a hidden name first, so a recovering process never sees an
        # unlocked segment of ours.
        hidden = self._dir / f".{path.name}.new"
        fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            _lock(fd, block=True)
            # recovery took it for a dead writer's (unlocked) before we locked it: start another
            unlinked = os.fstat(fd).st_nlink == 0
            if not unlinked:
                os.posix_fallocate(fd, 0, _SEGMENT_BYTES)  # ENOSPC now, never SIGBUS later
                self._map = mmap.mmap(fd, _SEGMENT_BYTES, flags=_MAP_FLAGS)
                os.rename(hidden, path)
        except OSError:
            if self._map is not None:
                self._map.close()
                self._map = None
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        if unlinked:
            os.close(fd)
            return self._open_segment()
        self._owned[path] = fd
        self._fd = fd
        self._pos = 0
        self.error = None
        return path

    def _finish_segment(self) -> None:
        """Unmap the current segment and cut its file to the bytes appended."""
        if self._map is None:
            return
        if self._fsync:
            self._map.flush()
        self._map.close()
        self._map = None
        os.ftruncate(self._fd, self._pos)

    def append(self, event: Row) -> None:
        data = encode(event)
        mapped = self._map
        if mapped is None:
            mapped = self._reopen()
        end = self._pos + len(data)
        if end > len(mapped):
            size = max(2 * len(mapped), end)
            # Allocate first: a page the filesystem cannot back would be a SIGBUS on copy.
            os.posix_fallocate(self._fd, len(mapped), size - len(mapped))
            mapped.resize(size)
        mapped[self._pos:end] = data
        self._pos = end
        if self._fsync:
            mapped.flush()

    def retry(self) -> bool:
        """Try again to open a segment if none could be opened (space may be back). Returns whether
        the spool has a segment now."""
        with self._lock:
            if self._map is None and not self._closed:
                self._try_open()
            return self._map is not None

    def _reopen(self) -> mmap.mmap:
        """Open a segment after an earlier attempt failed (raises OSError while that still fails)."""
        with self._lock:
            if self._closed:
                raise OSError("the spool is closed")
            if self._map is None and (exc := self._try_open()) is not None:
                raise exc
            assert self._map is not None
            return self._map

    def rotate(self) -> object:
        """Finish the current segment and start a new one; return the finished one as a token for
        :meth:`release` (None when there was none). Never raises for want of space: when the new
        segment cannot be opened, the next append tries again."""
        with self._lock:
            done = self._path
            self._path = None
            self._finish_segment()
            self._try_open()
            return done

    def commit(self, files: Sequence[tuple[Path, Path]]) -> None:
        """Record, just before ``files`` are published, that they hold the events of every finished
        (rotated, not yet released) segment; :meth:`release` removes the record."""
        with self._lock:
            finished = [p.name for p in self._owned if p != self._path]
            if finished:
                write_commit(self._commit, finished, files,
                             owner=self._path.name if self._path is not None else None)

    def release(self, tokens: Sequence[object]) -> None:
        """Delete finished segments whose events are stored."""
        with self._lock:
            for token in tokens:
                if token is None:
                    continue
                assert isinstance(token, Path)
                fd = self._owned.get(token)
                token.unlink(missing_ok=True)  # before the lock goes: never seen as an orphan
                if fd is not None:
                    del self._owned[token]
                    os.close(fd)
            if len(self._owned) <= (self._path is not None):  # only the current segment is left
                self._commit.unlink(missing_ok=True)

    def close(self) -> None:
        """Delete the (empty) current segment and release every lock."""
        with self._lock:
            self._closed = True
            empty = self._pos == 0
            with suppress(OSError):
                self._finish_segment()
            for path, fd in list(self._owned.items()):
                with suppress(OSError):
                    if path == self._path and empty:
                        path.unlink(missing_ok=True)
                os.close(fd)
            self._owned.clear()

    def abandon(self) -> None:
        """Forget inherited descriptors and the map without touching the files (after ``fork``)."""
        self._owned.clear()
        self._map = None
        self._closed = True


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


def finish_commits(directory: Path) -> int:
    """Complete publishes interrupted by a crash: rename the temporary files still in place and delete
    the segments, whose events are then in the lake. Records of live processes (their segments are
    locked) are left alone. Returns the number of records completed."""
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
                if not _lock(fd):
                    busy = True
                    break
            if busy:
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
            if _lock(fd):
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
            if not _lock(fd):
                return True
        finally:
            os.close(fd)
    return False


def orphans(directory: Path) -> Iterator[Orphan]:
    """Segments nobody holds a lock on (their writer exited or was killed)."""
    if not directory.is_dir():
        return
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        if not _lock(fd):
            os.close(fd)
            continue
        if not os.path.exists(entry.path):  # replayed by someone else meanwhile
            os.close(fd)
            continue
        yield Orphan(Path(entry.path), fd)
