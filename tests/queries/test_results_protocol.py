"""One result protocol for every Queries method: columns, rows, meta, to_dict(), to_arrow(), df(), pl(),
and an HTML rendering for notebooks in which every cell is escaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from mallard._queries import Queries

from .data import DAY1, DAY2, SITE, event
from .test_registry import approx

BOTH_DAYS: dict[str, Any] = {"start_date": DAY1, "end_date": DAY2}
PAYLOAD = "<img src=x onerror=alert(1)>"

#: Every Queries method that answers a question, over the shared lake.
CALLS: dict[str, Callable[[Queries], Any]] = {
    "main": lambda q: q.main(SITE, **BOTH_DAYS),
    "timeseries": lambda q: q.timeseries(SITE, interval="day", **BOTH_DAYS),
    "breakdown": lambda q: q.breakdown(SITE, "sources", **BOTH_DAYS),
    "query": lambda q: q.query(SITE, metrics=["visitors", "bounce_rate"], dimensions=["visit:source"],
                               **BOTH_DAYS),
    "export": lambda q: q.export(SITE, **BOTH_DAYS),
    "export_raw": lambda q: q.export(SITE, kind="raw", **BOTH_DAYS),
    "sessions": lambda q: q.sessions(SITE, **BOTH_DAYS),
    "funnel": lambda q: q.funnel(SITE, ["page:/", "page:/pricing"], **BOTH_DAYS),
    "sequences": lambda q: q.sequences(SITE, ["page:/", "page:/pricing"], **BOTH_DAYS),
    "retention": lambda q: q.retention(SITE, weeks=2, **BOTH_DAYS),
    "flow": lambda q: q.flow(SITE, "/", **BOTH_DAYS),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_method_returns_the_same_protocol(queries: Queries, name: str) -> None:
    from mallard._queries.results import Result

    result = CALLS[name](queries)
    assert isinstance(result, Result)
    assert isinstance(result.columns, tuple) and all(isinstance(c, str) for c in result.columns)
    assert isinstance(result.rows, list) and all(isinstance(r, dict) for r in result.rows)
    assert result.rows, name  # every call above has data
    assert all(set(r) == set(result.columns) for r in result.rows)
    assert isinstance(result.meta, dict)
    assert isinstance(result.to_dict(), dict)
    arrow = result.to_arrow()
    assert isinstance(arrow, pa.Table)
    assert arrow.column_names == list(result.columns) and arrow.num_rows == len(result.rows)
    assert list(result.df().columns) == list(result.columns)
    assert result.pl().columns == list(result.columns)
    html = result._repr_html_()
    assert html.startswith("<table>") and all(f"<th>{c}</th>" in html for c in result.columns)


def test_repr_html_escapes_every_cell(make_queries: Callable[..., Queries]) -> None:
    """A tracked value is attacker-controlled: in a notebook it must render as text, never as markup."""
    q = make_queries([
        event("x", f"{DAY1} 10:00:00", path="/<b>bold</b>", utm_source=PAYLOAD,
              props={"k": "<script>x</script>"}),
    ])
    results = [
        q.breakdown(SITE, "visit:utm_source", start_date=DAY1, end_date=DAY1),
        q.query(SITE, dimensions=["visit:utm_source", "event:props:k"], start_date=DAY1,
                end_date=DAY1),
        q.export(SITE, kind="raw", start_date=DAY1, end_date=DAY1),
        q.flow(SITE, "/<b>bold</b>", start_date=DAY1, end_date=DAY1),
    ]
    for result in results:
        html = result._repr_html_()
        assert "<img" not in html and "<script" not in html and "<b>" not in html, html
    assert "&lt;img src=x onerror=alert(1)&gt;" in results[0]._repr_html_()
    assert "&lt;script&gt;x&lt;/script&gt;" in results[1]._repr_html_()


def test_main_and_query_agree_on_bounce_rate(queries: Queries) -> None:
    """bounce_rate is a fraction (0-1) everywhere in the Python API."""
    main = queries.main(SITE, **BOTH_DAYS)
    row = queries.query(SITE, metrics=["bounce_rate"], **BOTH_DAYS).rows[0]
    assert main.bounce_rate == approx(2 / 7)
    assert row["bounce_rate"] == approx(main.bounce_rate)
    assert queries.sessions(SITE, **BOTH_DAYS)["bounce_rate"] == approx(main.bounce_rate)
    by_source = queries.breakdown(SITE, "sources", metrics=["bounce_rate"], **BOTH_DAYS).rows
    assert all(0.0 <= r["bounce_rate"] <= 1.0 for r in by_source)


def test_the_v2_wire_format_keeps_percentages(queries: Queries) -> None:
    """Plausible's v2 API answers bounce_rate in percent: to_dict() (the HTTP body) converts."""
    result = queries.query(SITE, metrics=["bounce_rate", "conversion_rate"], **BOTH_DAYS)
    fraction = result.rows[0]["bounce_rate"]
    assert result.to_dict()["results"][0]["metrics"][0] == approx(100 * fraction)
    assert result.to_dict()["results"][0]["metrics"][0] == approx(100 * 2 / 7)


def test_records_and_reports_read_like_their_dicts(queries: Queries) -> None:
    """The analyses returned plain dicts before: keys, ``in`` and attributes (MainStats) keep working."""
    main = queries.main(SITE, **BOTH_DAYS)
    assert main.unique_visitors == main["unique_visitors"] == main.to_dict()["unique_visitors"] == 6
    assert "bounce_rate" in main and "nope" not in main
    with pytest.raises(AttributeError):
        _ = main.nope
    funnel = queries.funnel(SITE, ["page:/", "page:/pricing"], **BOTH_DAYS)
    assert "steps" in funnel and "total_visitors" in funnel and "cohorts" not in funnel
    assert funnel["steps"] == funnel.rows == funnel.to_json()
    assert funnel.to_dict() == {"steps": funnel.rows, **funnel.meta}
    flow = queries.flow(SITE, "/", **BOTH_DAYS)
    assert flow.to_json() == flow.to_dict() and flow["next_pages"] == flow.rows
    assert set(flow.to_dict()) == {"page", "visitors_at_page", "exits", "next_pages"}
    table = queries.breakdown(SITE, "sources", **BOTH_DAYS)
    assert list(table) == table.rows and len(table) == len(table.rows)


def test_repr_html_escapes_step_labels_and_records(make_queries: Callable[..., Queries]) -> None:
    """A funnel step's label is tracked text too (a page path)."""
    q = make_queries([event("x", f"{DAY1} 10:00:00", path="/<i>"),
                      event("x", f"{DAY1} 10:01:00", path="/<b>")])
    funnel = q.funnel(SITE, ["page:/<i>", "page:/<b>"], start_date=DAY1, end_date=DAY1)
    record = q.sequences(SITE, ["page:/<i>", "page:/<b>"], start_date=DAY1, end_date=DAY1)
    for result in (funnel, record):
        html = result._repr_html_()
        assert "<i>" not in html and "<b>" not in html, html
    assert "page:/&lt;i&gt;" in funnel._repr_html_()
