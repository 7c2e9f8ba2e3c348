"""The spool: a per-process append-only log of accepted events, the buffer's journal.

Each process writes ``spool/<host>-<pid>-<token>.<n>`` segments, one JSON array and a newline per event,
copied into a shared memory map of the segment before the event is acknowledged, and holds an exclusive
``flock`` on every segment it owns. A flush rotates to the next segment; once the events of a segment
are in the lake the segment is deleted. A segment whose lock can be taken belongs to a process that is
gone: :func:`mallard._store.recovery.orphans` finds those so the Store can replay them.

A segment's blocks are allocated (``posix_fallocate``) before they are mapped: a copy into a mapped
page that the filesystem cannot back (a full disk) would kill the process with ``SIGBUS``, whereas an
allocation fails with ``ENOSPC``, which refuses the event (HTTP 503) and keeps the process alive. When no
segment can be opened, the next append tries again.

Publishing a batch and deleting its segments are two steps, so a crash between them must not replay
(duplicate) the batch. Before the batch's Parquet files are renamed into place, a *commit record*
(``.<name>.commit``: the segments and the temporary → final file names) is written atomically;
:func:`mallard._store.recovery.finish_commits` completes the renames of an interrupted publish and
deletes its segments instead of replaying them.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import secrets
import socket
import threading
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from .._events import Event, Row

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
                 owner: str | None = None, keys: Sequence[str] = ()) -> None:
    """Atomically record that the events of ``segments`` are in ``files`` (temporary, final), or, on
    object storage, in the objects ``keys`` (relative to the lake) once the log commits them.

    ``owner`` names a segment the writer keeps locked while it lives (its current one): the record of
    a live process is never acted upon, even once its listed segments are gone.
    """
    tmp = path.with_name(path.name + ".tmp")
    spec: dict[str, object] = {"segments": list(segments), "owner": owner,
                               "files": [[str(t), str(f)] for t, f in files]}
    if keys:
        spec["keys"] = list(keys)
    tmp.write_bytes(orjson.dumps(spec))
    os.rename(tmp, path)


def lock_segment(fd: int, *, block: bool = False) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def waiting(directory: Path, site_id: str | None = None) -> dict[str, int]:
    """Events (of ``site_id``, or every site) in the spool segments under ``directory``, by writer
    (``<host>-<pid>-<token>``; 0 for a writer whose segments hold none): accepted, not in the lake
    yet. Read without taking any lock, as a count for reports: a batch being published may be counted
    in both places for a moment."""
    prefix = None if site_id is None else b"[" + orjson.dumps(site_id) + b","
    found: dict[str, int] = {}
    try:
        entries = [e for e in os.scandir(directory) if e.is_file() and not e.name.startswith(".")]
    except FileNotFoundError:
        return found
    for entry in entries:
        writer = entry.name.rpartition(".")[0]
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read()
        except OSError:  # released (deleted) meanwhile
            continue
        lines = data.split(b"\0", 1)[0].split(b"\n")[:-1]  # a torn last line is no event
        count = sum(1 for line in lines if prefix is None or line.startswith(prefix))
        found[writer] = found.get(writer, 0) + count
    return found


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
        #: Set (to the reason) to refuse every append, as a full disk does: the spool holds as many
        #: events waiting for the lake as it may (object storage unreachable; see :meth:`defer`).
        self.refusing: str | None = None
        self._deferred: set[Path] = set()  # finished segments left to recovery, not deleted on release
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
            lock_segment(fd, block=True)
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
        if self.refusing is not None:
            raise OSError(errno.ENOSPC, self.refusing)
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

    def commit(self, files: Sequence[tuple[Path, Path]], keys: Sequence[str] = ()) -> None:
        """Record, just before ``files`` are published (or the objects ``keys`` committed), that they
        hold the events of every finished (rotated, not yet released) segment; :meth:`release`
        removes the record."""
        with self._lock:
            finished = [p.name for p in self._owned if p != self._path]
            if finished:
                write_commit(self._commit, finished, files,
                             owner=self._path.name if self._path is not None else None, keys=keys)

    def defer(self) -> None:
        """Leave the finished segments to recovery instead of publishing them now (the lake on object
        storage cannot be written): their locks are released, so recovery replays them as a gone
        process's, and :meth:`release` keeps their files. A commit record naming them (a commit whose
        outcome is unknown) is kept, without an owner, for recovery to settle first."""
        with self._lock:
            finished = [p for p in self._owned if p != self._path]
            if not finished:
                return
            try:
                spec = orjson.loads(self._commit.read_bytes())
            except FileNotFoundError:
                spec = None
            if spec is not None:
                write_commit(self._dir / f".{finished[0].name}.deferred.commit", spec["segments"],
                             [(Path(t), Path(f)) for t, f in spec["files"]], keys=spec.get("keys", ()))
                self._commit.unlink(missing_ok=True)
            for path in finished:
                os.close(self._owned.pop(path))
                self._deferred.add(path)

    def release(self, tokens: Sequence[object]) -> None:
        """Delete finished segments whose events are stored."""
        with self._lock:
            for token in tokens:
                if token is None:
                    continue
                assert isinstance(token, Path)
                if token in self._deferred:  # recovery's now
                    self._deferred.discard(token)
                    continue
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
