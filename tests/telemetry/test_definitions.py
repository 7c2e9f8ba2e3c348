"""The fixed set of metrics: unknown names, wrong labels and bad values are refused with guidance."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from mallard._telemetry import ProcessCounters

from .helpers import INGESTED, total


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
def test_misuse_raises_with_guidance(metrics: ProcessCounters, call: Callable[[ProcessCounters], None],
                                     message: str) -> None:
    """Unknown names, wrong labels and negative amounts raise ValueError saying what is allowed."""
    metrics.inc(INGESTED)  # the fast path is warm: misuse must still be caught
    with pytest.raises(ValueError, match=message):
        call(metrics)
    assert total(metrics) == 1
