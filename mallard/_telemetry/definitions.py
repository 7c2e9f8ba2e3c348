"""The fixed set of Prometheus metrics mallard exposes: names, types, help texts, labels.

One definition per metric, read by the counters (to check every name and label), by the snapshot
files (to merge gauges) and by the exposition (HELP and TYPE lines). Not to be confused with the
analytics metrics of :mod:`mallard._queries.registry` (visitors, pageviews…).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .._enrich.redact import KINDS as REDACTION_KINDS

__all__ = ["BUCKETS", "CONTENT_TYPE", "PROCESS_METRICS", "MetricDef", "check"]

#: Content type of :meth:`ProcessCounters.render` (Prometheus text format 0.0.4).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the ``mallard_http_request_duration_seconds`` buckets; ``+Inf`` is implied.
BUCKETS: Final[tuple[float, ...]] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                     5.0, 10.0)

_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric of the fixed set: its kind, help text, label names and, for gauges, how to merge."""

    kind: Literal["counter", "histogram", "gauge"]
    help: str
    labels: tuple[str, ...] = ()
    #: Allowed values of the (single) label; ``None`` accepts any short identifier.
    values: frozenset[str] | None = None
    #: Gauges: "sum" over live processes, or "max" for 0/1 flags every process reports alike.
    merge: Literal["sum", "max"] = "sum"


_STATUS = frozenset({"2xx", "3xx", "4xx", "5xx"})

#: Every process metric mallard exposes on ``/metrics``, by name (the names of the reference, kept exactly).
PROCESS_METRICS: Final[Mapping[str, MetricDef]] = {
    "mallard_events_ingested_total": MetricDef("counter", "Events accepted into the buffer."),
    "mallard_events_dropped_total": MetricDef(
        "counter", "Events not stored, by reason (bot, excluded, invalid, buffer_full, ...).", ("reason",)),
    "mallard_ingest_refused_total": MetricDef(
        "counter", "Ingestion requests refused for the work they would cause, by reason: too_many_sites "
        "(a domain naming over 10 sites), batch_too_large (over 1000 events).", ("reason",),
        frozenset({"too_many_sites", "batch_too_large"})),
    "mallard_flush_failures_total": MetricDef("counter", "Failed buffer flushes to the lake (retried)."),
    "mallard_quarantined_files_total": MetricDef(
        "counter", "Unreadable lake files moved to quarantine/ (see docs/storage.md)."),
    "mallard_pii_redactions_total": MetricDef(
        "counter", "Personal data replaced by a marker before storage, by kind.", ("kind",),
        frozenset(REDACTION_KINDS)),
    "mallard_rate_limit_rejections_total": MetricDef("counter", "Requests refused by a rate limit (429)."),
    "mallard_http_refusals_total": MetricDef(
        "counter", "Requests refused to protect the server: body_timeout (408, body too slow), "
        "concurrency_limit (503, `mallard serve` past limit_concurrency).", ("reason",),
        frozenset({"body_timeout", "concurrency_limit"})),
    "mallard_login_failures_total": MetricDef("counter", "Failed dashboard logins and setup attempts."),
    "mallard_shared_link_failures_total": MetricDef("counter", "Requests with an unknown shared-link "
                                                    "secret (counted toward the login lockout)."),
    "mallard_cache_hits_total": MetricDef("counter", "Query cache lookups answered from the cache."),
    "mallard_cache_misses_total": MetricDef("counter", "Query cache lookups that ran the query."),
    "mallard_cache_evictions_total": MetricDef("counter", "Query cache entries evicted (LRU)."),
    "mallard_cache_stale_total": MetricDef(
        "counter", "Query cache lookups answered with an expired entry while it is refreshed."),
    "mallard_cache_refresh_failures_total": MetricDef(
        "counter", "Background refreshes of stale query cache entries that failed (entry kept)."),
    "mallard_http_requests_total": MetricDef(
        "counter", "HTTP requests answered by mallard, by status class.", ("status",), _STATUS),
    "mallard_http_request_duration_seconds": MetricDef(
        "histogram", "Time to answer an HTTP request handled by mallard, in seconds."),
    "mallard_buffered_events": MetricDef("gauge", "Events held in memory, not yet flushed to the lake."),
    "mallard_spool_waiting_bytes": MetricDef(
        "gauge", "Bytes of accepted events waiting in this host's spool for the lake on object storage "
        "to accept them (0 with a local lake; see s3_spool_max_bytes).", merge="max"),
    "mallard_cache_entries": MetricDef("gauge", "Entries in the query caches."),
    "mallard_auth_configured": MetricDef("gauge", "1 if an admin password is set, else 0.", merge="max"),
    "mallard_geoip_loaded": MetricDef("gauge", "1 if a GeoIP database is loaded, else 0.", merge="max"),
    "mallard_behavioral_extension": MetricDef(
        "gauge", "Always 0: no DuckDB extension is loaded (Mallard Metrics' behavioral extension); "
        "sessions, funnels, retention and flows are plain SQL, always available.", merge="max"),
    "mallard_filter_bots": MetricDef("gauge", "1 if bot traffic is filtered out, else 0.", merge="max"),
    "mallard_active_sessions": MetricDef(
        "gauge", "Always 0: dashboard logins are signed tokens that no process records, so they cannot "
        "be counted (kept for Mallard Metrics' dashboards).", merge="max"),
    "mallard_worker_processes": MetricDef("gauge", "Live processes writing metrics to this data directory."),
}

#: Gauges whose value is fixed (their help text says why); every process reports them.
CONSTANT_GAUGES: Final[Mapping[str, float]] = {"mallard_behavioral_extension": 0,
                                               "mallard_active_sessions": 0}

WORKERS: Final = "mallard_worker_processes"
HTTP_REQUESTS: Final = "mallard_http_requests_total"
HTTP_DURATION: Final = "mallard_http_request_duration_seconds"


def check(name: str, kind: str, labels: Mapping[str, str]) -> MetricDef:
    """The definition of ``name``, after checking its kind and labels.

    Raises:
        ValueError: For an unknown name, another kind, wrong label names or a bad label value,
            saying what is allowed.
    """
    spec = PROCESS_METRICS.get(name)
    if spec is None or spec.kind != kind:
        names = ", ".join(n for n, d in PROCESS_METRICS.items() if d.kind == kind)
        raise ValueError(f"Unknown {kind} {name!r}. Valid {kind}s: {names}.")
    if tuple(sorted(labels)) != tuple(sorted(spec.labels)):
        raise ValueError(f"{name} takes labels {list(spec.labels)}, got {sorted(labels)}.")
    for value in labels.values():
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value) or (
                spec.values is not None and value not in spec.values):
            allowed = sorted(spec.values) if spec.values else "short identifiers"
            raise ValueError(f"Bad label value {value!r} for {name}; allowed: {allowed}.")
    return spec
