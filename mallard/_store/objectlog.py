"""The commit log of a lake on object storage: which data files are live, changed only by conditional
creates, so that any number of hosts can add, merge and erase files without a lock.

Data files are immutable and uniquely named, as in a local lake. What a reader must read is not "every
object under ``events/``" but the files of a **snapshot**: the result of the log's commits, in order.
Commit ``n`` is the object ``_log/<n, 20 digits>.json``, created with ``If-None-Match: *``, so of two
hosts that both try to write commit ``n`` exactly one succeeds; the other (HTTP 412, or 409 on AWS when
the two requests overlap) reads the commits it missed, checks that its own still makes sense after them
(:class:`Conflict` when a file it removes is gone: another compaction or an erasure got there first) and
tries ``n + 1``. A commit is ``{"add": [{"path", "rows", "bytes"}], "remove": [path…], "erase":
[{"site_id", "start", "end", "at"}], "writer", "at"}``: an append adds, a compaction adds the merged file
and removes its sources in one commit (a reader sees either the sources or the merged file, never both,
never neither), an erasure removes the partitions' files and records its tombstone in the same commit.

Every :data:`CHECKPOINT_EVERY` commits, the committer also writes ``_checkpoint/<n>.json`` (the whole
snapshot at ``n``), so a reader starts from the newest checkpoint and reads the commits after it only.

A removed file is deleted later by :meth:`ObjectLog.vacuum` (data objects neither live nor younger than
its grace period): readers holding an older snapshot finish their query first, and a file uploaded by a
writer that has not committed yet is not taken for garbage.

The store must support conditional writes (``If-None-Match`` on PutObject): AWS S3 since 2024, MinIO,
SeaweedFS, Cloudflare R2. pyarrow's ``S3FileSystem`` cannot send that header (it drops unknown object
metadata), so the log talks to the store through a botocore S3 client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import orjson

__all__ = ["CHECKPOINT_EVERY", "KEEP_SECS", "TOMBSTONE_SECS", "Commit", "Conflict", "Entry", "ObjectLog",
           "Snapshot", "Tombstone"]

#: A checkpoint (the whole snapshot) is written at every version divisible by this.
CHECKPOINT_EVERY: Final = 100
#: Seconds a removal is remembered (vacuum runs far more often) and a tombstone is kept.
KEEP_SECS: Final = 7 * 86_400
TOMBSTONE_SECS: Final = 90 * 86_400
_DIGITS: Final = 20
#: Status codes of a lost race: 412 Precondition Failed, 409 ConditionalRequestConflict (AWS, when two
#: conditional writes of one key overlap; retried as a lost race).
_LOST: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class Conflict(Exception):
    """A commit cannot be made after the commits that won the race (its sources are gone)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A live data file: its key relative to the lake root, rows and bytes."""

    path: str
    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An erasure: the events of ``site_id`` on the UTC days ``start``..``end`` received before ``at``."""

    site_id: str
    start: date
    end: date
    at: float

    def covers(self, site_id: str, day: date) -> bool:
        return site_id == self.site_id and self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Commit:
    version: int
    add: tuple[Entry, ...] = ()
    remove: tuple[str, ...] = ()
    erase: tuple[Tombstone, ...] = ()
    writer: str = ""
    at: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps({
            "add": [{"path": e.path, "rows": e.rows, "bytes": e.bytes} for e in self.add],
            "remove": list(self.remove),
            "erase": [{"site_id": t.site_id, "start": t.start.isoformat(), "end": t.end.isoformat(),
                       "at": t.at} for t in self.erase],
            "writer": self.writer, "at": self.at})

    @classmethod
    def from_json(cls, version: int, data: bytes) -> Commit:
        d = orjson.loads(data)
        return cls(version, tuple(Entry(e["path"], e["rows"], e["bytes"]) for e in d["add"]),
                   tuple(d["remove"]), tuple(_tombstone(t) for t in d.get("erase", ())),
                   d.get("writer", ""), d.get("at", 0.0))


def _tombstone(t: dict[str, Any]) -> Tombstone:
    return Tombstone(t["site_id"], date.fromisoformat(t["start"]), date.fromisoformat(t["end"]),
                     float(t["at"]))


@dataclass(slots=True)
class Snapshot:
    """The live files (by path) and the tombstones as of ``version`` (-1: nothing committed yet), and
    when each file removed in the last :data:`KEEP_SECS` was removed (for :meth:`ObjectLog.vacuum`)."""

    version: int = -1
    files: dict[str, Entry] = field(default_factory=dict)
    tombstones: list[Tombstone] = field(default_factory=list)
    removed: dict[str, float] = field(default_factory=dict)

    def apply(self, commit: Commit) -> None:
        if commit.version != self.version + 1:
            raise ValueError(f"commit {commit.version} does not follow version {self.version}")
        for path in commit.remove:
            self.files.pop(path, None)
            self.removed[path] = commit.at
        for entry in commit.add:
            self.files[entry.path] = entry
        self.tombstones.extend(commit.erase)
        self.version = commit.version
        if commit.version % CHECKPOINT_EVERY == 0:  # forget what is past keeping, now and then
            self.removed = {p: at for p, at in self.removed.items() if commit.at - at < KEEP_SECS}
            self.tombstones = [t for t in self.tombstones if commit.at - t.at < TOMBSTONE_SECS]

    def copy(self) -> Snapshot:
        return Snapshot(self.version, dict(self.files), list(self.tombstones), dict(self.removed))

    def to_json(self) -> bytes:
        return orjson.dumps({"version": self.version,
                             "files": [[e.path, e.rows, e.bytes] for e in self.files.values()],
                             "tombstones": [{"site_id": t.site_id, "start": t.start.isoformat(),
                                             "end": t.end.isoformat(), "at": t.at}
                                            for t in self.tombstones],
                             "removed": self.removed})

    @classmethod
    def from_json(cls, data: bytes) -> Snapshot:
        d = orjson.loads(data)
        return cls(d["version"], {p: Entry(p, r, b) for p, r, b in d["files"]},
                   [_tombstone(t) for t in d["tombstones"]], dict(d["removed"]))


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = response.get("Error", {}).get("Code", "")
    return str(code)


class ObjectLog:
    """The log of the lake at ``s3://<bucket>/<prefix>``, through ``client`` (a botocore S3 client).

    Thread-safe; one instance per process and lake. ``snapshot()`` reads what other hosts committed
    since the last call (one LIST, and a GET per new commit); ``commit()`` publishes a change.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, writer: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._bucket = bucket
        self._root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._writer = writer
        self._clock = clock
        self._lock = threading.Lock()
        self._state = Snapshot()
        self._loaded = False
        #: Commits lost to another host, over the life of this object (read by benchmarks and metrics).
        self.lost_races = 0

    def key(self, relative: str) -> str:
        return f"{self._root}{relative}"

    def _log_key(self, version: int) -> str:
        return self.key(f"_log/{version:0{_DIGITS}d}.json")

    def _list(self, folder: str, after: str | None) -> Iterable[tuple[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self.key(folder)}
        if after is not None:
            kwargs["StartAfter"] = after
        for page in self._client.get_paginator("list_objects_v2").paginate(**kwargs):
            for item in page.get("Contents", ()):
                yield item["Key"], item

    def _get(self, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body

    def put_new(self, relative: str, body: bytes) -> bool:
        """Create the object ``relative`` if no object has that key; False if one has."""
        try:
            self._client.put_object(Bucket=self._bucket, Key=self.key(relative), Body=body,
                                    IfNoneMatch="*")
        except Exception as exc:
            if _error_code(exc) in _LOST:
                return False
            raise
        return True

    def _refresh(self) -> list[Commit]:
        """Read the commits after the cached snapshot (from the newest checkpoint on a first read)."""
        new: list[Commit] = []
        if not self._loaded:
            points = [k for k, _ in self._list("_checkpoint/", None)]
            if points:
                self._state = Snapshot.from_json(self._get(points[-1]))
            self._loaded = True
        after = self._log_key(self._state.version) if self._state.version >= 0 else None
        for key, _ in self._list("_log/", after):
            version = int(key.rsplit("/", 1)[1].split(".")[0])
            commit = Commit.from_json(version, self._get(key))
            self._state.apply(commit)
            new.append(commit)
        return new

    def snapshot(self) -> Snapshot:
        """The newest snapshot (a copy: the caller may keep it while others commit)."""
        with self._lock:
            self._refresh()
            return self._state.copy()

    def commit(self, add: Sequence[Entry] = (), remove: Sequence[str] = (),
               erase: Sequence[Tombstone] = (), *,
               check: Callable[[list[Commit]], None] | None = None) -> int:
        """Publish one commit; returns its version.

        ``check`` is called with the commits that won a race against this one (and those read before
        the first try), before each try; it raises to give up, for example when an erasure among
        them covers events being added. Raises :class:`Conflict` when a file of ``remove`` is no
        longer live; nothing is committed then.
        """
        with self._lock:
            missed = self._refresh()
            while True:
                if check is not None:
                    check(missed)
                gone = [p for p in remove if p not in self._state.files]
                if gone:
                    raise Conflict(f"{len(gone)} file(s) to remove are no longer live, e.g. {gone[0]}")
                commit = Commit(self._state.version + 1, tuple(add), tuple(remove), tuple(erase),
                                self._writer, self._clock())
                if self.put_new(f"_log/{commit.version:0{_DIGITS}d}.json", commit.to_json()):
                    self._state.apply(commit)
                    if commit.version % CHECKPOINT_EVERY == 0 and commit.version > 0:
                        self.put_new(f"_checkpoint/{commit.version:0{_DIGITS}d}.json",
                                     self._state.to_json())
                    return commit.version
                self.lost_races += 1
                missed = self._refresh()

    def live(self) -> list[str]:
        """The paths of the live files of the snapshot held now, without asking the store (for a
        ``check`` of :meth:`commit`, like :meth:`tombstones`)."""
        return list(self._state.files)

    def tombstones(self) -> list[Tombstone]:
        """The tombstones of the snapshot held now, without asking the store: for a ``check`` of
        :meth:`commit` (which runs under the log's lock, after the missed commits were applied), every
        erasure committed before the commit it is about to try."""
        return list(self._state.tombstones)

    def vacuum(self, folder: str, grace_secs: float) -> list[str]:
        """Delete the objects under ``folder`` (relative, e.g. ``events/``) that no snapshot of the
        last ``grace_secs`` holds: files removed by a commit older than that, and files never
        committed and older than that (a writer that died between upload and commit). Returns their
        paths relative to the lake."""
        horizon = self._clock() - grace_secs
        with self._lock:
            self._refresh()
            live = set(self._state.files)
            removed = dict(self._state.removed)

        def doomed(relative: str, modified: float) -> bool:
            if relative in live:
                return False
            at = removed.get(relative)
            return (at if at is not None else modified) < horizon

        keys = [key for key, item in self._list(folder, None)
                if doomed(key.removeprefix(self._root), item["LastModified"].timestamp())]
        for i in range(0, len(keys), 1000):
            self._client.delete_objects(Bucket=self._bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        return [k.removeprefix(self._root) for k in keys]
