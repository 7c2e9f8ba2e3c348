"""Maintenance: what a started :class:`~mallard._app.Mallard` does in the background, and what it tracks.

Every ``_TICK`` seconds the thread runs the instance's quick chores (a metrics snapshot for the other
workers, a retry of a spool after a full disk, a recovery that failed at start); every compaction interval
(six flush intervals, at least 10 s) it replays the spools of workers that died since, compacts the
partitions this process wrote, builds the stored sessions and rollups of the days that need them (the
settled days near what it wrote, every day once per UTC day, after which it checks what each site's first
dashboard view will check, queries/prepare.py; then the open days' provisional sessions,
queries/provisional.py) and, once a day, applies retention. A failed pass is logged; the next one runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Final

from ._progress import Progress, silent
from ._settings import Settings
from ._store import Store

__all__ = ["Maintenance"]

log = logging.getLogger("mallard")

TICK: Final = 2.0  # seconds between the quick chores (a metrics snapshot for other workers…)


class Maintenance:
    """The background passes over ``store`` and the partitions this process wrote since the last."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._gap = settings.session_window_minutes * 60
        #: Run for each site after the daily pass over every day: what a first view checks, done ahead
        #: of it (queries/prepare.py); None: nothing.
        self.prepare: Callable[[str], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget what was written (a forked child starts afresh)."""
        self._touched: set[tuple[str, date]] = set()  # partitions written since the last compaction
        self._near: set[tuple[str, date]] = set()  # ...since the last sessions pass
        self._checked: date | None = None  # the UTC day of the last pass over every day

    def written(self, partitions: Iterable[tuple[str, date]]) -> None:
        """Note (site, day) partitions this process just published."""
        touched = set(partitions)
        self._touched |= touched
        self._near |= touched

    def erased(self) -> None:
        """An erasure deleted stored sessions: the next pass looks at every day."""
        self._checked = None

    def run(self, stop: threading.Event, chores: Callable[[], None],
            recover: Callable[[], None]) -> None:
        """The maintenance thread's loop, until ``stop`` is set: ``chores`` every :data:`TICK`
        seconds, then each compaction interval ``recover`` and the passes described above."""
        interval = max(10.0, self._settings.flush_interval_secs * 6)
        last_retention: date | None = None
        next_compaction = time.monotonic() + interval
        while not stop.wait(TICK):
            try:
                chores()
                if time.monotonic() < next_compaction:
                    continue
                next_compaction = time.monotonic() + interval
                recover()
                self.compact(only_touched=True)
                self._store.vacuum()  # a shared lake's unreferenced objects, after their grace period
                self._sessions_pass(budget_secs=interval / 2)
                today = self._clock().astimezone(UTC).date()
                if self._settings.retention_days and last_retention != today:
                    self.apply_retention()
                    last_retention = today
            except Exception as exc:
                log.error("maintenance failed: %s", exc)

    def compact(self, *, only_touched: bool = False, progress: Progress = silent) -> int:
        """Merge small Parquet files (see ``compact_after_files``). Returns partitions compacted."""
        s = self._settings
        if s.compact_after_files == 0 and only_touched:
            return 0
        min_files = s.compact_after_files or 2
        if not only_touched:
            return self._store.compact(min_files=min_files, target_bytes=s.compact_target_bytes,
                                       progress=progress)
        touched, self._touched = self._touched, set()
        step = progress("compact", len(touched), "partitions")
        done = 0
        for site, day in touched:
            done += self._store.compact(min_files=min_files, target_bytes=s.compact_target_bytes,
                                        site_id=site, day=day)
            step(1)
        return done

    def build_sessions(self, *, budget_secs: float = 600.0, progress: Progress = silent) -> int:
        """Store the sessions and rollups of every settled day that needs them, then the open days'
        provisional sessions, for at most ``budget_secs``. Returns the number of days built."""
        from ._queries.backfill import backfill

        settled, opened = backfill(self._store, self._gap, self._clock(), budget_secs=budget_secs,
                                   progress=progress)
        return settled.built + opened

    def _sessions_pass(self, budget_secs: float) -> None:
        """Every day once per UTC day (a new day settles; other processes' changes), else only the days
        near partitions this process wrote since; then the open days' provisional partitions that are
        missing, stale or old."""
        from ._queries.backfill import backfill

        now = self._clock().astimezone(UTC)
        full = self._checked != now.date()
        near, self._near = self._near, set()
        settled, _ = backfill(self._store, self._gap, now, budget_secs=budget_secs,
                              near=None if full else near)
        if settled.complete:
            if full:
                self._checked = now.date()
                self._prepare()
        else:
            self._near |= near  # try them again next time

    def _prepare(self) -> None:
        """:attr:`prepare` each site (a failure is logged: it only comes ahead of a view)."""
        prepare = self.prepare
        if prepare is None:
            return
        for site in self._store.lake.sites():
            try:
                prepare(site)
            except Exception as exc:
                log.warning("preparing the first view of %s failed: %s", site, exc)

    def apply_retention(self) -> int:
        """Delete partitions older than ``retention_days``. Returns partitions deleted."""
        return self._store.apply_retention(self._settings.retention_days,
                                           self._clock().astimezone(UTC).date())
