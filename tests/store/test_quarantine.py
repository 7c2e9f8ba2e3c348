"""A corrupt Parquet file in the lake is quarantined; queries and compaction go on with the other files."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import mallard
from mallard import InvalidQueryError, Mallard, Queries
from mallard._errors import QueryTimeoutError
from tests.conftest import FrozenClock
from tests.lake_damage import SITE, age, build_lake, garble, is_undecodable, truncate

ROOT = Path(__file__).resolve().parents[2]
DAYS = [date(2024, 4, 28), date(2024, 4, 29), date(2024, 4, 30)]
RANGE = {"start_date": "2024-04-25", "end_date": "2024-05-01"}

#: Query kinds of the Python API: the aggregate presets, the behavioural analyses, export and raw SQL.
QUERIES: dict[str, Callable[[Queries], Any]] = {
    "main": lambda q: q.main(SITE, **RANGE),
    "timeseries": lambda q: q.timeseries(SITE, **RANGE).rows,
    "breakdown": lambda q: q.breakdown(SITE, "pages", **RANGE).rows,
    "sessions": lambda q: q.sessions(SITE, **RANGE),
    "funnel": lambda q: q.funnel(SITE, ["page:/a", "page:/b"], **RANGE),
    "sequences": lambda q: q.sequences(SITE, ["page:/a", "page:/c"], **RANGE),
    "retention": lambda q: q.retention(SITE, **RANGE),
    "flow": lambda q: q.flow(SITE, "/a", **RANGE),
    "export": lambda q: q.export(SITE, kind="raw", **RANGE).rows,
    "sql": lambda q: q.sql("SELECT pathname, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL")
    .to_pylist(),
}
DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": truncate, "garbled": garble}


@pytest.fixture
def lake(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Mallard, dict[date, Path]]]:
    m = Mallard(data_dir=tmp_path / "data", clock=clock)
    try:
        yield m, build_lake(m.store, DAYS)
    finally:
        m.close()


def quarantined_path(m: Mallard, path: Path) -> Path:
    return m.store.data_dir / "quarantine" / path.relative_to(m.store.events_dir)


def without(path: Path, ask: Callable[[], Any]) -> Any:
    """The answer of ``ask()`` while ``path`` is not in the lake."""
    aside = path.with_name(".aside")
    path.rename(aside)
    try:
        return ask()
    finally:
        aside.rename(path)


def damage(kind: str, path: Path) -> None:
    DAMAGE[kind](path)
    if kind == "garbled":
        assert is_undecodable(path), "the garbled file must really fail to decode in DuckDB"


@pytest.mark.parametrize("damaged", list(DAMAGE))
@pytest.mark.parametrize("kind", list(QUERIES))
def test_damaged_file_is_quarantined_and_the_query_answers_from_the_others(
        lake: tuple[Mallard, dict[date, Path]], kind: str, damaged: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The query answers exactly what it answers without the file, and the file is moved aside once."""
    m, files = lake
    ask = QUERIES[kind]
    bad = files[DAYS[1]]
    full = ask(m.queries)
    expected = without(bad, lambda: ask(m.queries))
    assert expected != full, "the damaged file's events must matter to this answer"
    damage(damaged, bad)
    age(bad)
    kept = bad.read_bytes()
    with caplog.at_level(logging.INFO, logger="mallard"):
        assert ask(m.queries) == expected
    assert not bad.exists()
    moved = quarantined_path(m, bad)
    assert moved.read_bytes() == kept  # the operator can still inspect it
    count, listed = m.store.quarantined()
    assert count == 1
    assert listed[0].file == bad.relative_to(m.store.events_dir).as_posix()
    assert listed[0].reason and listed[0].quarantined_at
    assert json.loads(moved.with_name(moved.name + ".json").read_text())["file"] == listed[0].file
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "quarantined" in warnings[0].getMessage()
    assert "/a" not in warnings[0].getMessage().replace(str(m.store.data_dir), "")  # no event data
    assert ask(m.queries) == expected  # and afterwards, without it
    assert "mallard_quarantined_files_total 1.0" in m.metrics.render()[0].decode()


def test_freshly_modified_damaged_file_is_skipped_not_moved(
        lake: tuple[Mallard, dict[date, Path]], caplog: pytest.LogCaptureFixture) -> None:
    """A file written in place by another tool may be incomplete: left out of the answer, left in
    place, and quarantined only once it is older than quarantine_grace_secs."""
    m, files = lake
    ask = QUERIES["main"]
    bad = files[DAYS[1]]
    expected = without(bad, lambda: ask(m.queries))
    truncate(bad)  # modified just now
    with caplog.at_level(logging.INFO, logger="mallard"):
        assert ask(m.queries) == expected
    assert bad.exists() and not quarantined_path(m, bad).exists()
    assert m.store.quarantined() == (0, [])
    assert any("skipping" in r.getMessage() for r in caplog.records)
    age(bad, m.settings.quarantine_grace_secs + 5)
    assert ask(m.queries) == expected
    assert not bad.exists() and quarantined_path(m, bad).exists()


def test_erasure_and_retention_delete_quarantined_files_of_their_range(
        lake: tuple[Mallard, dict[date, Path]]) -> None:
    """A quarantined file still holds events: a GDPR erasure or the retention job of its dates deletes
    it (with its note), and leaves the quarantined files of other dates alone."""
    m, files = lake
    for day in DAYS:
        truncate(files[day])
        age(files[day], m.settings.quarantine_grace_secs + 5)
    QUERIES["main"](m.queries)
    assert m.store.quarantined()[0] == 3
    m.erase(SITE, DAYS[1], DAYS[1])
    assert not quarantined_path(m, files[DAYS[1]]).exists()
    assert m.store.quarantined()[0] == 2
    m.store.apply_retention(1, DAYS[2])  # keeps DAYS[2] and the day before
    assert [quarantined_path(m, files[d]).exists() for d in DAYS] == [False, False, True]
    assert m.store.quarantined()[0] == 1


def test_every_file_of_the_range_damaged_answers_empty(lake: tuple[Mallard, dict[date, Path]]) -> None:
    m, files = lake
    bad = files[DAYS[1]]
    truncate(bad)
    age(bad)
    day = DAYS[1].isoformat()
    stats = m.queries.main(SITE, start_date=day, end_date=day)
    assert stats.unique_visitors == 0 and stats.total_pageviews == 0
    assert quarantined_path(m, bad).exists()


def test_read_only_open_skips_damaged_file_without_moving_it(
        lake: tuple[Mallard, dict[date, Path]]) -> None:
    m, files = lake
    bad = files[DAYS[1]]
    with mallard.open(m.store.data_dir) as q:
        expected = without(bad, lambda: QUERIES["breakdown"](q))
        garble(bad)
        age(bad)
        assert QUERIES["breakdown"](q) == expected
    assert bad.exists() and not (m.store.data_dir / "quarantine").exists()


def test_errors_not_caused_by_a_file_propagate_and_quarantine_nothing(
        lake: tuple[Mallard, dict[date, Path]]) -> None:
    m, files = lake
    for path in files.values():
        age(path)
    with pytest.raises(InvalidQueryError, match="SQL error"):
        m.queries.sql("SELECT regexp_matches(pathname, '(') FROM events")
    with pytest.raises(InvalidQueryError, match="SQL error"):
        m.queries.sql("SELECT CAST(pathname AS INTEGER) FROM events")
    # Hours of work over the lake files, stopped by the time limit: a timeout, not a file's fault.
    with pytest.raises(QueryTimeoutError), m.store.time_limit(0.5):
        m.queries.sql("SELECT count(*) FROM events, range(1000000000000)")
    assert all(p.exists() for p in files.values())
    assert m.store.quarantined() == (0, [])


# -- compaction ----------------------------------------------------------------------------------------
def test_compact_command_quarantines_the_bad_file_and_compacts_the_other_partitions(
        tmp_path: Path, clock: FrozenClock) -> None:
    """``mallard compact`` with one bad partition among good ones: exit 0, the others compacted."""
    data = tmp_path / "data"
    m = Mallard(data_dir=data, clock=clock)
    build_lake(m.store, DAYS)
    second = build_lake(m.store, DAYS)
    m.close()
    bad = second[DAYS[1]]
    truncate(bad)
    age(bad)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}
    env.update(PYTHONPATH=str(ROOT), MALLARD_COMPACT_AFTER_FILES="2")
    out = subprocess.run([sys.executable, "-m", "mallard", "compact", "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    relative = bad.relative_to(data / "events").as_posix()
    assert "compacted 2 partition(s)" in out.stdout
    assert f"quarantined {relative}" in out.stdout
    store = mallard.Store(data, read_only=True)
    assert [len(store.lake.files(SITE, d, d)) for d in DAYS] == [1, 1, 1]
    assert (data / "quarantine" / relative).exists()
    assert "Traceback" not in out.stderr


def test_compaction_leaves_a_fresh_bad_file_in_place(lake: tuple[Mallard, dict[date, Path]]) -> None:
    m, _ = lake
    second = build_lake(m.store, DAYS)
    bad = second[DAYS[1]]
    truncate(bad)
    assert m.store.compact(min_files=2, target_bytes=1 << 30) == 2
    assert bad.exists() and m.store.quarantined() == (0, [])
    assert [len(m.store.lake.files(SITE, d, d)) for d in DAYS] == [1, 2, 1]


# -- several processes -----------------------------------------------------------------------------
@pytest.mark.slow
def test_two_processes_meeting_the_same_bad_file_both_answer_and_it_is_quarantined_once(
        lake: tuple[Mallard, dict[date, Path]]) -> None:
    """Both processes read the damaged file at once (each holds the lake lock shared before either
    queries); both answer without it; one moves it, the other finds it gone."""
    m, files = lake
    bad = files[DAYS[1]]
    expected = without(bad, lambda: QUERIES["main"](m.queries)).to_dict()
    garble(bad)
    age(bad)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLARD_")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "tests.procs.quarantine_reader", str(m.store.data_dir), SITE,
           RANGE["start_date"], RANGE["end_date"]]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "reading"
        for p in procs:  # both hold the lake lock shared: neither can move the file before both read it
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        answer, done = out.strip().splitlines()
        assert json.loads(answer) == expected and done == "done"
    logs = "".join(err for _, err in outputs)
    assert logs.count("quarantined unreadable lake file") == 1, logs
    assert m.store.quarantined()[0] == 1 and not bad.exists()
    # Both processes have exited: their counters are in their last snapshots.
    assert "mallard_quarantined_files_total 1.0" in m.metrics.render()[0].decode()
