"""This process's counters: increments, labels, threads, gauge sources, and a forked child's own count."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from mallard._telemetry import ProcessCounters

from .helpers import INGESTED, TIMEOUT, Worker, scrape, summary, total


def test_counters_increment(metrics: ProcessCounters) -> None:
    """inc() adds one by default, or the amount given, and value() reads this process's count."""
    for _ in range(3):
        metrics.inc(INGESTED)
    metrics.inc(INGESTED, 5)
    metrics.inc("mallard_cache_hits_total", 2)
    assert total(metrics) == 8 and total(metrics, "mallard_cache_hits_total") == 2
    assert total(metrics, "mallard_cache_misses_total") == 0
    assert metrics.value(INGESTED) == 8


def test_labelled_counters(metrics: ProcessCounters) -> None:
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


def test_threads_lose_no_increment(metrics: ProcessCounters) -> None:
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


def test_gauge_sources_are_read_at_scrape_time(metrics: ProcessCounters) -> None:
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


def test_fork_child_starts_at_zero_and_adds_to_the_total(tmp_path: Path,
                                                         spawn: Callable[[Path, int], list[Worker]]) -> None:
    """A forked child counts from zero in its own files, and its increments join the total."""
    state = tmp_path / "state"
    (worker,) = spawn(state, 1)
    assert worker("inc 4") == "ok" and worker("snap") == "ok True"
    assert worker("fork 11") == "forked 0"  # 0: the child saw zero of its parent's 4
    assert summary(worker("render")) == {"total": 15, "workers": 1, "buffered": 0}
    worker.stop()
    metrics = ProcessCounters(state)
    try:
        assert total(metrics) == 15
    finally:
        metrics.close()
