"""``<data_dir>/state/``: the small files every process of a data directory shares, and one way to use them.

Salts and the pseudonym secret, the admin credential, API keys, goals, shared links, saved funnels,
erasure records, the session-token database, the Prometheus snapshots and the locks that order the
processes' work all live here. :class:`StateDir` is the only code that writes them or takes their locks:

* :meth:`StateDir.write`: atomic replacement (a complete, fsynced temporary file renamed over the old
  one: readers see the old or the new content, never a mix), mode 0600;
* :meth:`StateDir.write_once`: create a file unless it exists, and return the content that won (several
  processes may race to create a salt: all use the one that was linked first);
* :meth:`StateDir.lock`: a named ``flock`` (exclusive or shared, waiting or not) on ``<name>``;
* :meth:`StateDir.sqlite`: a connection to a SQLite database here (WAL, busy timeout).

Every failure is a :class:`~mallard._errors.StorageError` naming the file and what to check.
``flock`` orders processes of one host; a data directory shared by several hosts over NFS does not get
that guarantee (docs/operations.md). Hosts sharing a lake on object storage get ``write`` and
``write_once`` with the same contracts from :class:`mallard._store.objectstate.ObjectState`
(conditional writes instead of links and locks).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ._errors import StorageError

__all__ = ["StateDir", "write_file_atomic", "write_file_once"]


def _cannot(action: str, path: Path, exc: OSError) -> StorageError:
    return StorageError(f"Cannot {action} {path}: {exc.strerror or exc}. Check that the data directory "
                        "is writable.")


def _private_temp(path: Path, data: bytes, mode: int) -> Path:
    """A complete, fsynced temporary file beside ``path`` holding ``data``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_file_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` by ``data``: readers see the old or the new content, never a mix."""
    tmp: Path | None = None
    try:
        tmp = _private_temp(path, data, mode)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise _cannot("write", path, exc) from None


def write_file_once(path: Path, data: bytes) -> bytes:
    """Create ``path`` with ``data`` (mode 0600) unless it exists; return the content that won.

    Safe when several processes race: the file appears whole (a link to a complete temporary file) and
    only one content is ever visible.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _cannot("read", path, exc) from None
    tmp: Path | None = None
    try:
        tmp = _private_temp(path, data, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        return path.read_bytes()
    except OSError as exc:
        raise _cannot("write", path, exc) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


class StateDir:
    """The ``state/`` directory of a data directory (created on first use, mode 0700)."""

    def __init__(self, path: Path) -> None:
        self.root = path

    def path(self, name: str) -> Path:
        """The file ``name`` (``"goals.json"``, ``"salts/19723"``)."""
        return self.root / name

    def ensure(self, name: str = "") -> Path:
        """The directory ``name`` (the root by default), created if missing."""
        directory = self.root / name if name else self.root
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot("create", directory, exc) from None
        return directory

    def write(self, name: str, data: bytes, *, mode: int = 0o600) -> None:
        """Replace the file ``name`` by ``data`` atomically."""
        write_file_atomic(self.path(name), data, mode=mode)

    def write_once(self, name: str, data: bytes) -> bytes:
        """Create the file ``name`` with ``data`` unless it exists; the content that won."""
        return write_file_once(self.path(name), data)

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False, wait: bool = True,
             create: bool = True) -> Iterator[bool]:
        """Hold the lock ``name`` (a file here) across processes; yields whether it is held (always
        True when ``wait``). Each call opens the file anew, so threads of one process exclude each
        other too. ``create=False`` locks only a file that exists, opened read-only (so a directory
        this process cannot write can still be locked), and raises :class:`FileNotFoundError`
        when there is none."""
        path = self.path(name)
        if create:
            self.ensure(str(Path(name).parent))
        try:
            fd = os.open(path, (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if not create and isinstance(exc, FileNotFoundError):
                raise
            raise _cannot("open", path, exc) from None
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                            | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def sqlite(self, name: str, *, timeout: float = 10.0) -> sqlite3.Connection:
        """A new autocommit connection to the SQLite database ``name`` (WAL journal, mode 0600)."""
        path = self.path(name)
        self.ensure()
        try:
            # create the file 0600 first: SQLite gives its -wal and -shm files the same permissions
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise _cannot("open", path, exc) from None
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise StorageError(f"Cannot open {path}: {exc}. Check that the data directory is "
                               "writable.") from None
        return conn
