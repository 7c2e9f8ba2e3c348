"""The files under ``state/metrics/`` through which the worker processes of one data directory add up
their metrics.

``PROMETHEUS_MULTIPROC_DIR`` cannot be used (it must be set before the host imports
prometheus_client), so mallard keeps its own small scheme::

    <host>-<pid>-<token>.lock   exclusively flock'ed by its process for as long as it lives
    <host>-<pid>-<token>.json   that process's latest snapshot (temporary file + rename)
    archive.json                counter and histogram totals of processes that are gone
    archive.lock                flock'ed exclusively while dead snapshots are merged into the archive

A scrape adds the serving process's live values, every other snapshot and the archive. A snapshot
whose lock can be taken belongs to a dead process: under ``archive.lock`` it is added to
``archive.json`` (which lists the ids it has absorbed, so a crash between writing the archive and
deleting the snapshot never counts it twice) and deleted. Gauges are summed (or, for 0/1 flags, maxed)
over live processes only. A process that cannot write here still reads: it takes ``archive.lock``
shared and archives nothing. Every write and lock goes through :class:`~mallard._state.StateDir`.

flock does not work across hosts over NFS: share a data directory between processes of one machine only.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from .._state import StateDir
from .totals import Gathered, Totals

__all__ = ["SnapshotFiles"]

log = logging.getLogger("mallard.metrics")

_FORMAT: Final = 1
_DIRECTORY: Final = "metrics"
_ARCHIVE: Final = "archive"
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError)


@dataclass(slots=True)
class _Peer:
    """Another process's files, seen during a scrape."""

    id: str
    alive: bool
    snapshot: dict[str, Any] | None = None


class SnapshotFiles:
    """This process's files under ``state/metrics/``, and the sum over every process's files.

    Not thread-safe: its owner (:class:`~mallard._telemetry.ProcessCounters`) serialises the calls.

    Args:
        state_dir: The shared ``state/`` directory.
    """

    def __init__(self, state_dir: Path | str) -> None:
        self._state = StateDir(Path(state_dir))
        self._dir = self._state.path(_DIRECTORY)
        self._liveness: ExitStack | None = None  # holds <id>.lock while this process is live
        self._last: bytes | None = None
        #: This process's name here: ``<host>-<pid>-<token>``.
        self.id = ""

    def renew(self, *, live: bool) -> None:
        """Take a new identity and, if ``live``, its liveness lock (at start, and in a fork child).

        A fork child lets go of its copy of the parent's lock first: the parent's lock stays the parent's.
        A directory that cannot be written is logged: the process then only reads.
        """
        self.release()
        self._last = None
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        if not live:
            return
        hidden = f"{_DIRECTORY}/.{self.id}.lock.new"
        stack = ExitStack()
        try:
            # Lock under a hidden name, then rename: nobody ever sees our lock file unlocked.
            stack.enter_context(self._state.lock(hidden))
            os.replace(self._state.path(hidden), self._dir / f"{self.id}.lock")
        except OSError as exc:
            stack.close()
            log.warning("metrics: cannot write under %s (%s); this process's metrics will not be shared "
                        "with other workers", self._dir, exc)
            return
        self._liveness = stack

    def release(self) -> None:
        """Let go of the liveness lock: this process's snapshot is then a dead one, archived when
        next gathered."""
        if self._liveness is not None:
            self._liveness.close()
            self._liveness = None

    def write(self, own: Totals, gauges: Mapping[str, float]) -> bool:
        """Replace this process's snapshot (skipped when unchanged); ``False`` if it cannot be written."""
        if self._liveness is None:
            return False
        data = orjson.dumps({"v": _FORMAT, "id": self.id, **own.to_json(), "gauges": dict(gauges)})
        if data == self._last:
            return True
        try:
            self._state.write(f"{_DIRECTORY}/{self.id}.json", data)
        except OSError as exc:
            log.warning("metrics: cannot write snapshot under %s: %s", self._dir, exc)
            return False
        self._last = data
        return True

    def gather(self, into: Gathered) -> None:
        """Add the archive and every other process's snapshot to ``into``, the live ones' gauges too;
        archive the dead ones if this process may write here."""
        with self._archive_lock() as exclusive, ExitStack() as held:
            archive, merged, archive_ok = self._read_archive()
            into.totals.add(archive)
            peers = list(self._peers(merged, held))
            for peer in peers:
                if peer.snapshot is not None:
                    try:
                        into.totals.add(Totals.from_json(peer.snapshot))
                    except _MALFORMED as exc:
                        log.warning("metrics: ignoring malformed snapshot %s: %s", peer.id, exc)
                        peer.snapshot = None
                if peer.alive:
                    into.add_live((peer.snapshot or {}).get("gauges", {}))
            dead = [p for p in peers if not p.alive]
            if exclusive and archive_ok and dead:
                self._archive(archive, merged, dead)

    @contextmanager
    def _archive_lock(self) -> Iterator[bool]:
        """Hold ``archive.lock``: exclusively if we can write here (yields True), else shared if we can
        read it, else not at all (yields False both ways)."""
        name = f"{_DIRECTORY}/{_ARCHIVE}.lock"
        with ExitStack() as stack:
            exclusive = True
            try:
                stack.enter_context(self._state.lock(name))
            except OSError:
                exclusive = False
                with suppress(OSError):
                    stack.enter_context(self._state.lock(name, shared=True, create=False))
            yield exclusive

    def _read_archive(self) -> tuple[Totals, set[str], bool]:
        """The archive's totals, the ids it absorbed, and whether it may be rewritten."""
        path = self._dir / f"{_ARCHIVE}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Totals(), set(), True
        except OSError as exc:
            log.warning("metrics: cannot read the archive: %s", exc)
            return Totals(), set(), False
        try:
            data = orjson.loads(raw)
            return Totals.from_json(data), {str(i) for i in data.get("merged", [])}, True
        except _MALFORMED as exc:
            # Never overwrite it: that would send every counter back. Dead snapshots stay unarchived
            # (and counted) until an operator looks.
            log.error("metrics: %s is malformed (%s); not archiving until it is fixed", path, exc)
            return Totals(), set(), False

    def _peers(self, merged: set[str], held: ExitStack) -> Iterator[_Peer]:
        """Every other process with files here, probing its lock (taken and kept in ``held`` when it
        is dead); the snapshots the archive absorbed are not read."""
        try:
            names = os.listdir(self._dir)
        except OSError:
            return
        ids = {n.rpartition(".")[0] for n in names
               if not n.startswith(".") and n.endswith((".lock", ".json"))} - {_ARCHIVE}
        for pid in sorted(ids - {self.id if self._liveness is not None else ""}):
            alive = True
            try:
                with ExitStack() as probe:
                    lock = self._state.lock(f"{_DIRECTORY}/{pid}.lock", wait=False, create=False)
                    if probe.enter_context(lock):
                        alive = False
                        held.enter_context(probe.pop_all())
            except FileNotFoundError:
                alive = False  # a snapshot without a lock: its process is gone
            except OSError:
                pass  # cannot tell: count it as live
            snapshot = None
            if pid not in merged:
                try:
                    snapshot = orjson.loads((self._dir / f"{pid}.json").read_bytes())
                except FileNotFoundError:
                    pass
                except (OSError, ValueError) as exc:
                    log.warning("metrics: cannot read snapshot %s: %s", pid, exc)
            yield _Peer(pid, alive, snapshot if isinstance(snapshot, dict) else None)

    def _archive(self, archive: Totals, merged: set[str], dead: list[_Peer]) -> None:
        """Add dead snapshots to ``archive.json``, then delete them (caller holds archive.lock)."""
        for peer in dead:
            if peer.snapshot is not None:
                archive.add(Totals.from_json(peer.snapshot))
        # Keep only the absorbed ids whose snapshot still exists (a crash came between the two steps).
        keep = {i for i in merged if (self._dir / f"{i}.json").exists()} | {p.id for p in dead}
        data = orjson.dumps({"v": _FORMAT, **archive.to_json(), "merged": sorted(keep)})
        try:
            self._state.write(f"{_DIRECTORY}/{_ARCHIVE}.json", data)
        except OSError as exc:
            log.warning("metrics: cannot write the archive: %s", exc)
            return
        # Temporary files left by a process killed while writing (ours too: we hold the archive lock).
        leftovers = [*self._dir.glob(f".{_ARCHIVE}.json.*tmp")]
        for peer in dead:
            leftovers += self._dir.glob(f".{glob.escape(peer.id)}.json.*tmp")
            with suppress(OSError):
                (self._dir / f"{peer.id}.json").unlink(missing_ok=True)
                (self._dir / f"{peer.id}.lock").unlink(missing_ok=True)
        for path in leftovers:
            with suppress(OSError):
                path.unlink(missing_ok=True)
