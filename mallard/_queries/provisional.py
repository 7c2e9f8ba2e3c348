"""Provisional session partitions: the open days' sessions stored up to a horizon, completed when read.

A day's sessions are stored for good once the day is settled (stored.py: two days old). Before that,
every query used to compute the open days (yesterday and today) from their events: at 5M events most of
a dashboard view's time. So maintenance also stores, for each open day ``D``, a *provisional* partition
taken at a horizon ``H`` (a minute or so before the build, :data:`LAG`, so that the events before it
are flushed): the sessions starting on ``D`` that are *closed* at ``H`` (their last event is more than
the session window before ``H``: no later event can join them). A reader completes it with the sessions
that were still open at ``H``, computed from few events:

* every event at or after ``H``, and
* the events since ``S`` of the visitors of the sessions open at ``H`` (their visitor keys, kept in the
  file's metadata, :data:`OPEN_KEYS`), where ``S`` is the earliest start of those sessions (whatever
  day they start on: a session crossing midnight must be seen from its start, or its tail would look
  like a session of ``D``).

Of the sessions computed from those events, a reader keeps those starting on ``D`` whose last event is
at ``H`` minus the window or later. A session in that set has all its events there; any other session
computed there is the tail of one closed at ``H`` (it ends before ``H`` minus the window, so it is left
out), or starts at ``H`` or later. The union is exactly the day's sessions (the property tests check it
against a computation from every event).

Freshness: the partition's fingerprint hashes the names of the event files, of the days from the one
before ``D`` to ``H``'s, holding an event before ``H`` (:meth:`~mallard._store.lake.Lake.earliest`);
files flushed since, all later than ``H``, leave it fresh, and a late event before ``H``, a compaction
or an erasure makes it stale (then computed from events, and built again by the next maintenance pass).
A process's buffered events before ``H`` make it stale for that process's queries as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._store.derived import fingerprint
from . import sessions as _sessions
from .sql import Sql

if TYPE_CHECKING:
    from datetime import date

    from .._store import Store
    from .._store.derived import DerivedPartition
    from .._store.lake import Lake

__all__ = ["LAG", "OPEN_KEYS", "REFRESH", "Partial", "build", "files_before", "fresh", "horizon_at",
           "open_keys", "partial", "version"]

#: How long before a build its horizon is: events before it are expected in the lake already (the
#: buffers flush every few seconds); a later one makes the partition stale, not wrong.
LAG: Final = timedelta(minutes=1)
#: A provisional partition older than this is built again at the next maintenance pass (what a reader
#: computes grows with the events since its horizon).
REFRESH: Final = timedelta(minutes=5)
#: The Parquet metadata key of the visitor keys of the sessions open at the horizon (little-endian
#: unsigned 64-bit integers).
OPEN_KEYS: Final = b"mallard.open_visitor_keys"

_DAY: Final = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def horizon_at(now: datetime) -> datetime:
    """The horizon of a build at ``now`` (naive UTC): :data:`LAG` before it, to the second."""
    return (now - LAG).replace(microsecond=0)


def version(base: int | str, horizon: datetime) -> str:
    """What a provisional partition's fingerprint hashes besides its files: ``base``, what a settled
    partition's hashes (the session window for sessions: :func:`mallard._queries.sessions.version`; the
    rollups' format), and the horizon."""
    return f"{base}/horizon={horizon.isoformat()}"


def files_before(store: Store, files: Iterable[str], horizon: datetime) -> list[str]:
    """Those of the event ``files`` holding an event before ``horizon`` (what a provisional partition's
    fingerprint hashes; a file gone meanwhile is left out)."""
    out = []
    for f in files:
        try:
            first = store.lake.earliest(f)
        except FileNotFoundError:
            continue  # merged or deleted meanwhile: the current listing decides
        if first is not None and first < horizon:
            out.append(f)
    return out


def fresh(store: Store, site: str, part: DerivedPartition, base: int | str,
          held_since: datetime | None) -> bool:
    """Whether the provisional ``part`` (of sessions or rollups, built with :func:`version` ``base``) may
    be served: the files holding events before its horizon are those it was built from, and no buffered
    event (the earliest: ``held_since``) is before it."""
    assert part.horizon is not None
    if held_since is not None and held_since < part.horizon:
        return False
    files = files_before(store, store.lake.files(site, part.first, part.last), part.horizon)
    return fingerprint(files, version(base, part.horizon)) == part.fingerprint


def build(store: Store, site: str, day: date, gap_seconds: int, horizon: datetime
          ) -> DerivedPartition | None:
    """Store the provisional partition of ``day`` at ``horizon`` from the lake's files (not the
    buffer). None when nothing was written (a source file vanished meanwhile)."""
    from .stored import session_ends, session_rows, storage_order

    gap = timedelta(seconds=gap_seconds)
    start = _midnight(day) - gap
    with store.reading(site, start.date(), horizon.date()) as reader:
        table = session_rows(reader, site, start, horizon, gap_seconds)
        files = reader.files
    is_open = pc.greater_equal(session_ends(table), pa.scalar(horizon - gap, pa.timestamp("us")))
    opened = table.filter(is_open)
    since = min(horizon, pc.min(opened.column("start_time")).as_py() or horizon).replace(microsecond=0)
    keys = pc.unique(pc.list_flatten(opened.column("visitor_keys")))
    closed = table.filter(pc.and_(pc.invert(is_open), pc.equal(
        pc.cast(table.column("start_time"), pa.date32()), pa.scalar(day, pa.date32()))))
    closed = storage_order(closed).replace_schema_metadata(
        {OPEN_KEYS: np.asarray(pc.cast(keys, pa.uint64()), dtype="<u8").tobytes()})
    return store.session_files.publish(
        site, day, closed, files_before(store, files, horizon), start.date(), horizon.date(),
        version(_sessions.version(gap_seconds), horizon), horizon=(horizon, since))


def build_rollups(store: Store, site: str, day: date, horizon: datetime) -> DerivedPartition | None:
    """Store the provisional rollups of ``day`` (the open day: ``horizon``'s) at ``horizon``: the rows of
    its events before the horizon, from the lake's files. A reader completes them with
    :func:`mallard._queries.rollups.since_horizon`. None when nothing was written."""
    from . import rollups

    done = rollups.compute(store, store.reading, site, [day], bounds=(_midnight(day), horizon))
    return store.rollup_files.publish(
        site, day, done.table.drop_columns(["day"]), files_before(store, done.files, horizon), day, day,
        version(rollups.VERSION, horizon), horizon=(horizon, horizon))


class Partial:
    """What a reader computes to complete provisional partitions (:func:`partial`): the sessions
    starting on their days that were open at their horizons."""

    def __init__(self, parts: Mapping[date, DerivedPartition], keys: pa.Table) -> None:
        self.parts = dict(parts)
        self.keys = keys  # one column ``k`` (UBIGINT): the open sessions' visitor keys
        self.since = min(p.since for p in parts.values() if p.since is not None)
        self.horizon = min(p.horizon for p in parts.values() if p.horizon is not None)

    def scope(self, keys_view: str) -> Sql:
        """The events to sessionise (a condition on the scoped events)."""
        return Sql(f"(timestamp >= ? OR {_sessions.visitor_key('visitor_id')} IN "
                   f"(SELECT k FROM {keys_view}))", (self.horizon,))

    def keep(self, gap_seconds: int) -> Sql:
        """The computed sessions to keep: those of each day still open at its horizon."""
        gap = timedelta(seconds=gap_seconds)
        return Sql.join([Sql("(start_time::DATE = ? AND start_time + to_microseconds(duration_us) >= ?)",
                             (d, p.horizon - gap)) for d, p in sorted(self.parts.items())
                         if p.horizon is not None], " OR ")


@lru_cache(maxsize=256)
def open_keys(lake: Lake, path: str) -> pa.Array | None:
    """The visitor keys of the sessions open at the horizon, from the provisional file ``path`` of
    ``lake``'s filesystem (None: the file cannot be read). Remembered: a file's name is never reused for
    other rows."""
    try:
        # the file's key-value metadata, not its Arrow schema: that would import pandas (0.3 s)
        meta = lake.metadata(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    raw = meta.get(OPEN_KEYS, b"")
    if len(raw) % 8:
        return None
    native = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
    # from the buffer: pa.array(<numpy array>) would import pandas (0.3 s, on a cold query's path)
    return pa.Array.from_buffers(pa.uint64(), len(native), [None, pa.py_buffer(native.tobytes())])


def partial(parts: Mapping[date, tuple[DerivedPartition, pa.Array]]) -> Partial | None:
    """The computation completing the provisional ``parts`` (with their :func:`open_keys`; None:
    nothing to compute, every session of their days was closed at the horizon and the horizon is
    past their end)."""
    needed = {d: pk for d, pk in parts.items()
              if pk[0].since is not None and pk[0].since < _midnight(d) + _DAY}
    if not needed:
        return None
    keys = pa.table({"k": pc.unique(pa.concat_arrays([k for _, k in needed.values()]))})
    return Partial({d: p for d, (p, _) in needed.items()}, keys)
