"""One result protocol for every :class:`~mallard._queries.Queries` method (like httpx's one ``Response``).

Every result has ``columns`` (a tuple of names), ``rows`` (a list of dicts with exactly those keys),
``meta`` (a dict: date range, totals, ...), ``to_dict()``, ``to_json()``, ``to_arrow()``, ``df()``
(pandas), ``pl()`` (polars), ``plot()`` (an Altair chart), ``len()``, iteration over its rows and
``_repr_html_`` (Jupyter; every cell is HTML-escaped: tracked values are attacker-controlled). The
concrete classes differ only where the data does:

* :class:`Table`: rows of a report preset (``breakdown``, ``timeseries``, ``export``);
* :class:`QueryResult`: the answer to a :class:`~mallard._queries.Query` (``query``, ``run``);
* :class:`Record`: one row of named figures, also readable as attributes and keys (``sessions``,
  ``sequences``; :class:`MainStats` for ``main``);
* :class:`Report`: rows plus summary figures (``funnel``'s steps, ``retention``'s cohorts, ``flow``'s
  next pages), keys readable as ``result["steps"]``.

``to_json()`` is the exact JSON body of the matching HTTP route (an object, or an array for
timeseries, breakdown and funnel); ``to_dict()`` is always a dict: the same body where it is an
object, else ``{"results": rows, "meta": meta}`` (funnel: ``{"steps": rows, **meta}``).

Units: rates are fractions (0-1) in the Python API; only the Plausible-shaped ``/api/v2/query`` body
(``QueryResult.to_dict()``) carries the metrics in :data:`PERCENT_METRICS` as percentages.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import pyarrow as pa

from .registry import METRICS
from .revenue import Revenue

if TYPE_CHECKING:
    import altair
    import pandas
    import polars

    from .model import Query

__all__ = ["PERCENT_METRICS", "MainStats", "QueryResult", "Record", "Report", "Result", "Table"]

#: Metrics that are fractions in Python and percentages in Plausible's v2 wire format.
PERCENT_METRICS: Final = frozenset(m.name for m in METRICS.values() if m.unit == "fraction")
_HTML_ROWS: Final = 50


class Result:
    """The protocol of every result: ``columns``, ``rows``, ``meta`` and the conversions below."""

    __slots__ = ()
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see the module docstring)."""
        return {"results": self.rows, "meta": self.meta}

    def to_json(self) -> Any:
        """The JSON body of the matching HTTP route."""
        return self.to_dict()

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table, columns in order."""
        if not self.rows:
            return pa.table({c: pa.array([], pa.null()) for c in self.columns})
        rows = [{k: ({"value": v.value, "currency": v.currency} if isinstance(v, Revenue) else v)
                 for k, v in r.items()} for r in self.rows]
        return pa.Table.from_pylist(rows).select(list(self.columns))

    def df(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame (needs pandas)."""
        frame: pandas.DataFrame = self.to_arrow().to_pandas()
        return frame

    def pl(self) -> polars.DataFrame:
        """The rows as a polars DataFrame (needs polars)."""
        import polars

        frame = polars.from_arrow(self.to_arrow())
        assert isinstance(frame, polars.DataFrame)
        return frame

    def plot(self, *, title: str | None = None) -> altair.Chart:
        """A chart of the rows with Altair (the ``plot`` extra): a line over time for a series, bars
        for a breakdown or a funnel's steps, a heatmap for retention (see
        :mod:`mallard._queries.plots`).

        Raises:
            ImportError: Altair is not installed (the message names the extra to install).
            TypeError: a :class:`Record` (one row of figures) has nothing to chart.
        """
        from .plots import chart

        drawn: altair.Chart = chart(self, title=title)
        return drawn

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def _repr_html_(self) -> str:
        """An HTML table of the first 50 rows; every header and cell is escaped."""
        def cell(value: Any) -> str:
            return "" if value is None else html.escape(str(value))

        head = "".join(f"<th>{cell(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in self.columns) + "</tr>"
                       for r in self.rows[:_HTML_ROWS])
        more = len(self.rows) - _HTML_ROWS
        tail = f"<p>… {more} more rows</p>" if more > 0 else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


@dataclass(frozen=True, slots=True)
class Table(Result):
    """Rows of a report preset (``value, visitors, pageviews`` for a breakdown, …).

    HTTP body (``to_json()``): the array of rows.
    """

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> list[dict[str, Any]]:
        return self.rows


@dataclass(frozen=True, slots=True)
class QueryResult(Result):
    """Answer to a :class:`Query`: one row per dimension combination (rates as fractions).

    ``to_dict()`` is Plausible's v2 body, with the :data:`PERCENT_METRICS` in percent.
    """

    query: Query
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    #: With ``include.comparisons``: per row, ``{"dimensions": [...], "metrics": {name: value}}`` of the
    #: comparison range (rates as fractions).
    comparisons: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        dims, metrics = self.query.dimensions, self.query.metrics
        results: list[dict[str, Any]] = [
            {"dimensions": _labels(dims, [r[d] for d in dims]), "metrics": [_wire(m, r[m]) for m in metrics]}
            for r in self.rows]
        for row, other in zip(results, self.comparisons or (), strict=False):
            row["comparison"] = _comparison(metrics, row["metrics"], other)
            row["comparison"]["dimensions"] = _labels(dims, other["dimensions"])
        return {"results": results, "meta": _v2_meta(self), "query": self.query.to_json()}


def _wire(name: str, value: Any) -> Any:
    """A metric's value in the v2 body (fractions in percent, revenue as Plausible's object)."""
    if isinstance(value, Revenue):
        return value.to_json()
    return value * 100.0 if name in PERCENT_METRICS and value is not None else value


def _labels(dims: tuple[str, ...], values: list[Any]) -> list[Any]:
    """Dimension values in the v2 body: an hour as Plausible writes it (``2024-05-01 10:00:00``)."""
    return [_hour(v) if d == "time:hour" else v for d, v in zip(dims, values, strict=True)]


def _hour(label: Any) -> Any:
    return f"{label}:00" if isinstance(label, str) and len(label) == 16 else label


def _comparison(metrics: tuple[str, ...], values: list[Any], other: dict[str, Any]) -> dict[str, Any]:
    """A row's ``comparison`` object: the comparison row and the change of each metric."""
    from .include import change

    compared = [_wire(m, other["metrics"][m]) for m in metrics]
    return {"dimensions": other["dimensions"], "metrics": compared,
            "change": [change(m, old, new) for m, old, new in zip(metrics, compared, values, strict=True)]}


def _v2_meta(result: QueryResult) -> dict[str, Any]:
    """``meta`` of the v2 body: the result's (``total_rows`` only when included) and what ``include``
    asks for."""
    from .buckets import bucket_labels
    from .include import IMPORTS_META

    include = result.query.include
    meta = {k: v for k, v in result.meta.items() if k != "total_rows" or include.total_rows}
    if include.imports:
        meta.update(IMPORTS_META)
    time_dim = result.query.time_dimension
    if include.time_labels and time_dim is not None:
        meta["time_labels"] = [_hour(v) if time_dim == "time:hour" else v
                               for v in bucket_labels(result.query.date_range, time_dim)]
    return meta


@dataclass(frozen=True, slots=True)
class Record(Result):
    """One row of named figures: ``r.total_sessions``, ``r["total_sessions"]`` or ``r.rows[0]``.

    ``to_dict()`` (the HTTP body) is the figures themselves; ``meta`` holds the date range.
    """

    values: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:  # type: ignore[override]
        """The names of the figures."""
        return tuple(self.values)

    @property
    def rows(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """One row: the figures."""
        return [dict(self.values)]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "values")[name]
        except (KeyError, AttributeError):
            raise AttributeError(f"{type(self).__name__!s} has no figure {name!r}") from None


class MainStats(Record):
    """Headline figures of a site over a date range (``GET /api/stats/main``).

    ``unique_visitors``, ``total_pageviews``, ``total_events``, ``views_per_visitor``,
    ``total_sessions``, ``bounce_rate`` (fraction 0-1 of sessions with exactly one pageview),
    ``avg_visit_duration_secs``, ``pages_per_visit`` (pageviews per session) and ``views_per_visit``
    (same, v0.2 name).
    """

    __slots__ = ()
    if TYPE_CHECKING:
        unique_visitors: int
        total_pageviews: int
        total_events: int
        views_per_visitor: float
        total_sessions: int
        bounce_rate: float
        avg_visit_duration_secs: float
        pages_per_visit: float
        views_per_visit: float


@dataclass(frozen=True, slots=True)
class Report(Result):
    """Rows plus summary figures: a funnel's steps, retention's cohorts, a flow's next pages.

    ``to_dict()`` is ``{key: rows, **meta}`` and ``result[name]`` reads it; ``to_json()`` is that
    dict, or only the rows when ``body="rows"`` (the funnel route answers its steps).
    """

    key: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    body: Literal["object", "rows"] = "object"

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta, self.key: self.rows}

    def to_json(self) -> Any:
        return self.rows if self.body == "rows" else self.to_dict()

    def __getitem__(self, name: str) -> Any:
        return self.to_dict()[name]

    def __contains__(self, name: object) -> bool:
        return name == self.key or name in self.meta
