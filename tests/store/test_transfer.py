"""Rows from outside checked against the lake schema and stored idempotently (mallard/_store/transfer.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from mallard import InvalidEventError
from mallard._store import Store
from mallard._store.lake import SCHEMA
from mallard._store.transfer import coerce, count_rows, export_batches, store_rows


def _text(**columns: list[str | None]) -> pa.Table:
    base: dict[str, list[str | None]] = {"site_id": ["a.example"], "visitor_id": ["v"],
                                         "timestamp": ["2024-05-01 10:00:00"], "event_name": ["pageview"],
                                         "pathname": ["/"]}
    base.update(columns)
    return pa.table({k: pa.array(v, pa.string()) for k, v in base.items()})


def test_text_becomes_the_lake_schema() -> None:
    table = coerce(_text(timestamp=["2024-05-01T12:00:00.5+02:00"], revenue_amount=["49.9"],
                         scroll_depth=["40"], interactive=["false"]), "t")
    assert table.schema == SCHEMA
    row = table.to_pylist()[0]
    assert row["timestamp"] == datetime(2024, 5, 1, 10, 0, 0, 500000)
    assert (row["revenue_amount"], row["scroll_depth"], row["interactive"]) == (Decimal("49.90"), 40, False)
    assert row["hostname"] is None


@pytest.mark.parametrize(("column", "value", "message"), [
    ("scroll_depth", "1.5", "column 'scroll_depth': is not an integer from -32768 to 32767 (got '1.5')"),
    ("engagement_ms", "-1", "column 'engagement_ms': must not be negative"),
    ("revenue_currency", "eur", "column 'revenue_currency': must be an ISO 4217 code"),
    ("interactive", "maybe", "column 'interactive': is not true or false"),
    ("visitor_id", None, "column 'visitor_id': must not be empty"),
])
def test_the_first_bad_value_is_named(column: str, value: str | None, message: str) -> None:
    with pytest.raises(InvalidEventError, match="Nothing was imported") as caught:
        coerce(_text(**{column: [value]}), "in.csv")
    assert caught.value.code == "invalid_import"
    assert f"in.csv: row 1, {message}" in str(caught.value)


def test_stored_once_per_copy_the_lake_lacks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    rows = coerce(_text(site_id=["a.example"] * 3, visitor_id=["v", "v", "w"],
                        timestamp=["2024-05-01 10:00:00"] * 3, event_name=["x"] * 3, pathname=["/"] * 3), "t")
    first = store_rows(store, rows)
    assert (first.stored, first.duplicates) == (3, 0)
    again = store_rows(store, rows.slice(0, 2))
    assert (again.stored, again.duplicates) == (0, 2)
    lower, upper = datetime(2024, 5, 1), datetime(2024, 5, 2)
    assert count_rows(store, "a.example", lower, upper) == 3
    assert sum(t.num_rows for t in export_batches(store, "a.example", lower, upper)) == 3


def test_an_erasure_drops_older_rows_and_keeps_later_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.tombstones.add("a.example", date(2024, 5, 1), date(2024, 5, 1),
                         at=datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp())
    rows = coerce(_text(visitor_id=["old", "new"], timestamp=["2024-05-01 08:00:00", "2024-05-01 18:00:00"],
                        site_id=["a.example"] * 2, event_name=["x"] * 2, pathname=["/"] * 2), "t")
    done = store_rows(store, rows)
    assert (done.stored, done.erased) == (1, 1)
    kept = [r["visitor_id"] for t in export_batches(store, "a.example", datetime(2024, 5, 1),
                                                     datetime(2024, 5, 2)) for r in t.to_pylist()]
    assert kept == ["new"]
