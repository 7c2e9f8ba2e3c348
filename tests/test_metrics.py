"""Prometheus metrics: exposition, counters, histograms, gauges, and totals across real processes."""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mallard.metrics import BUCKETS, CONTENT_TYPE, METRICS, Metrics

ROOT = Path(__file__).resolve().parent.parent
INGESTED = "mallard_events_ingested_total"
TIMEOUT = 15.0


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a render, keyed by (sample name, sorted labels)."""
    body, _ = metrics.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def total(metrics: Metrics, name: str = INGESTED, **labels: str) -> float:
    return scrape(metrics)[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[Metrics]:
    m = Metrics(tmp_path / "state")
    yield m
    m.close()


class Worker:
    """A ``tests.procs.metrics_worker`` process, every reply awaited with a timeout."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.procs.metrics_worker", str(state_dir)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.id = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("<eof>")

    def ready(self) -> Worker:
        word, self.id = self.reply().split()
        assert word == "ready"
        return self

    def reply(self) -> str:
        try:
            return self._lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("metrics worker did not answer in time") from None

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def __call__(self, command: str) -> str:
        self.send(command)
        return self.reply()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self("exit") == "bye"
        self.proc.wait(timeout=TIMEOUT)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def spawn() -> Iterator[Callable[[Path, int], list[Worker]]]:
    started: list[Worker] = []

    def start(state_dir: Path, n: int) -> list[Worker]:
        workers = [Worker(state_dir) for _ in range(n)]
        started.extend(workers)
        return [w.ready() for w in workers]

    yield start
    for worker in started:
        worker.cleanup()


def summary(line: str) -> dict[str, float]:
    words = line.split()
    return {k: float(v) for k, v in zip(words[::2], words[1::2], strict=True)}


# -- one process ---------------------------------------------------------------------------------------
def test_exposition_parses_with_help_and_type_for_every_metric(metrics: Metrics) -> None:
    """A fresh render parses back and documents every metric with its HELP and TYPE."""
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, spec in METRICS.items():
        family = families[name.removesuffix("_total")]
        assert family.type == spec.kind and family.documentation, name
        assert f"# HELP {name} ".encode() in body and f"# TYPE {name} {spec.kind}\n".encode() in body
    assert total(metrics, "mallard_behavioral_extension") == 0  # as /health/detailed says
    assert total(metrics, "mallard_worker_processes") == 1


def test_counters_increment(metrics: Metrics) -> None:
    """inc() adds one by default, or the amount given, and value() reads this process's count."""
    for _ in range(3):
        metrics.inc(INGESTED)
    metrics.inc(INGESTED, 5)
    metrics.inc("mallard_cache_hits_total", 2)
    assert total(metrics) == 8 and total(metrics, "mallard_cache_hits_total") == 2
    assert total(metrics, "mallard_cache_misses_total") == 0
    assert metrics.value(INGESTED) == 8


def test_labelled_counters(metrics: Metrics) -> None:
    """Labelled counters keep one series per label value; every status class is shown from zero."""
    metrics.inc("mallard_events_dropped_total", reason="bot")
    metrics.inc("mallard_events_dropped_total", 2, reason="bot")
    metrics.inc("mallard_events_dropped_total", reason="buffer_full")
    for status in (200, 204, 404, 503, 101):
        metrics.record_request(status, 0.01)
    samples = scrape(metrics)
    dropped = "mallard_events_dropped_total"
    assert samples[(dropped, (("reason", "bot"),))] == 3
    assert samples[(dropped, (("reason", "buffer_full"),))] == 1
    requests = {lb[0][1]: v for (n, lb), v in samples.items() if n == "mallard_http_requests_total"}
    assert requests == {"2xx": 2, "3xx": 0, "4xx": 1, "5xx": 1}
    assert samples[("mallard_http_request_duration_seconds_count", ())] == 5  # 1xx is timed too


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.inc("mallard_nope_total"), "Unknown counter"),
    (lambda m: m.inc("mallard_buffered_events"), "Unknown counter"),
    (lambda m: m.inc(INGESTED, -1), "only increase"),
    (lambda m: m.inc(INGESTED, math.nan), "only increase"),
    (lambda m: m.inc(INGESTED, reason="bot"), "takes labels"),
    (lambda m: m.inc("mallard_events_dropped_total"), "takes labels"),
    (lambda m: m.inc("mallard_http_requests_total", status="200"), "Bad label value"),
    (lambda m: m.inc("mallard_events_dropped_total", reason="a b"), "Bad label value"),
    (lambda m: m.observe(INGESTED, 1.0), "Unknown histogram"),
    (lambda m: m.set_gauge_source(INGESTED, lambda: 1), "Unknown gauge"),
    (lambda m: m.set_gauge_source("mallard_worker_processes", lambda: 1), "counted by mallard"),
])
def test_misuse_raises_with_guidance(metrics: Metrics, call: Callable[[Metrics], None], message: str) -> None:
    """Unknown names, wrong labels and negative amounts raise ValueError saying what is allowed."""
    metrics.inc(INGESTED)  # the fast path is warm: misuse must still be caught
    with pytest.raises(ValueError, match=message):
        call(metrics)
    assert total(metrics) == 1


def test_histogram_buckets_sum_and_count(metrics: Metrics) -> None:
    """Observations land in cumulative le-buckets (bounds inclusive), with their sum and count."""
    values = [0.0005, 0.001, 0.003, 0.2, 0.2, 7.0, 20.0]
    for v in values:
        metrics.observe("mallard_http_request_duration_seconds", v)
    metrics.observe("mallard_http_request_duration_seconds", math.nan)  # ignored
    samples = scrape(metrics)
    name = "mallard_http_request_duration_seconds"
    buckets = {float(lb[0][1]): v for (n, lb), v in samples.items() if n == f"{name}_bucket"}
    assert sorted(buckets) == [*BUCKETS, math.inf]
    for bound, count in buckets.items():
        assert count == sum(v <= bound for v in values), bound
    assert samples[(f"{name}_count", ())] == len(values)
    assert samples[(f"{name}_sum", ())] == pytest.approx(sum(values))


def test_threads_lose_no_increment(metrics: Metrics) -> None:
    """Concurrent threads, including ones that have finished, all count exactly."""
    def work() -> None:
        for _ in range(20_000):
            metrics.inc(INGESTED)
        metrics.record_request(200, 0.002)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    mid = total(metrics)  # rendering while they count
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert 0 <= mid <= 120_000
    assert total(metrics) == 120_000
    assert total(metrics, "mallard_http_requests_total", status="2xx") == 6
    assert len(metrics._shards) <= 1  # finished threads were folded into the base


def test_gauge_sources_are_read_at_scrape_time(metrics: Metrics) -> None:
    """Registered gauge sources are read on every render; a failing one does not break the render."""
    pending = [4]
    metrics.set_gauge_source("mallard_buffered_events", lambda: pending[0])
    metrics.set_gauge_source("mallard_filter_bots", lambda: True)
    assert total(metrics, "mallard_buffered_events") == 4 and total(metrics, "mallard_filter_bots") == 1
    pending[0] = 9
    assert total(metrics, "mallard_buffered_events") == 9
    metrics.set_gauge_source("mallard_cache_entries", lambda: 1 // 0)
    assert total(metrics, "mallard_cache_entries") == 0
    metrics.set_gauge_source("mallard_buffered_events", None)
    assert total(metrics, "mallard_buffered_events") == 0


def test_snapshot_file_layout_and_close_archives(tmp_path: Path) -> None:
    """A process owns <host>-<pid>-<token>.lock/.json; close() folds its totals into archive.json."""
    metrics = Metrics(tmp_path / "state")
    metrics.inc(INGESTED, 3)
    assert metrics.flush_snapshot()
    directory = tmp_path / "state" / "metrics"
    own = metrics._id
    assert own.startswith(f"{os.uname().nodename}-{os.getpid()}-")
    assert {p.name for p in directory.iterdir()} >= {f"{own}.lock", f"{own}.json"}
    assert orjson.loads((directory / f"{own}.json").read_bytes())["counters"] == [[INGESTED, {}, 3]]
    metrics.close()
    metrics.close()
    assert sorted(p.name for p in directory.iterdir()) == ["archive.json", "archive.lock"]
    later = Metrics(tmp_path / "state")
    try:
        assert total(later) == 3 and total(later, "mallard_worker_processes") == 1
    finally:
        later.close()


def test_malformed_archive_is_never_overwritten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt archive.json is logged and kept; dead snapshots stay unarchived but counted."""
    first = Metrics(tmp_path / "state")
    first.inc(INGESTED, 2)
    first.close()
    directory = tmp_path / "state" / "metrics"
    (directory / "archive.json").write_bytes(b"{not json")
    (directory / "ghost-1-ab.json").write_bytes(orjson.dumps({"counters": [[INGESTED, {}, 5]]}))
    metrics = Metrics(tmp_path / "state")
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
    metrics = Metrics(tmp_path / "state")
    try:
        assert total(metrics) == 10
        assert not list(directory.glob("gone-*"))
        assert total(metrics) == 10
    finally:
        metrics.close()
    assert orjson.loads((directory / "archive.json").read_bytes())["counters"] == [[INGESTED, {}, 10]]


# -- real processes ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_totals_across_processes_survive_kill_and_exit(tmp_path: Path,
                                                       spawn: Callable[[Path, int], list[Worker]]) -> None:
    """Workers' counts add up, survive SIGKILL and clean exit, are archived once under racing
    scrapes, and gauges and the worker count cover live processes only."""
    state = tmp_path / "state"
    directory = state / "metrics"
    parent = Metrics(state)
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
    other = Metrics(state)
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
    assert left == {parent._id, w2.id}  # every dead process's files are gone
    w2.stop()
    parent.close()


def test_fork_child_starts_at_zero_and_adds_to_the_total(tmp_path: Path,
                                                         spawn: Callable[[Path, int], list[Worker]]) -> None:
    """A forked child counts from zero in its own files, and its increments join the total."""
    state = tmp_path / "state"
    (worker,) = spawn(state, 1)
    assert worker("inc 4") == "ok" and worker("snap") == "ok True"
    assert worker("fork 11") == "forked 0"  # 0: the child saw zero of its parent's 4
    assert summary(worker("render")) == {"total": 15, "workers": 1, "buffered": 0}
    worker.stop()
    metrics = Metrics(state)
    try:
        assert total(metrics) == 15
    finally:
        metrics.close()


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
    scrapers = [Metrics(state) for _ in range(4)]
    barrier = threading.Barrier(len(scrapers) + 1)
    results: list[float] = []

    def scrape_together(m: Metrics) -> None:
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
    final = Metrics(state)
    try:
        assert total(final) == expected
    finally:
        final.close()


@contextlib.contextmanager
def read_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``root`` unwritable: chmod, plus refusing writes under it, since root ignores modes."""
    def refuse(path: Any) -> None:
        if Path(os.fsdecode(path)).is_relative_to(root):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))

    real_open, real_mkdir, real_replace, real_unlink = os.open, os.mkdir, os.replace, os.unlink
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writes:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            refuse(path)
            return real(path, *args, **kwargs)
        return call

    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setattr(os, "open", fake_open)
    for name, real in (("mkdir", real_mkdir), ("replace", real_replace), ("unlink", real_unlink)):
        monkeypatch.setattr(os, name, guarded(real))
    try:
        yield
    finally:
        monkeypatch.undo()
        for path, mode in modes.items():
            path.chmod(mode)


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
        metrics = Metrics(state)
        metrics.inc(INGESTED)
        assert not metrics.flush_snapshot()
        samples = scrape(metrics)
        assert samples[(INGESTED, ())] == 43  # the dead snapshot is counted, not archived
        assert samples[("mallard_worker_processes", ())] == 2
        assert samples[("mallard_buffered_events", ())] == 6
        assert sorted(p.name for p in (state / "metrics").iterdir()) == before
        metrics.close()
        elsewhere = Metrics(tmp_path / "missing" / "state")
        elsewhere.inc(INGESTED, 3)
        assert total(elsewhere) == 3
        elsewhere.close()
    live.stop()
