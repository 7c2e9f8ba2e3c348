"""Counter and histogram values keyed by series, added up across threads and processes, and their
JSON form in the snapshot files."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .definitions import BUCKETS, PROCESS_METRICS

__all__ = ["Gathered", "Series", "Totals", "new_hist"]

#: A normalised series: the metric name and its sorted (label, value) pairs.
Series = tuple[str, tuple[tuple[str, str], ...]]


def new_hist() -> list[float]:
    """An empty histogram: per-bucket counts, then the +Inf bucket, then the sum."""
    return [0] * (len(BUCKETS) + 1) + [0.0]


@dataclass(slots=True)
class Totals:
    """Counter values and histogram buckets (non-cumulative counts + sum), keyed by series."""

    counters: dict[Series, float] = field(default_factory=dict)
    hists: dict[Series, list[float]] = field(default_factory=dict)

    def add(self, other: Totals) -> None:
        for key, value in other.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value
        for key, hist in other.hists.items():
            mine = self.hists.setdefault(key, new_hist())
            for i, v in enumerate(hist):
                mine[i] += v

    def to_json(self) -> dict[str, Any]:
        return {"bounds": list(BUCKETS),
                "counters": [[n, dict(lb), v] for (n, lb), v in sorted(self.counters.items())],
                "histograms": [[n, dict(lb), h[:-1], h[-1]] for (n, lb), h in sorted(self.hists.items())]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        """Parse :meth:`to_json` output (``ValueError``/``TypeError``/``KeyError`` when malformed)."""
        out = cls()
        for name, labels, value in data.get("counters", []):
            key = (str(name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"counter value {value!r} is not a number")
            out.counters[key] = out.counters.get(key, 0) + value
        bounds = [float(b) for b in data.get("bounds", BUCKETS)]
        for name, labels, counts, total in data.get("histograms", []):
            key = (str(name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
            if len(counts) != len(bounds) + 1:
                raise ValueError("histogram bucket count does not match its bounds")
            hist = out.hists.setdefault(key, new_hist())
            for bound, count in zip([*bounds, float("inf")], counts, strict=True):
                # TRICKY: buckets written with other bounds go to our smallest bound >= theirs, which keeps
                # every observation at or below the bucket's upper bound.
                hist[bisect.bisect_left(BUCKETS, bound)] += int(count)
            hist[-1] += float(total)
        return out


@dataclass(slots=True)
class Gathered:
    """What one scrape adds up: the counter totals of every process (live, dead and archived), each
    gauge's values in the live processes, and how many processes are live."""

    totals: Totals = field(default_factory=Totals)
    gauges: dict[str, list[float]] = field(default_factory=dict)
    workers: int = 0

    def add_live(self, gauges: Mapping[str, object]) -> None:
        """Count one live process, with the gauge values it reports (unknown names are ignored)."""
        self.workers += 1
        for name, value in gauges.items():
            if name in PROCESS_METRICS and isinstance(value, int | float):
                self.gauges.setdefault(name, []).append(value)

    def merged_gauges(self) -> dict[str, float]:
        """Each gauge over the live processes: summed, or the maximum for flags (``MetricDef.merge``)."""
        return {name: (max(values) if PROCESS_METRICS[name].merge == "max" else sum(values))
                for name, values in self.gauges.items()}
