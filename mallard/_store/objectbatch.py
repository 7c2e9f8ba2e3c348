"""Events into a shared lake on object storage: Parquet objects uploaded under their final, unique
names, then made live by one commit to the log (:mod:`mallard._store.objectlog`).

An uploaded object that no commit names is invisible to readers and deleted by the vacuum after its
grace period, so an upload needs no temporary name. The commit checks the erasures committed since the
events were filtered (:func:`commit`): files of partitions that such an erasure covers are left out, as
their events were received before it.

:class:`ObjectBatch` is the callable a flush publishes (what :class:`~mallard._store.PendingBatch` is for
a local lake): it writes the spool's commit record (naming the objects), commits, and when the store
cannot be written (an outage, a refused request) **defers** the batch instead of failing: the spool's
segments are left to recovery, which publishes them, in order, once the store answers again
(:meth:`mallard._store.spool.Spool.defer`). The buffer then holds no copy: what waits is in the spool
only, bounded by ``s3_spool_max_bytes``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Collection, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow.parquet as pq

from .._events import Row
from .lake import partitions, site_dir_name, to_table
from .loglake import LogLake, partition_of
from .objectlog import Commit, Entry

if TYPE_CHECKING:
    from .spool import Spool

__all__ = ["ObjectBatch", "commit", "upload"]

log = logging.getLogger("mallard.store")

Stone = tuple[str, date, date, float]  # an erasure as (site, start, end, at), whichever class holds it


class _Erased(Exception):
    def __init__(self, stones: list[Stone]) -> None:
        super().__init__("erased meanwhile")
        self.stones = stones


def upload(client: Any, lake: LogLake, events: Sequence[Row]) -> list[Entry]:
    """Write events as one ZSTD Parquet object per (site, UTC day), under final unique names; returns
    them as log entries (not live until committed)."""
    entries = []
    for (site, day), rows in partitions(events):
        relative = f"events/{site_dir_name(site)}/date={day.isoformat()}/{lake._segment_name()}"
        sink = io.BytesIO()
        pq.write_table(to_table(rows), sink, compression="zstd")
        body = sink.getvalue()
        client.put_object(Bucket=lake.bucket_name, Key=lake.log.key(relative), Body=body)
        entries.append(Entry(relative, len(rows), len(body)))
    return entries


def commit(lake: LogLake, entries: Sequence[Entry], known: Collection[Stone]) -> list[Entry]:
    """Commit ``entries`` to the log of ``lake``, without those of partitions that an erasure not
    among ``known`` (those the events were filtered by) covers; returns what was committed."""
    seen = set(known)
    left = list(entries)
    def check(missed: list[Commit]) -> None:  # under the log's lock, the missed commits applied
        stones = [(t.site_id, t.start, t.end, t.at) for t in lake.log.tombstones()]
        late = [t for t in stones if t not in seen]
        if any(_covered(e, late) for e in left):
            raise _Erased(late)

    while left:
        try:
            lake.commit(add=left, check=check)
            return left
        except _Erased as erased:
            seen.update(erased.stones)
            dropped = [e for e in left if _covered(e, erased.stones)]
            log.info("an erasure committed meanwhile covers %d file(s) of a batch: left out", len(dropped))
            left = [e for e in left if e not in dropped]
    return []


class Outage(Protocol):
    """The store's record of an object store that cannot be written (see SharedStore.must_wait)."""

    def must_wait(self, failure: Exception | str | None) -> bool: ...


def _covered(entry: Entry, stones: Sequence[Stone]) -> bool:
    found = partition_of(entry.path)
    return found is not None and any(site == found[0] and start <= found[1] <= end
                                     for site, start, end, _ in stones)


class ObjectBatch:
    """A flush's batch: uploaded at creation (``failed``: why not), committed when called, or deferred
    to recovery through ``defer``. ``partitions``: (site, day) of every file it adds."""

    def __init__(self, lake: LogLake, spool: Spool | None, known: Collection[Stone],
                 entries: list[Entry], failed: Exception | None, outage: Outage) -> None:
        self._lake = lake
        self._spool = spool
        self._known = known
        self._entries = entries
        self.failed = failed
        self._outage = outage
        self.partitions: frozenset[tuple[str, date]] = frozenset(
            p for e in entries if (p := partition_of(e.path)) is not None)

    def __call__(self) -> None:
        spool = self._spool
        if spool is None:  # nothing to wait in (an import): the caller sees the failure
            commit(self._lake, self._entries, self._known)
            return
        # Batches deferred before this one are published first (by recovery): in order.
        if self._outage.must_wait(self.failed):
            spool.defer()
            return
        spool.commit([], keys=[e.path for e in self._entries])  # OSError: retried, as locally
        try:
            commit(self._lake, self._entries, self._known)
        except Exception as exc:
            self._outage.must_wait(exc)
            spool.defer()  # the record goes with the segments: recovery asks the log first
