"""JSON Schema fragments shared by several routes' :class:`~mallard._http.routing.Param` and
:class:`~mallard._http.routing.Body` declarations. Bounds and names come from the modules that enforce them,
so the document cannot drift from the checks.
"""

from __future__ import annotations

from typing import Any, Final

from .._events import MAX_SITE_ID, SITE_ID_PATTERN
from .._queries.periods import PERIODS
from .routing import Param

__all__ = ["DATE", "ERROR", "SITE_ID", "date_param", "period_param", "site_param"]

SITE_ID: Final[dict[str, Any]] = {
    "type": "string", "minLength": 1, "maxLength": MAX_SITE_ID, "pattern": f"^{SITE_ID_PATTERN}$",
    "not": {"pattern": "^[.]+$"}, "examples": ["example.com"],
}
DATE: Final[dict[str, Any]] = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$",
                               "examples": ["2026-01-31"]}
ERROR: Final[dict[str, Any]] = {
    "type": "object", "required": ["error", "code"], "properties": {
        "error": {"type": "string", "description": "What was wrong and what to do next (for people)."},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                 "examples": ["invalid_query", "unknown_site", "rate_limited"],
                 "description": "A stable machine-readable name of the error (snake_case): match this, "
                                "never the message."}},
    "description": "Every error answer: a message saying what to do next, and its code.",
}


def site_param(description: str = "The site id.") -> Param:
    return Param("site_id", SITE_ID, description, required=True)


def date_param(name: str, description: str, *, required: bool = False) -> Param:
    return Param(name, DATE, description, required=required)


def period_param() -> Param:
    return Param("period", {"type": "string", "enum": [*PERIODS, ""], "default": "30d"},
                 "A named period ending today; empty means 30d. Ignored when start_date and end_date "
                 "are given.")
