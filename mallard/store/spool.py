"""The spool: a per-process append-only log of accepted events, the buffer's journal.

Each process writes ``spool/<host>-<pid>-<token>.<n>`` segments, one ``write()`` per event (a JSON array
and a newline) before the event is acknowledged, and holds an exclusive ``flock`` on every segment it
owns. A flush rotates to the next segment; once the events of a segment are in the lake the segment is
deleted. A segment whose lock can be taken belongs to a process that is gone: :func:`orphans` finds
those so the Store can replay them.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ..events import Event


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def encode(event: Event) -> bytes:
    return orjson.dumps(tuple(event), default=_default, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> Event:
    values = orjson.loads(line)
    values[2] = datetime.fromisoformat(values[2])
    if values[23] is not None:
        values[23] = Decimal(values[23])
    # Older spools may have fewer columns: pad with NULLs.
    values.extend([None] * (len(Event._fields) - len(values)))
    return Event(*values[: len(Event._fields)])


def _lock(fd: int, *, block: bool = False) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


class Spool:
    """This process's spool segments. Thread-safe (callers serialise ``append`` with ``rotate``)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._lock = threading.Lock()
        self._owned: dict[Path, int] = {}  # path -> fd (locked)
        self._fd = -1
        self._path = self._open_segment()

    def _open_segment(self) -> Path:
        self._seq += 1
        path = self._dir / f"{self._prefix}.{self._seq}"
        # Create and lock under a hidden name first, so a recovering process never sees an
        # unlocked segment of ours.
        hidden = self._dir / f".{path.name}.new"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        _lock(fd, block=True)
        os.rename(hidden, path)
        self._owned[path] = fd
        self._fd = fd
        return path

    def append(self, event: Event) -> None:
        data = encode(event)
        written = os.write(self._fd, data)
        if written != len(data):  # pragma: no cover - regular files do not short-write
            raise OSError(f"short write to spool ({written} of {len(data)} bytes)")
        if self._fsync:
            os.fsync(self._fd)

    def rotate(self) -> object:
        """Start a new segment; return the finished one as a token for :meth:`release`."""
        with self._lock:
            done = self._path
            self._path = self._open_segment()
            return done

    def release(self, tokens: Sequence[object]) -> None:
        """Delete finished segments whose events are stored."""
        with self._lock:
            for token in tokens:
                assert isinstance(token, Path)
                fd = self._owned.pop(token, None)
                token.unlink(missing_ok=True)
                if fd is not None:
                    os.close(fd)

    def close(self) -> None:
        """Delete the (empty) current segment and release every lock."""
        with self._lock:
            for path, fd in list(self._owned.items()):
                with suppress(OSError):
                    if path == self._path and os.fstat(fd).st_size == 0:
                        path.unlink(missing_ok=True)
                os.close(fd)
            self._owned.clear()

    def abandon(self) -> None:
        """Forget inherited descriptors without touching the files (after ``fork``)."""
        self._owned.clear()


class Orphan:
    """A spool segment of a process that is gone; locked by us while we replay it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def events(self) -> Iterator[Event]:
        """The segment's events; a torn last line (power loss) is skipped."""
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    continue
                try:
                    yield decode(line)
                except (ValueError, IndexError, TypeError):
                    continue

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def release(self) -> None:
        os.close(self._fd)


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
