"""The files under state/metrics/: layout, the archive of dead processes, and totals across real
processes that are killed, exit, race to archive, or cannot write."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mallard._telemetry import ProcessCounters

from .helpers import INGESTED, TIMEOUT, Worker, read_only, scrape, summary, total


def test_snapshot_file_layout_and_close_archives(tmp_path: Path) -> None:
    """A process owns <host>-<pid>-<token>.lock/.json; close() folds its totals into archive.json."""
    metrics = ProcessCounters(tmp_path / "state")
    metrics.inc(INGESTED, 3)
    assert metrics.flush_snapshot()
    directory = tmp_path / "state" / "metrics"
    own = metrics.id
    assert own.startswith(f"{os.uname().nodename}-{os.getpid()}-")
    assert {p.name for p in directory.iterdir()} >= {f"{own}.lock", f"{own}.json"}
    assert orjson.loads((directory / f"{own}.json").read_bytes())["counters"] == [[INGESTED, {}, 3]]
    metrics.close()
    metrics.close()
    assert sorted(p.name for p in directory.iterdir()) == ["archive.json", "archive.lock"]
    later = ProcessCounters(tmp_path / "state")
    try:
        assert total(later) == 3 and total(later, "mallard_worker_processes") == 1
    finally:
        later.close()


def test_malformed_archive_is_never_overwritten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt archive.json is logged and kept; dead snapshots stay unarchived but counted."""
    first = ProcessCounters(tmp_path / "state")
    first.inc(INGESTED, 2)
    first.close()
    directory = tmp_path / "state" / "metrics"
    (directory / "archive.json").write_bytes(b"{not json")
    (directory / "ghost-1-ab.json").write_bytes(orjson.dumps({"counters": [[INGESTED, {}, 5]]}))
    metrics = ProcessCounters(tmp_path / "state")
    try:
        assert total(metrics) == 5
        assert (directory / "archive.json").read_bytes() == b"{not json"
        assert (directory / "ghost-1-ab.json").exists()
        assert "malformed" in caplog.text
    finally:
        metrics.close()


def test_snapshot_already_in_the_archive_is_not_counted_again(tmp_path: Path) -> None:
    """A merger that crashed after writing archive.json but before deleting the snapshot causes no
    double count: the archive lists the ids it absorbed, and the leftover files are just removed."""
    directory = tmp_path / "state" / "metrics"
    directory.mkdir(parents=True)
    (directory / "archive.json").write_bytes(orjson.dumps(
        {"counters": [[INGESTED, {}, 10]], "merged": ["gone-1-00"]}))
    (directory / "gone-1-00.lock").touch()
    (directory / "gone-1-00.json").write_bytes(orjson.dumps({"counters": [[INGESTED, {}, 10]]}))
    metrics = ProcessCounters(tmp_path / "state")
    try:
        assert total(metrics) == 10
        assert not list(directory.glob("gone-*"))
        assert total(metrics) == 10
    finally:
        metrics.close()
    assert orjson.loads((directory / "archive.json").read_bytes())["counters"] == [[INGESTED, {}, 10]]


@pytest.mark.slow
def test_totals_across_processes_survive_kill_and_exit(tmp_path: Path,
                                                       spawn: Callable[[Path, int], list[Worker]]) -> None:
    """Workers' counts add up, survive SIGKILL and clean exit, are archived once under racing
    scrapes, and gauges and the worker count cover live processes only."""
    state = tmp_path / "state"
    directory = state / "metrics"
    parent = ProcessCounters(state)
    parent.inc(INGESTED, 7)
    parent.set_gauge_source("mallard_buffered_events", lambda: 1000)
    assert parent.flush_snapshot()
    w0, w1, w2 = spawn(state, 3)
    for worker, amount, gauge in ((w0, 100, 10), (w1, 20, 20), (w2, 3, 30)):
        assert worker(f"inc {amount}") == "ok" and worker(f"gauge {gauge}") == "ok"
        assert worker("snap") == "ok True"
    assert summary(w2("render")) == {"total": 130, "workers": 4, "buffered": 1060}
    samples = scrape(parent)
    assert samples[(INGESTED, ())] == 130 and samples[("mallard_worker_processes", ())] == 4
    assert samples[("mallard_buffered_events", ())] == 1060

    # w0 is the serving process for one scrape, then killed: what it reported must not be lost.
    assert w0("inc 50") == "ok" and summary(w0("render"))["total"] == 180
    assert w0("extra 5 1") == "ok"  # five more instances in w0, all dying with it
    assert w0("inc 999") == "ok"  # never snapshotted: lost with SIGKILL (documented)
    w0.kill()
    assert w1("inc 5") == "ok"
    w1.stop()  # a clean exit writes a final snapshot and archives it
    expected = 7 + 150 + 5 + 25 + 3  # 190

    # Racing scrapers: two instances here (threads) and w2, all merging the same dead snapshots.
    other = ProcessCounters(state)
    results: list[float] = []
    threads = [threading.Thread(target=lambda m=m: results.append(total(m))) for m in (parent, other, parent)]
    w2.send("render")
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert summary(w2.reply())["total"] == expected
    assert results == [expected] * 3
    other.close()
    for _ in range(3):
        samples = scrape(parent)
        assert samples[(INGESTED, ())] == expected
    assert samples[("mallard_worker_processes", ())] == 2
    assert samples[("mallard_buffered_events", ())] == 1030

    archive = orjson.loads((directory / "archive.json").read_bytes())
    assert archive["counters"] == [[INGESTED, {}, 150 + 5 + 25]]
    left = {p.name.rpartition(".")[0] for p in directory.iterdir() if not p.name.startswith("archive")}
    assert left == {parent.id, w2.id}  # every dead process's files are gone
    w2.stop()
    parent.close()


@pytest.mark.slow
def test_racing_scrapers_archive_each_dead_snapshot_once(tmp_path: Path,
                                                        spawn: Callable[[Path, int], list[Worker]]) -> None:
    """Scrapers in several processes and threads, started together over many dead snapshots, all
    report the same total and the archive holds each dead process exactly once."""
    state = tmp_path / "state"
    directory = state / "metrics"
    directory.mkdir(parents=True)
    for i in range(300):  # what 300 dead processes leave behind: an unlocked lock and a snapshot
        (directory / f"gone-{i}-00.lock").touch()
        (directory / f"gone-{i}-00.json").write_bytes(orjson.dumps({"counters": [[INGESTED, {}, i]]}))
    expected = sum(range(300))
    workers = spawn(state, 2)
    scrapers = [ProcessCounters(state) for _ in range(4)]
    barrier = threading.Barrier(len(scrapers) + 1)
    results: list[float] = []

    def scrape_together(m: ProcessCounters) -> None:
        barrier.wait(timeout=TIMEOUT)
        results.append(total(m))

    threads = [threading.Thread(target=scrape_together, args=(m,)) for m in scrapers]
    for t in threads:
        t.start()
    barrier.wait(timeout=TIMEOUT)
    for w in workers:
        w.send("render")
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert [summary(w.reply())["total"] for w in workers] == [expected] * 2
    assert results == [expected] * len(scrapers)
    archive = orjson.loads((directory / "archive.json").read_bytes())
    assert archive["counters"] == [[INGESTED, {}, expected]]
    assert not list(directory.glob("gone-*"))
    for m in scrapers:
        m.close()
    for w in workers:
        w.stop()
    final = ProcessCounters(state)
    try:
        assert total(final) == expected
    finally:
        final.close()


def test_read_only_state_dir_renders(tmp_path: Path, spawn: Callable[[Path, int], list[Worker]],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without write permission a process still renders its own values plus what it can read."""
    state = tmp_path / "state"
    dead, live = spawn(state, 2)
    assert dead("inc 40") == "ok" and dead("snap") == "ok True"
    dead.kill()
    assert live("inc 2") == "ok" and live("gauge 6") == "ok" and live("snap") == "ok True"
    before = sorted(p.name for p in (state / "metrics").iterdir())
    with read_only(tmp_path, monkeypatch):
        metrics = ProcessCounters(state)
        metrics.inc(INGESTED)
        assert not metrics.flush_snapshot()
        samples = scrape(metrics)
        assert samples[(INGESTED, ())] == 43  # the dead snapshot is counted, not archived
        assert samples[("mallard_worker_processes", ())] == 2
        assert samples[("mallard_buffered_events", ())] == 6
        assert sorted(p.name for p in (state / "metrics").iterdir()) == before
        metrics.close()
        elsewhere = ProcessCounters(tmp_path / "missing" / "state")
        elsewhere.inc(INGESTED, 3)
        assert total(elsewhere) == 3
        elsewhere.close()
    live.stop()


def test_temporary_files_of_dead_writers_are_removed_with_their_snapshot(tmp_path: Path) -> None:
    """A process killed while writing its snapshot or the archive leaves a temporary file; archiving
    the dead process removes it (the archive's too: only the archive lock's holder writes there)."""
    directory = tmp_path / "state" / "metrics"
    directory.mkdir(parents=True)
    (directory / "gone-1-00.lock").touch()
    (directory / "gone-1-00.json").write_bytes(orjson.dumps({"counters": [[INGESTED, {}, 4]]}))
    leftovers = [".gone-1-00.json.1.ab12cd34.tmp", ".gone-1-00.json.tmp", ".archive.json.9.0f0f0f0f.tmp"]
    for name in leftovers:
        (directory / name).write_bytes(b"{")
    (directory / ".gone-10-00.json.7.ab12cd34.tmp").write_bytes(b"{")  # another process's: kept
    metrics = ProcessCounters(tmp_path / "state")
    try:
        assert total(metrics) == 4
        names = {p.name for p in directory.iterdir()}
        assert not names & {*leftovers, "gone-1-00.json", "gone-1-00.lock"}
        assert ".gone-10-00.json.7.ab12cd34.tmp" in names
    finally:
        metrics.close()
