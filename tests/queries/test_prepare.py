"""What a first view checks, established ahead of it (queries/prepare.py): after maintenance's daily
pass, a new process's first view of the default period finds every check of its stored files done."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mallard
from mallard._queries import Queries, rollups, visits
from mallard._store import Store

from .test_stored_sessions import DAYS, GAP_S, SITE, _event
from .test_visits import _session

NOW = datetime.combine(DAYS[5] + timedelta(days=2), datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)


def _traffic() -> list[Any]:
    """Visits on each of the six days, some across midnight (so that the days' keys meet; none after the
    last day, whose events are all settled at :data:`NOW`: nothing is computed by the views)."""
    out = []
    for i, day in enumerate(DAYS):
        start = datetime.combine(day, datetime.min.time())
        if day != DAYS[-1]:
            out += _session(f"p{i}", start + timedelta(hours=23.9), "Google")
        out += _session(f"q{i}", start + timedelta(hours=10), "Bing")
        out.append(_event(f"r{i}", start + timedelta(hours=12), "pageview", "/a", {}, False))
    return out


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checks of stored rollup and visit files run from now on (their statements)."""
    ran: list[str] = []
    for module in (rollups, visits):
        real = module.holds

        def counted(*args: Any, _real: Any = real, _name: str = module.__name__, **kwargs: Any) -> bool:
            ran.append(_name)
            return bool(_real(*args, **kwargs))

        monkeypatch.setattr(module, "holds", counted)
    return ran


def test_after_the_daily_pass_a_first_view_checks_nothing(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    app = mallard.Mallard(mallard.Settings(data_dir=data, session_window_minutes=GAP_S // 60),
                          clock=lambda: NOW)
    try:
        app.store.write_batch(_traffic())()
        app._upkeep._sessions_pass(budget_secs=60)  # maintenance's daily pass: builds, then prepares
        assert app.store.visit_files.listing(SITE) and app.store.rollup_files.listing(SITE)
    finally:
        app.close()
    facts = data / "state" / "facts"
    assert len(list(facts.iterdir())) >= 2  # the period's rollups and visit rows (the one before: empty)
    ran = _checks(monkeypatch)
    ask = {"metrics": ["visitors", "pageviews"], "period": "30d"}
    with _opened(data) as q:  # a new process: nothing in memory
        sources = q.query(SITE, dimensions=["visit:source"], **ask).rows
        pages = q.query(SITE, dimensions=["event:page"], **ask).rows
    assert ran == [] and sources and pages
    shutil.rmtree(facts)
    with _opened(data) as q:  # without them, the same view checks (and answers alike)
        assert q.query(SITE, dimensions=["visit:source"], **ask).rows == sources
        assert q.query(SITE, dimensions=["event:page"], **ask).rows == pages
    assert sorted(set(ran)) == ["mallard._queries.rollups", "mallard._queries.visits"]


@contextmanager
def _opened(data: Path) -> Iterator[Queries]:
    """``mallard.open(data)`` at :data:`NOW`."""
    store = Store(data, read_only=True)
    q = Queries(store, mallard.Settings(data_dir=data, session_window_minutes=GAP_S // 60),
                clock=lambda: NOW)
    try:
        yield q
    finally:
        q.close()
