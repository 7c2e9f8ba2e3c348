"""Values bound as ClickHouse query parameters: the type follows the value, and the text chdb receives
reads back as the value, whatever characters it holds."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallard._errors import StorageError
from mallard._queries.dialect_params import bind, file_pattern

from .dialect_check import clickhouse

NASTY = ["", "it's", 'say "hi"', "back\\slash", "\\N", "tab\there", "line\nbreak", "cr\rx", "nul\0x",
         "[,]", "{p0:String}", "ü🦆", "\x01\x7f", "?"]


@pytest.mark.parametrize(("value", "kind"), [
    ("x", "String"), (3, "Int64"), (True, "Bool"), (1.5, "Float64"), (Decimal("9.50"), "Decimal(38, 2)"),
    (datetime(2024, 5, 1, 2, 3, 4, 5), "DateTime64(6, 'UTC')"), (date(2024, 5, 1), "Date32"),
    (["a", "b"], "Array(String)"), ([date(2024, 5, 1)], "Array(Date32)"), ([], "Array(Nothing)"),
    (None, "Nullable(String)"),
])
def test_types(value: object, kind: str) -> None:
    assert bind(value).type == kind


def test_refused_values() -> None:
    with pytest.raises(TypeError):
        bind(["a", 1])
    with pytest.raises(TypeError):
        bind(datetime(2024, 5, 1).astimezone())
    with pytest.raises(TypeError):
        bind(object())


@pytest.mark.slow  # ClickHouse (chdb)
def test_values_read_back() -> None:
    values: list[object] = [*NASTY, 0, -(2**63), 2**63 - 1, 0.1, Decimal("-12.34"), True,
                            datetime(1970, 1, 1), datetime(2024, 2, 29, 23, 59, 59, 999_999),
                            date(2299, 12, 31), NASTY, [date(2024, 5, 1), date(1900, 1, 1)], [], None]
    sql = "SELECT " + ", ".join("?" for _ in values)
    assert clickhouse(sql, values) == [tuple(values)]


@pytest.mark.slow  # ClickHouse (chdb)
@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_text_reads_back(texts: list[str]) -> None:
    assert clickhouse("SELECT ?, ?", [texts[0], texts]) == [(texts[0], texts)]


def test_file_pattern(tmp_path: Path) -> None:
    a, b = str(tmp_path / "x" / "1.parquet"), str(tmp_path / "y" / "2.parquet")
    assert file_pattern([a]) == a
    assert file_pattern([a, b]) == f"{tmp_path}/{{x/1.parquet,y/2.parquet}}"
    with pytest.raises(StorageError, match="wildcard"):
        file_pattern([a, str(tmp_path / "a,b" / "3.parquet")])
