"""``mallard.export_events`` and ``mallard.import_events`` (mallard/_transfer_api.py): the CLI's export and
import from Python, with progress reported to a callback (a notebook's bar, tests/test_progress.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mallard
from mallard._settings import Settings

from .test_progress import Recorder
from .test_transfer import FIRST, LAST, SITE, lake  # noqa: F401  (lake: the module's fixture)


def test_a_raw_export_imports_back_with_progress(lake: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "events.parquet"
    seen = Recorder()
    done = mallard.export_events(str(out), SITE, start_date=FIRST, end_date=LAST, kind="raw",
                                 data_dir=lake, progress=seen)
    assert done.rows > 0 and (done.start_date, done.end_date) == (FIRST, LAST)
    assert seen.phases == [("export", done.rows, "rows")] and seen.done == [done.rows]
    fresh = tmp_path / "fresh"
    seen = Recorder()
    result = mallard.import_events(str(out), settings=Settings(data_dir=fresh), progress=seen)
    got = result.imported
    assert (got.read, got.stored, got.duplicates) == (done.rows, done.rows, 0)
    assert result.tracked_days_skipped == () and result.notes == ()
    assert seen.phases and all(total is None or total >= 0 for _, total, _ in seen.phases)
    assert mallard.open(fresh).main(SITE, start_date=FIRST, end_date=LAST).to_dict() == mallard.open(
        lake).main(SITE, start_date=FIRST, end_date=LAST).to_dict()
    again = mallard.import_events(str(out), data_dir=fresh, progress=False)
    assert (again.imported.stored, again.imported.duplicates) == (0, done.rows)


def test_a_daily_export_writes_the_report(lake: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "daily.csv"
    done = mallard.export_events(str(out), SITE, start_date=FIRST, end_date=LAST, data_dir=lake,
                                 progress=False)
    assert done.rows == (LAST - FIRST).days + 1
    assert out.read_text().splitlines()[0] == '"date","visitors","pageviews","top_page","top_source"'


def test_bad_arguments_are_refused_plainly(lake: Path, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(mallard.MallardError, match="kind is 'daily' or 'raw'"):
        mallard.export_events(str(tmp_path / "x.csv"), SITE, period="7d", kind="weekly",  # type: ignore[arg-type]
                              data_dir=lake)
    with pytest.raises(mallard.MallardError, match="both start_date and end_date"):
        mallard.import_events(str(tmp_path / "x.csv"), start_date="2024-05-01", data_dir=tmp_path / "d")
    with pytest.raises(mallard.MallardError, match="needs the site"):
        mallard.import_events(str(tmp_path), origin="plausible", data_dir=tmp_path / "d")
