"""CSV and JSON renderings of report tables, shared by the CLI and the HTTP API.

CSV fields that a spreadsheet would run as a formula (leading ``=``, ``+``, ``-``, ``@``, tab or carriage
return) are prefixed with ``'``; every field is quoted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

_FORMULA: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_field(value: Any) -> str:
    """One value as CSV text, neutralised against formula injection."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document (header + rows, every field quoted)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_field(row.get(c)) for c in columns])
    return out.getvalue()


def to_json(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A JSON array; decimals and timestamps as strings."""
    return orjson.dumps(list(rows), default=str)
