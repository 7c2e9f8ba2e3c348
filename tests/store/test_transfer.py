"""Rows from outside checked against the lake schema and stored idempotently (mallard/_store/transfer.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from mallard import InvalidEventError
from mallard._store import Store
from mallard._store.lake import SCHEMA
from mallard._store.transfer import coerce, count_rows, export_batches, import_batches


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
    first = import_batches(store, [rows], "t")
    assert (first.stored, first.duplicates) == (3, 0)
    again = import_batches(store, [rows.slice(0, 2)], "t")
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
    done = import_batches(store, [rows], "t")
    assert (done.stored, done.erased) == (1, 1)
    kept = [r["visitor_id"] for t in export_batches(store, "a.example", datetime(2024, 5, 1),
                                                     datetime(2024, 5, 2)) for r in t.to_pylist()]
    assert kept == ["new"]


def _rows(n: int, visitor: str = "v", day: str = "2024-05-01") -> pa.Table:
    return _text(site_id=["a.example"] * n, visitor_id=[visitor] * n, timestamp=[f"{day} 10:00:00"] * n,
                 event_name=["x"] * n, pathname=["/"] * n)


def test_copies_in_different_batches_count_as_one_input(tmp_path: Path) -> None:
    """The lake is compared with the whole input of a partition, not batch by batch: a row twice in the
    file (once per batch) is stored twice, and the same file again stores nothing."""
    store = Store(tmp_path)
    batches = [_rows(1), _rows(1, day="2024-05-02"), _rows(1)]
    first = import_batches(store, batches, "t")
    assert (first.read, first.stored, first.duplicates) == (3, 3, 0)
    again = import_batches(store, batches, "t")
    assert (again.stored, again.duplicates) == (0, 3)
    assert count_rows(store, "a.example", datetime(2024, 5, 1), datetime(2024, 5, 2)) == 2


def test_a_bad_row_in_a_later_batch_stores_nothing(tmp_path: Path) -> None:
    """Every batch is checked before any is stored; the row is counted through the whole input."""
    store = Store(tmp_path)
    bad = _text(site_id=["a.example"] * 2, visitor_id=["w", "w"], event_name=["x"] * 2, pathname=["/"] * 2,
                timestamp=["2024-05-01 11:00:00", "2024-13-01 11:00:00"])
    with pytest.raises(InvalidEventError, match=r"in.csv: row 5, column 'timestamp'"):
        import_batches(store, [_rows(3), bad], "in.csv")
    assert count_rows(store, "a.example", datetime(2024, 5, 1), datetime(2024, 5, 2)) == 0
    assert not list(tmp_path.glob(".import-*"))


def test_progress_counts_rows_checked_then_rows_stored(tmp_path: Path) -> None:
    """``progress`` is called for the check pass (with the total given) and the store pass (the rows
    kept by the site filter), and its steps add up to each."""
    store = Store(tmp_path)
    (tmp_path / ".import-left-by-a-crash").mkdir()  # removed by the next import
    calls: list[tuple[str, int | None]] = []
    steps: dict[str, int] = {}

    def progress(what: str, total: int | None, unit: str) -> Callable[[int], None]:
        calls.append((what, total))
        steps[what] = 0
        return lambda n: steps.__setitem__(what, steps[what] + n)

    other = _rows(2).set_column(0, "site_id", pa.array(["b.example"] * 2))
    done = import_batches(store, [_rows(3), other, _rows(4, day="2024-05-03")], "t", site="a.example",
                          total=9, progress=progress)
    assert (done.read, done.skipped, done.stored) == (9, 2, 7)
    assert calls == [("check", 9), ("import", 7)]
    assert steps == {"check": 9, "import": 7}
    assert not list(tmp_path.glob(".import-*"))
