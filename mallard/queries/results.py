"""Typed query results with the same field names as the HTTP JSON, convertible to DataFrames.

* :class:`QueryResult` answers :meth:`Queries.query` (Plausible v2 shape);
* :class:`Table` answers the report presets (breakdown, timeseries, export): ``.rows`` are dicts;
* :class:`MainStats` answers :meth:`Queries.main`.

Each has ``to_dict()``; tabular ones also ``to_arrow()``, ``df()`` (pandas) and ``pl()`` (polars).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas
    import polars

    from .model import Query


class _Tabular:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table."""
        return pa.Table.from_pylist(self.rows) if self.rows else pa.table(
            {c: pa.array([], pa.null()) for c in self.columns})

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

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{r.get(c)}</td>" for c in self.columns) + "</tr>"
                       for r in self.rows[:50])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True, slots=True)
class Table(_Tabular):
    """Rows of a report preset (``value, visitors, pageviews`` for a breakdown, …)."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"results": self.rows, "meta": self.meta}

    def to_json(self) -> list[dict[str, Any]]:
        """The HTTP body of the matching Mallard Metrics route (a JSON array of rows)."""
        return self.rows


@dataclass(frozen=True, slots=True)
class QueryResult(_Tabular):
    """Answer to a :class:`Query`: one row per dimension combination."""

    query: Query
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dims = self.query.dimensions
        return {
            "results": [{"dimensions": [r[d] for d in dims],
                         "metrics": [r[m] for m in self.query.metrics]} for r in self.rows],
            "meta": self.meta,
            "query": self.query.to_json(),
        }


@dataclass(frozen=True, slots=True)
class MainStats:
    """Headline figures of a site over a date range (``GET /api/stats/main``)."""

    unique_visitors: int
    total_pageviews: int
    total_events: int
    views_per_visitor: float
    total_sessions: int
    bounce_rate: float
    """Fraction (0–1) of sessions with exactly one pageview."""
    avg_visit_duration_secs: float
    pages_per_visit: float
    """Pageviews per session."""
    views_per_visit: float
    """Same as pages_per_visit (v0.2 name)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows_from(columns: Sequence[str], table: pa.Table) -> list[dict[str, Any]]:
    names = table.column_names
    return [dict(zip(columns, (row[n] for n in names), strict=False))
            for row in table.to_pylist()]
