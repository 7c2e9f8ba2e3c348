"""The Prometheus text exposition (format 0.0.4) of gathered totals, through prometheus_client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from .definitions import BUCKETS, CONTENT_TYPE, PROCESS_METRICS, WORKERS
from .totals import Gathered, Totals, new_hist

__all__ = ["Exposition", "families"]


def families(totals: Totals, gauges: Mapping[str, float], workers: int) -> Iterator[Metric]:
    """Every metric of :data:`PROCESS_METRICS`, in order, with its HELP text: counters shown from 0
    (so that ``rate()`` sees the first increment), histograms cumulative, gauges 0 when unreported."""
    for name, spec in PROCESS_METRICS.items():
        if spec.kind == "counter":
            counter = CounterMetricFamily(name, spec.help, labels=spec.labels)
            series = {lb: v for (n, lb), v in totals.counters.items() if n == name}
            if not spec.labels:
                series.setdefault((), 0)
            for allowed in sorted(spec.values or ()):  # all status classes, from 0
                series.setdefault(tuple(zip(spec.labels, [allowed], strict=True)), 0)
            for labels, count in sorted(series.items()):
                counter.add_metric([v for _, v in labels], count)
            yield counter
        elif spec.kind == "histogram":
            hist = HistogramMetricFamily(name, spec.help)
            counts = totals.hists.get((name, ()), new_hist())
            cumulative, buckets = 0.0, []
            for bound, count in zip([*BUCKETS, float("inf")], counts, strict=False):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            hist.add_metric([], buckets, counts[-1])
            yield hist
        else:
            gauge = workers if name == WORKERS else gauges.get(name, 0.0)
            yield GaugeMetricFamily(name, spec.help, value=gauge)


class Exposition:
    """Renders what ``gather`` returns, one consistent gather per scrape.

    Args:
        gather: Adds up every process's values; called once per :meth:`render`.
    """

    def __init__(self, gather: Callable[[], Gathered]) -> None:
        self._gather = gather
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def collect(self) -> Iterable[Metric]:
        """The prometheus_client collector protocol."""
        gathered = self._gather()
        return list(families(gathered.totals, gathered.merged_gauges(), gathered.workers))

    def render(self) -> tuple[bytes, str]:
        """The exposition's body and its content type, :data:`CONTENT_TYPE`."""
        return generate_latest(self._registry), CONTENT_TYPE
