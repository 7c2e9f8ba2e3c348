"""The Prometheus text exposition: HELP and TYPE for every metric, cumulative histogram buckets."""

from __future__ import annotations

import math
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mallard._telemetry import BUCKETS, CONTENT_TYPE, PROCESS_METRICS, ProcessCounters

from .helpers import scrape, total


def test_exposition_parses_with_help_and_type_for_every_metric(metrics: ProcessCounters) -> None:
    """A fresh render parses back and documents every metric with its HELP and TYPE."""
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, spec in PROCESS_METRICS.items():
        family = families[name.removesuffix("_total")]
        assert family.type == spec.kind and family.documentation, name
        assert f"# HELP {name} ".encode() in body and f"# TYPE {name} {spec.kind}\n".encode() in body
    assert total(metrics, "mallard_behavioral_extension") == 0  # as /health/detailed says
    assert total(metrics, "mallard_worker_processes") == 1


def test_histogram_buckets_sum_and_count(metrics: ProcessCounters) -> None:
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


def test_every_gauge_that_says_always_reports_that_value(metrics: ProcessCounters) -> None:
    """A gauge whose help reads "Always N" reports N: mallard_active_sessions said "Dashboard login
    sessions currently valid." and was always 0 (logins are signed tokens nobody records)."""
    metrics.set_gauge_source("mallard_filter_bots", lambda: 1)
    body, _ = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    constant = {name: float(match[1]) for name, spec in PROCESS_METRICS.items()
                if spec.kind == "gauge" and (match := re.match(r"Always (\d+)\b", spec.help))}
    assert set(constant) == {"mallard_behavioral_extension", "mallard_active_sessions"}
    for name, value in constant.items():
        assert families[name].samples[0].value == value, name
    assert "currently valid" not in families["mallard_active_sessions"].documentation
