"""A flush's batch on a local lake: Parquet files written under hidden names (``Store.write_batch``),
published when the batch is called: the spool's commit record, then the renames (see
:mod:`mallard._store.spool`), then the removal of the batch's files of partitions erased meanwhile."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Protocol

from .lake import Lake, site_of
from .spool import Spool
from .tombstones import Tombstone, Tombstones

__all__ = ["Batch", "PendingBatch"]


class Batch(Protocol):
    """What ``Store.write_batch`` returns: called, it publishes the batch."""

    @property
    def partitions(self) -> frozenset[tuple[str, date]]:
        """(site_id, date) of every partition the batch adds a file to."""

    def __call__(self) -> None: ...


class PendingBatch:
    """Parquet files written under hidden names; calling the batch publishes them."""

    def __init__(self, lake: Lake, spool: Spool | None, written: list[tuple[Path, Path]],
                 tombstones: Tombstones | None = None, known: frozenset[Tombstone] = frozenset()) -> None:
        self._lake = lake
        self._spool = spool
        self._written = written
        self._tombstones = tombstones
        self._known = known
        self._files = [(final, (site_of(final.parent.parent.name), date.fromisoformat(final.parent.name[5:])))
                       for _, final in written]
        #: (site_id, date) of every partition the batch adds a file to.
        self.partitions: frozenset[tuple[str, date]] = frozenset(part for _, part in self._files)

    def __call__(self) -> None:
        if self._spool is not None:
            try:
                self._spool.commit(self._written)
            except OSError:
                # Not published: the retry writes the batch again, so these copies must not pile up
                # on a disk that is already full.
                for tmp, _ in self._written:
                    tmp.unlink(missing_ok=True)
                raise
        self._lake.publish(self._written)
        if self._tombstones is None:
            return
        # An erasure recorded while the batch was written may have deleted its partitions before the
        # files were in place: the batch's own files of the erased partitions go now.
        late = [t for t in self._tombstones.all() if t not in self._known]
        doomed = [final for final, (site, day) in self._files
                  if any(t.covers_partition(site, day) for t in late)]
        if doomed:
            with self._lake.locked(exclusive=True):
                for final in doomed:
                    final.unlink(missing_ok=True)
