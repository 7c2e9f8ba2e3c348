"""What DuckDB reads a lake on object storage through: pyarrow's S3 filesystem as an fsspec filesystem
(DuckDB's ``register_filesystem``; DuckDB's own S3 support, the httpfs extension, is not available), made
to ask the store as little as possible.

Each request to an object store costs a round trip (milliseconds to tens of milliseconds), and DuckDB
would send many per file: a HEAD each for the file's existence, size and modification time, another to
open it, then ranged GETs of the footer and of each column chunk it reads. So:

* what a listing said of a file (its size and mtime: ``known``) answers the first three;
* a file of at most :data:`WHOLE_BYTES` is fetched whole on its first read and kept in memory
  (:class:`ObjectCache`, at most :data:`CACHE_BYTES`, least recently used out first): it is immutable
  (a lake file is never rewritten under its name), so later reads ask nothing.

Every file DuckDB opens for reading is a :class:`PositionalFile`. DuckDB reads one file from several
threads through one handle, each read a ``seek`` then a ``read`` (two calls into Python, the GIL
released between them): on a file object with one position (fsspec's ``ArrowFile``), a thread read
from where another had just seeked, short or from the wrong place, and a query failed ("only N bytes
returned", "ZSTD Decompression failure") or, worse, skipped the file as unreadable and answered
without its rows. Each thread keeps its own position here, and each read is a positional read
(``read_at``) of exactly the bytes asked for.

When the store fails a request (unreachable, a 500 while it restarts), pyarrow raises OSError in
Python, and DuckDB's caller gets an untyped ``duckdb.Error`` whose message is that Python traceback:
:func:`~mallard._store.quarantine.filesystem_failure` tells such an error from a damaged file's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper  # type: ignore[import-untyped]

__all__ = ["CACHE_BYTES", "WHOLE_BYTES", "LakeFileSystem", "ObjectCache", "PositionalFile"]

#: Files up to this size are fetched whole (one request) and cached.
WHOLE_BYTES: Final = 8 * 1024 * 1024
#: Bytes of whole files kept in memory per open lake.
CACHE_BYTES: Final = 256 * 1024 * 1024

class ObjectCache:
    """Whole objects by pyarrow path, the least recently used dropped past ``capacity`` bytes.
    Thread-safe."""

    def __init__(self, capacity: int = CACHE_BYTES) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[str, pa.Buffer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> pa.Buffer | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, data: pa.Buffer) -> None:
        if data.size > self.capacity:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self.size += data.size
            while self.size > self.capacity:
                _, dropped = self._items.popitem(last=False)
                self.size -= dropped.size


class PositionalFile:
    """A read-only file over ``source`` (a pyarrow random-access file) whose position is each
    thread's own, every read a positional read: safe for a handle that several threads seek and read
    at once (see the module docstring)."""

    def __init__(self, source: pa.NativeFile, path: str) -> None:
        self._source = source
        self.path = path
        self.size = source.size()
        self._at = threading.local()
        self.closed = False

    def tell(self) -> int:
        return int(getattr(self._at, "pos", 0))

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self._at.pos = max(base + offset, 0)
        return int(self._at.pos)

    def read(self, length: int = -1) -> bytes:
        pos = self.tell()
        want = self.size - pos if length is None or length < 0 else min(length, self.size - pos)
        if want <= 0:
            return b""
        data: bytes = self._source.read_at(want, pos)
        self._at.pos = pos + len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._source.close()

    def __enter__(self) -> PositionalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LakeFileSystem(ArrowFSWrapper):  # type: ignore[misc]
    """``fs`` for DuckDB (paths ``s3://bucket/key``), answering from ``known`` (what a listing said of a
    file, None when it was not listed) and from ``cache``. Build it with ``skip_instance_cache=True``
    (fsspec would otherwise keep every instance for the life of the process)."""

    def __init__(self, fs: pafs.FileSystem, known: Callable[[str], pafs.FileInfo | None],
                 cache: ObjectCache, **kwargs: Any) -> None:
        super().__init__(fs, **kwargs)
        self._known = known
        self.cache = cache

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        found = self._known(path)
        if found is None:
            return dict(super().info(path, **kwargs))
        return {"name": found.path, "size": found.size, "type": "file", "mtime": found.mtime}

    def modified(self, path: str) -> datetime:
        found = self._known(path)
        when: datetime = found.mtime if found is not None else super().modified(path)
        return when

    def glob(self, path: str, **kwargs: Any) -> Any:
        found = None if any(c in path for c in "*?[") else self._known(path)
        return [found.path] if found is not None else super().glob(path, **kwargs)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, seekable: bool = True,
              **kwargs: Any) -> Any:
        if mode != "rb":
            return super()._open(path, mode, block_size, seekable, **kwargs)
        found = self._known(path)
        if found is None or found.size is None or found.size > WHOLE_BYTES:
            return PositionalFile(self.fs.open_input_file(self._strip_protocol(path)), path)
        data = self.cache.get(found.path)
        if data is None:
            with self.fs.open_input_stream(found.path) as stream:
                data = stream.read_buffer()
            self.cache.put(found.path, data)
        return PositionalFile(pa.BufferReader(data), path)
