"""Progress bars of the long operations (mallard/_progress.py): the core's callbacks drawn as tqdm bars,
in the CLI on stderr when asked, in Python through ``progress=``; the counts compaction reports on a real
lake, through :meth:`Mallard.compact`. The backfill's counts: tests/queries/test_backfill.py; the CLI's
bars: tests/test_cli.py, tests/test_transfer.py."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

import mallard
from mallard import _progress as progress

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class Recorder:
    """A Progress keeping each phase's (what, total, unit) and the units its steps reported."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None, str]] = []
        self.done: list[int] = []

    def __call__(self, what: str, total: int | None, unit: str) -> Callable[[int], None]:
        self.phases.append((what, total, unit))
        self.done.append(0)
        index = len(self.done) - 1

        def step(n: int) -> None:
            self.done[index] += n

        return step


def test_bars_draw_one_bar_per_phase() -> None:
    out = io.StringIO()
    with progress.bars(file=out) as bars:
        step = bars("compact", 3, "partitions")
        for _ in range(3):
            step(1)
        bars("import", 12_000, "rows")(12_000)
    text = out.getvalue()
    assert "compact: 100%" in text and "| 3/3 " in text
    assert "import: 100%" in text and "12.0k/12.0k" in text


def test_no_bars_when_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.bars(show=False) as bars:
        assert bars is progress.silent
        bars("compact", 3, "partitions")(3)
    assert capsys.readouterr().err == ""


def test_chosen_reads_the_python_argument(capsys: pytest.CaptureFixture[str]) -> None:
    """A callback is used as given; True draws (tqdm.auto: text outside a notebook); False and None
    (nobody watches a captured stderr outside a notebook) draw nothing."""
    mine = Recorder()
    with progress.chosen(mine) as got:
        assert got is mine
    for quiet in (False, None):
        with progress.chosen(quiet) as got:
            got("sessions", 2, "days")(2)
    assert capsys.readouterr().err == ""
    with progress.chosen(True) as got:
        got("sessions", 2, "days")(2)
    assert "sessions: 100%" in capsys.readouterr().err


def _two_files_per_day(data: Path, days: tuple[int, ...]) -> None:
    for minute in (0, 30):
        with mallard.Mallard(data_dir=data) as m:
            for day in days:
                m.track("pageview", site="p.example", url="https://p.example/", ip="192.0.2.1",
                        user_agent=UA, timestamp=datetime(2024, 3, day, 9, minute))


def test_compaction_reports_the_partitions_it_merges(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Mallard.compact reports one phase: the partitions with files to merge (a partition with one file
    is not one), then one step per partition merged; a second run has none."""
    _two_files_per_day(tmp_path, (10, 11, 12))
    with mallard.Mallard(data_dir=tmp_path) as m:
        m.track("pageview", site="p.example", url="https://p.example/", ip="192.0.2.1", user_agent=UA,
                timestamp=datetime(2024, 3, 13, 9))
    with mallard.Mallard(data_dir=tmp_path, compact_after_files=2) as m:
        first, again = Recorder(), Recorder()
        assert m.compact(progress=first) == 3
        assert first.phases == [("compact", 3, "partitions")] and first.done == [3]
        assert m.compact(progress=again) == 0
        assert again.phases == [("compact", 0, "partitions")] and again.done == [0]
        assert m.compact(progress=True) == 0
    assert "compact:" in capsys.readouterr().err
