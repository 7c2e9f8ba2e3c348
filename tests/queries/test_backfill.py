"""The backfill (mallard/_queries/backfill.py): the days it builds and what it reports to its progress
callback on a real lake: one phase, its total the days it found to build, a step per day built."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mallard._queries import backfill
from mallard._store import Store

from ..factories import make_event
from ..test_progress import Recorder

SITE = "b.example"
DAYS = [date(2024, 5, 1) + timedelta(days=i) for i in range(6)]  # 05-01 … 05-06
GAP_S = 1800


def _store(path: Path) -> Store:
    store = Store(path)
    store.write_batch([make_event(site_id=SITE, visitor_id=f"v{i}", pathname="/",
                                  timestamp=datetime.combine(d, datetime.min.time()) + timedelta(hours=9))
                       for i, d in enumerate(DAYS)])()
    return store


def test_settled_days_are_counted_then_built(tmp_path: Path) -> None:
    """Days up to today - 2 are settled: four of six here; a second pass finds nothing to build."""
    store = _store(tmp_path)
    try:
        first, again = Recorder(), Recorder()
        done = backfill.build_settled(store, GAP_S, today=DAYS[-1], budget_secs=60, progress=first)
        assert (done.built, done.complete) == (4, True)
        assert first.phases == [("sessions", 4, "days")] and first.done == [4]
        assert sorted(store.session_files.listing(SITE)) == DAYS[:4]
        backfill.build_settled(store, GAP_S, today=DAYS[-1], progress=again)
        assert again.phases == [("sessions", 0, "days")] and again.done == [0]
    finally:
        store.close()


def test_one_pass_counts_the_settled_and_the_open_days(tmp_path: Path) -> None:
    """backfill's total is the settled days plus the open ones (yesterday and today, with events)."""
    store = _store(tmp_path)
    try:
        seen = Recorder()
        now = datetime.combine(DAYS[-1], datetime.min.time(), UTC) + timedelta(hours=12)
        settled, opened = backfill.backfill(store, GAP_S, now, budget_secs=60, progress=seen)
        # yesterday: sessions and attributed events; today: those and rollups
        assert (settled.built, settled.complete, opened) == (4, True, 5)
        assert seen.phases == [("sessions", 6, "days")] and seen.done == [6]
    finally:
        store.close()


def test_out_of_time_the_pass_says_so(tmp_path: Path) -> None:
    """With no time left, nothing is built: the total is reported, no step, and the pass incomplete."""
    store = _store(tmp_path)
    try:
        seen = Recorder()
        done = backfill.build_settled(store, GAP_S, today=DAYS[-1], budget_secs=-1, progress=seen)
        assert (done.built, done.complete) == (0, False)
        assert seen.phases == [("sessions", 4, "days")] and seen.done == [0]
    finally:
        store.close()
