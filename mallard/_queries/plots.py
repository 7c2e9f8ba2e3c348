"""``result.plot()``: the chart that suits a result, drawn with Altair (the ``plot`` extra).

* a time series (``timeseries``, ``export``, a query with a ``time`` dimension): a line per metric (or,
  with another dimension, per value of it, for the first metric) over time;
* a breakdown (``breakdown``, a query with one dimension, ``flow``, ``properties``, ``realtime``): a bar
  per value, of the first metric, largest first;
* a funnel: a bar per step, in step order, with its conversion rate;
* retention: a heatmap of cohort × week, coloured by the share retained;
* a query without dimensions: a bar per metric.

The rows travel as the chart's inline data (no pandas needed); field names are rewritten so that Vega-Lite
never reads ``visit:source`` or ``a.b`` as a type or a nested field. Values are data, never markup.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from .revenue import Revenue

if TYPE_CHECKING:
    from .results import Result

__all__ = ["MISSING", "chart"]

MISSING: Final = ("result.plot() draws with Altair, which is not installed: "
                  "pip install 'mallard-metrics[plot]' (or pip install altair).")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]")


def chart(result: Result, *, title: str | None = None) -> Any:
    """The Altair chart of ``result`` (see the module docstring).

    Raises:
        ImportError: Altair is not installed (the message names the extra).
        TypeError: the result has nothing to chart (one record of figures).
    """
    try:
        import altair as alt
    except ImportError as exc:
        raise ImportError(MISSING) from exc
    from .results import QueryResult, Record, Report

    if isinstance(result, Record):
        raise TypeError(f"{type(result).__name__} is one row of figures, with nothing to chart: read "
                        "its values, or plot a timeseries, breakdown, funnel or retention.")
    key = result.key if isinstance(result, Report) else None
    if key == "steps":
        built = _funnel(alt, result)
    elif key == "cohorts":
        built = _retention(alt, result)
    elif isinstance(result, QueryResult):
        built = _query(alt, result)
    elif "date" in result.columns:
        built = _lines(alt, result, "date", [c for c in result.columns if _numeric(result, c)], None)
    else:
        built = _bars(alt, result, result.columns[0], _first_numeric(result, result.columns[1:]))
    return built.properties(title=title) if title else built


def _field(name: str) -> str:
    return _UNSAFE.sub("_", name)


def _value(value: Any) -> Any:
    if isinstance(value, Revenue):
        return float(value.value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _data(alt: Any, rows: list[dict[str, Any]]) -> Any:
    return alt.Data(values=[{_field(k): _value(v) for k, v in r.items()} for r in rows])


def _numeric(result: Result, column: str) -> bool:
    return any(isinstance(_value(r.get(column)), (int, float)) and not isinstance(r.get(column), bool)
               for r in result.rows)


def _first_numeric(result: Result, columns: tuple[str, ...]) -> str:
    for column in columns:
        if _numeric(result, column):
            return column
    raise TypeError(f"No numeric column to chart among {', '.join(columns) or 'none'}.")


def _lines(alt: Any, result: Result, time: str, metrics: list[str], split: str | None) -> Any:
    """Lines over ``time``: one per metric, or (with ``split``) one per value of it."""
    # TRICKY: browsers parse a date alone ("2024-05-01") as UTC midnight and "2024-05-01 10:00" as local
    # time: a UTC scale keeps days on their own date wherever the notebook runs.
    days = all(isinstance(r.get(time), str) and len(r[time]) == 10 for r in result.rows)
    x = alt.X(field=_field(time), type="temporal", title=time,
              **({"scale": alt.Scale(type="utc")} if days else {}))
    if split is not None:
        metric = metrics[0]
        return alt.Chart(_data(alt, result.rows)).mark_line(point=True).encode(
            x=x, y=alt.Y(field=_field(metric), type="quantitative", title=metric),
            color=alt.Color(field=_field(split), type="nominal", title=split),
            tooltip=[alt.Tooltip(field=_field(c), title=c) for c in (time, split, metric)])
    long = [{time: r.get(time), "metric": m, "value": r.get(m)} for r in result.rows for m in metrics]
    return alt.Chart(_data(alt, long)).mark_line(point=True).encode(
        x=x, y=alt.Y(field="value", type="quantitative", title=None if len(metrics) > 1 else metrics[0]),
        color=alt.Color(field="metric", type="nominal", title="metric"),
        tooltip=[alt.Tooltip(field=_field(time), title=time), alt.Tooltip(field="metric"),
                 alt.Tooltip(field="value")])


def _bars(alt: Any, result: Result, label: str, metric: str, *, order: str | None = None) -> Any:
    """A horizontal bar per row: ``metric`` by ``label``, largest first (or in ``order``'s order)."""
    sort: Any = "-x" if order is None else alt.EncodingSortField(field=_field(order), order="ascending")
    return alt.Chart(_data(alt, result.rows)).mark_bar().encode(
        y=alt.Y(field=_field(label), type="nominal", sort=sort, title=label),
        x=alt.X(field=_field(metric), type="quantitative", title=metric),
        tooltip=[alt.Tooltip(field=_field(c), title=c) for c in result.columns
                 if c == label or _numeric(result, c)])


def _funnel(alt: Any, result: Result) -> Any:
    return _bars(alt, result, "label", "visitors", order="step")


def _retention(alt: Any, result: Result) -> Any:
    cells = [{"cohort": r["cohort_date"], "week": k, "rate": rate, "retained": r["retained"][k],
              "complete": r["complete"][k]}
             for r in result.rows for k, rate in enumerate(r["rates"])]
    return alt.Chart(_data(alt, cells)).mark_rect().encode(
        x=alt.X(field="week", type="ordinal", title="weeks after the first visit"),
        y=alt.Y(field="cohort", type="ordinal", title="cohort (week of first visit)"),
        color=alt.Color(field="rate", type="quantitative", title="retained",
                        scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip(field=c) for c in ("cohort", "week", "retained", "rate", "complete")])


def _query(alt: Any, result: Any) -> Any:
    dims, metrics = list(result.query.dimensions), list(result.query.metrics)
    time = result.query.time_dimension
    if time is not None:
        others = [d for d in dims if d != time]
        return _lines(alt, result, time, metrics, others[0] if others else None)
    if dims:
        return _bars(alt, result, dims[0], metrics[0])
    figures = [{"metric": m, "value": _value(result.rows[0][m]) if result.rows else None} for m in metrics]
    return alt.Chart(_data(alt, figures)).mark_bar().encode(
        y=alt.Y(field="metric", type="nominal", sort=None, title=None),
        x=alt.X(field="value", type="quantitative", title=None),
        tooltip=[alt.Tooltip(field="metric"), alt.Tooltip(field="value")])
