"""Prometheus metrics of the host's processes (``/metrics``), added up across every worker process
sharing one data directory.

A scrape of ``/metrics`` reaches one worker of a multi-process host (gunicorn ``-w 4``, uvicorn
``--workers 4``); it must report the totals of all of them, and counters must never go backwards when
a worker exits or is killed.

* :mod:`~mallard._telemetry.definitions`: the fixed set of metrics (names, types, help texts, labels);
* :mod:`~mallard._telemetry.counters`: :class:`ProcessCounters`, this process's values, counted in
  per-thread :mod:`~mallard._telemetry.shards` without a lock and added up as
  :mod:`~mallard._telemetry.totals`;
* :mod:`~mallard._telemetry.snapshots`: the files under ``state/metrics/`` through which processes add
  up, with an archive of the processes that are gone;
* :mod:`~mallard._telemetry.exposition`: the Prometheus text format.

These are operational metrics; the analytics metrics (visitors, pageviews…) are
:data:`mallard._queries.registry.METRICS`.
"""

from __future__ import annotations

from .counters import ProcessCounters
from .definitions import BUCKETS, CONTENT_TYPE, PROCESS_METRICS, MetricDef

__all__ = ["BUCKETS", "CONTENT_TYPE", "PROCESS_METRICS", "MetricDef", "ProcessCounters"]
