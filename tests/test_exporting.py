"""CSV renderings of report tables (``mallard/_exporting.py``): every field quoted, formulas neutralised."""

from __future__ import annotations

import pytest

from mallard._exporting import csv_field, to_csv


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@SUM", "'@SUM"), ("\tx", "'\tx"),
    ("-12.5", "-12.5"), ("/page", "/page"), (None, ""), (3, "3"),
])
def test_csv_field_neutralises_formulas(value: object, expected: str) -> None:
    assert csv_field(value) == expected


def test_to_csv_quotes_every_field() -> None:
    assert to_csv(["a", "b"], [{"a": 'x"y', "b": None}]) == '"a","b"\n"x""y",""\n'
