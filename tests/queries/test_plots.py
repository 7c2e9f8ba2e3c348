"""``result.plot()``: the chart that suits each result (Altair), hostile values kept as data, and a clear
error naming the extra when Altair is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mallard
from mallard._queries import Queries

from .data import DAY1, DAY2, SITE, event

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}


def _spec(result: Any) -> dict[str, Any]:
    spec: dict[str, Any] = result.plot().to_dict()
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    return spec


def _mark(spec: dict[str, Any]) -> str:
    mark = spec["mark"]
    return str(mark["type"] if isinstance(mark, dict) else mark)


def _values(spec: dict[str, Any]) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = spec["data"]["values"]
    return values


def test_a_timeseries_is_a_line_per_metric_over_time(queries: Queries) -> None:
    spec = _spec(queries.timeseries(SITE, interval="day", **BOTH_DAYS))
    assert _mark(spec) == "line"
    assert spec["encoding"]["x"]["type"] == "temporal" and spec["encoding"]["x"]["field"] == "date"
    assert spec["encoding"]["x"]["scale"] == {"type": "utc"}  # dates stay on their day in any zone
    assert spec["encoding"]["color"]["field"] == "metric"
    points = {(v["date"], v["metric"]): v["value"] for v in _values(spec)}
    assert points[(DAY1, "pageviews")] == 6 and points[(DAY2, "visitors")] == 2


def test_hours_are_local_times_on_a_line(queries: Queries) -> None:
    spec = _spec(queries.timeseries(SITE, interval="hour", start_date=DAY2, end_date=DAY2))
    assert _mark(spec) == "line" and "scale" not in spec["encoding"]["x"]
    assert len({v["date"] for v in _values(spec)}) == 24


def test_a_breakdown_is_a_bar_per_value_largest_first(queries: Queries) -> None:
    spec = _spec(queries.breakdown(SITE, "sources", **BOTH_DAYS))
    assert _mark(spec) == "bar"
    assert spec["encoding"]["y"] == {"field": "value", "sort": "-x", "title": "value", "type": "nominal"}
    assert spec["encoding"]["x"]["field"] == "visitors"


def test_a_funnel_is_a_bar_per_step_in_step_order(queries: Queries) -> None:
    spec = _spec(queries.funnel(SITE, ["page:/", "page:/pricing"], **BOTH_DAYS))
    assert _mark(spec) == "bar"
    assert spec["encoding"]["y"]["field"] == "label"
    assert spec["encoding"]["y"]["sort"] == {"field": "step", "order": "ascending"}
    assert [v["label"] for v in _values(spec)] == ["page:/", "page:/pricing"]


def test_retention_is_a_heatmap_of_cohorts_and_weeks(queries: Queries) -> None:
    result = queries.retention(SITE, weeks=2, **BOTH_DAYS)
    spec = _spec(result)
    assert _mark(spec) == "rect"
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == ("week", "cohort")
    assert spec["encoding"]["color"]["scale"] == {"domain": [0, 1]}
    assert len(_values(spec)) == 2 * len(result.rows)
    assert {v["week"] for v in _values(spec)} == {0, 1}


def test_queries_chart_by_their_dimensions(queries: Queries) -> None:
    over_time = _spec(queries.query(SITE, metrics=["visitors"], dimensions=["time:day", "visit:device"],
                                    **BOTH_DAYS))
    assert _mark(over_time) == "line"
    # a field named visit:device is not read as a type, nor a dotted name as a nested field
    assert over_time["encoding"]["color"] == {"field": "visit_device", "title": "visit:device",
                                              "type": "nominal"}
    by_source = _spec(queries.query(SITE, metrics=["visitors", "bounce_rate"],
                                    dimensions=["visit:source"], **BOTH_DAYS))
    assert _mark(by_source) == "bar" and by_source["encoding"]["x"]["field"] == "visitors"
    figures = _spec(queries.query(SITE, metrics=["visitors", "pageviews"], **BOTH_DAYS))
    assert {v["metric"]: v["value"] for v in _values(figures)} == {"visitors": 6, "pageviews": 11}


def test_a_record_has_nothing_to_chart(queries: Queries) -> None:
    with pytest.raises(TypeError, match="one row of figures"):
        queries.main(SITE, **BOTH_DAYS).plot()


def test_hostile_values_are_data_and_a_title_is_kept(make_queries: Callable[..., Queries]) -> None:
    payload = '<img src=x onerror=alert(1)>"}'
    q = make_queries([event("x", f"{DAY1} 10:00:00", path=payload, referrer_source=payload)])
    chart = q.breakdown(SITE, "pages", start_date=DAY1, end_date=DAY1).plot(title="Pages")
    spec = chart.to_dict()
    assert spec["title"] == "Pages" and _values(spec)[0]["value"] == payload
    assert json.loads(chart.to_json())["data"]["values"][0]["value"] == payload


def test_without_altair_the_error_names_the_extra(lake: Path) -> None:
    code = ("import sys; sys.modules['altair'] = None\n"
            "import mallard\n"
            f"q = mallard.open({str(lake)!r})\n"
            f"r = q.breakdown({SITE!r}, 'sources', start_date={DAY1!r}, end_date={DAY2!r})\n"
            "try:\n    r.plot()\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(mallard.__file__).parents[1]), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert "pip install 'mallard-metrics[plot]'" in out.stdout
