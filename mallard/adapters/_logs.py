"""The log lines of ``mallard serve``: uvicorn's text, or one JSON object a line (``log_format = "json"``).

A JSON line is ``{"time", "level", "logger", "message"}`` (plus ``"exception"`` with a traceback), the
time in UTC ISO 8601 with milliseconds: what log shippers (Loki, CloudWatch, Datadog, journald's JSON
mode) read without a parsing rule. The records are the same as in text mode: uvicorn's and mallard's
(no request data, and no client address unless ``--access-log`` is given).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from .._settings import Settings

__all__ = ["JsonFormatter", "log_config"]


class JsonFormatter(logging.Formatter):
    """One JSON object a record."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"time": when.replace("+00:00", "Z"), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def log_config(settings: Settings, level: str = "info") -> dict[str, Any] | None:
    """``uvicorn.run``'s ``log_config`` for ``settings.log_format``; None: uvicorn's own (text)."""
    if settings.log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    loggers = {name: {"handlers": ["json"], "level": level.upper(), "propagate": False}
               for name in ("uvicorn", "uvicorn.access", "mallard")}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
            "handlers": {"json": handler}, "loggers": loggers}


def banner(settings: Settings, text: str) -> str:
    """The start-up lines ``mallard serve`` prints, as one JSON line in JSON mode."""
    if settings.log_format != "json":
        return text
    record = logging.LogRecord("mallard.serve", logging.INFO, __file__, 0, text, None, None)
    return JsonFormatter().format(record)
