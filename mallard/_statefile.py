"""Small JSON documents under ``state/`` that every process of a data directory shares.

One writer at a time (an ``flock`` on a lock file, plus a thread lock), atomic rewrites (readers see
the old or the new document, never a mix), and a per-process cache that is read again whenever the
file's stat signature (device, inode, size, mtime) changed, i.e. when another process rewrote it.
:meth:`mallard._sharedstate.LocalState.document` makes them (``admin.json``, ``api_keys.json``,
``goals.json``, ``funnels.json``, ``shared_links.json``) for a local data directory.

:class:`SharedDocument` is what a caller needs of such a document, ``read`` and ``update(change)``: this
file's :class:`JsonStateFile` offers it for one host, :class:`mallard._store.objectstate.ObjectDocument`
(compare-and-swap on object storage, no lock) for hosts sharing a bucket.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ._errors import StorageError
from ._state import StateDir, write_file_atomic

__all__ = ["JsonStateFile", "SharedDocument", "Signature", "file_lock", "read_with_signature",
           "stat_signature"]

Signature = tuple[int, int, int, int]  # (device, inode, size, mtime_ns)
T = TypeVar("T")


def _signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _unreadable(path: Path, exc: OSError) -> StorageError:
    return StorageError(f"Cannot read {path}: {exc.strerror}. Check the permissions of the state "
                        "directory.")


def read_with_signature(path: Path) -> tuple[Signature, bytes] | None:
    """The content of ``path`` and the stat signature of exactly that content, or None if absent."""
    try:
        with path.open("rb") as fh:
            return _signature(os.fstat(fh.fileno())), fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def stat_signature(path: Path) -> Signature | None:
    """The stat signature of ``path``, or None if absent."""
    try:
        return _signature(path.stat())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create {directory}: {exc.strerror}. Check that the data "
                           "directory is writable.") from None


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive across processes: an ``flock`` on ``lock_path`` (created, mode 0600)."""
    with StateDir(lock_path.parent).lock(lock_path.name):
        yield


class SharedDocument(Protocol[T]):
    """A document every process (and, on object storage, every host) shares."""

    def read(self, *, force: bool = False) -> T:
        """The current document (shared by the callers of this process: do not mutate it)."""
        ...

    def update(self, change: Callable[[T], T]) -> T:
        """Store ``change(newest document)`` and return it; ``change`` must not mutate its argument
        and may be called more than once; returning its argument itself writes nothing."""
        ...


class JsonStateFile(Generic[T]):
    """One shared document: ``read()`` (cached until the file changes) and ``update(change)``.

    Args:
        path: the document (``state/<name>.json``).
        lock_path: the lock file serialising writers of every process.
        parse: bytes of the file → the document (raises :class:`StorageError` for a bad file).
        dump: the document → bytes to store.
        empty: the document when the file does not exist.
    """

    def __init__(self, path: Path, lock_path: Path, *, parse: Callable[[bytes], T],
                 dump: Callable[[T], bytes], empty: Callable[[], T]) -> None:
        self.path = path
        self.lock_path = lock_path
        self._parse = parse
        self._dump = dump
        self._empty = empty
        self._lock = threading.RLock()
        self._cache: tuple[Signature | None, T] | None = None

    def read(self, *, force: bool = False) -> T:
        """The current document (do not mutate it: it is shared by the callers of this process)."""
        with self._lock:
            cached = self._cache
            if not force and cached is not None and cached[0] == stat_signature(self.path):
                return cached[1]
            found = read_with_signature(self.path)
            doc = self._empty() if found is None else self._parse(found[1])
            self._cache = (None if found is None else found[0], doc)
            return doc

    def write(self, doc: T) -> None:
        """Replace the document (call under :meth:`locked`)."""
        ensure_dir(self.path.parent)
        write_file_atomic(self.path, self._dump(doc))
        with self._lock:
            self._cache = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes: read with ``force=True``, then :meth:`write`."""
        with file_lock(self.lock_path):  # each caller opens the lock file: threads exclude each other
            yield

    def update(self, change: Callable[[T], T]) -> T:
        """:meth:`SharedDocument.update` under :meth:`locked` (``change`` is called once)."""
        with self.locked():
            current = self.read(force=True)
            new = change(current)
            if new is not current:
                self.write(new)
            return new
