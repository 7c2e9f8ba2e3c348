"""Exceptions → HTTP answers, in one table: the only place where an exception becomes a status code.

:meth:`Api.handle <mallard._http.api.Api.handle>` sends every exception a route raises to
:func:`answer`. Each answer is ``{"error": <message>, "code": <code>}``: the message says what to do
next, the code is a stable snake_case name a client may match (never the message). The rule of an
exception is found in :data:`RULES` by walking its class's MRO: for each class, the row for
``(class, its code)`` first, then ``(class, None)``; ``(Exception, None)`` ends every walk (500).

:class:`HTTPError` (raised by the HTTP layer itself) names its own status; its code is the one it was
given, or the default of its status (:data:`STATUS_CODES`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from .._auth import AlreadyConfiguredError
from .._errors import (
    ConfigurationError,
    InvalidEventError,
    InvalidQueryError,
    MallardError,
    QueryTimeoutError,
    StorageError,
)
from .messages import HTTPError, Response, json_response

__all__ = ["RULES", "STATUS_CODES", "Rule", "answer", "code_of", "error_body", "refusal"]

log = logging.getLogger("mallard.http")

_RETRY_5: Final = (("Retry-After", "5"),)


class Rule(NamedTuple):
    """How one kind of exception is answered.

    Attributes:
        status: the HTTP status.
        code: the answer's code; None: the exception's own ``code``.
        message: the answer's message; None: the exception's (replaced where it may name files).
        headers: extra headers (``Retry-After``).
        log: ``"error"`` logs the exception's message, ``"exception"`` its traceback; None: not logged.
    """

    status: int
    code: str | None = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    log: str | None = None


#: (exception class, its code or None for any code) → rule.
RULES: Final[Mapping[tuple[type[BaseException], str | None], Rule]] = {
    # A JSON event body of the wrong shape (a key missing, a value of the wrong type) is 422, as in
    # Mallard Metrics; every other invalid event (empty, too long, malformed JSON…) is 400.
    (InvalidEventError, "missing_field"): Rule(422),
    (InvalidEventError, "invalid_type"): Rule(422),
    (InvalidEventError, None): Rule(400),
    (InvalidQueryError, None): Rule(400),
    (ConfigurationError, None): Rule(400),
    (AlreadyConfiguredError, None): Rule(409, message="Admin password already configured"),
    # The message names files of the data directory: logged, not answered.
    (StorageError, None): Rule(503, "storage_unavailable", "Storage is unavailable; retry later.",
                               _RETRY_5, log="error"),
    (QueryTimeoutError, None): Rule(503, headers=_RETRY_5),
    # Any other rule of the core (a goal, a saved funnel, an API key's name, a password): the input.
    (MallardError, None): Rule(400),
    (Exception, None): Rule(500, "internal_error", "Internal server error", log="exception"),
}

#: The code of an :class:`HTTPError` (and of an adapter's refusal) raised without one.
STATUS_CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_body",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def code_of(status: int) -> str:
    """The default code of ``status`` (``error`` for a status no route answers)."""
    return STATUS_CODES.get(status, "error")


def error_body(status: int, message: str, code: str,
               headers: Iterable[tuple[str, str]] = ()) -> Response:
    """The JSON error answer ``{"error": message, "code": code}``."""
    return json_response({"error": message, "code": code}, status, headers)


def refusal(status: int, message: str, headers: Iterable[tuple[str, str]] = (), *,
            code: str | None = None) -> Response:
    """An answer given before any route ran (an adapter's 413, a 408 slow body, a 503 busy server)."""
    return error_body(status, message, code or code_of(status), headers)


def rule_of(exc: BaseException) -> Rule:
    """The row of :data:`RULES` that answers ``exc`` (an :class:`HTTPError` has none: it names its own)."""
    code = getattr(exc, "code", None)
    for cls in type(exc).__mro__:
        found = RULES.get((cls, code)) if isinstance(code, str) else None
        found = found or RULES.get((cls, None))
        if found is not None:
            return found
    return RULES[(Exception, None)]  # a BaseException that is no Exception: as unexpected


def answer(exc: BaseException, where: str) -> Response:
    """The answer to ``exc``, raised while handling ``where`` (``GET /api/stats/main``: the method and
    route pattern, never the path or query, which may hold anything)."""
    if isinstance(exc, HTTPError):
        return error_body(exc.status, exc.message, exc.code or code_of(exc.status), exc.headers)
    rule = rule_of(exc)
    if rule.log == "error":
        log.error("%s: %s", where, exc)
    elif rule.log == "exception":
        log.error("unexpected error handling %s", where, exc_info=exc)
    message = rule.message or getattr(exc, "message", None) or code_of(rule.status)
    code = rule.code or getattr(exc, "code", None) or code_of(rule.status)
    return error_body(rule.status, message, code, rule.headers)
