"""The mallard exception hierarchy.

::

    MallardError
     ├── ConfigurationError (ValueError)   a setting has a bad value, or a resource named by one is unusable
     ├── InvalidEventError (ValueError)    an event failed validation in the ingestion pipeline
     ├── InvalidQueryError (ValueError)    a query (period, filter, metric, dimension, …) is malformed
     ├── StorageError (OSError)            the lake, spool or state directory could not be read or written
     └── QueryTimeoutError                 a query ran longer than its time limit and was interrupted

Every message says what was wrong and what is accepted, and never contains a raw IP address.
HTTP status codes are assigned in exactly one place, the HTTP layer.
"""

from __future__ import annotations


class MallardError(Exception):
    """Base class of every error mallard raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(MallardError, ValueError):
    """A setting has a bad value, or a resource it names (GeoIP database, data dir) is unusable."""

    code = "configuration"


class InvalidEventError(MallardError, ValueError):
    """An event was rejected by validation (missing field, too long, bad site id, …)."""

    code = "invalid_event"


class InvalidQueryError(MallardError, ValueError):
    """A query was rejected: unknown metric or dimension, bad period, bad filter, …"""

    code = "invalid_query"


class StorageError(MallardError, OSError):
    """The lake, the spool or the state directory could not be read or written."""

    code = "storage"


class StoreUnreachableError(StorageError):
    """Object storage did not answer (down, unreachable): what an outage raises, as opposed to a
    refusal (credentials, a missing bucket), which no retry or fallback cures."""


class QueryTimeoutError(MallardError):
    """A query ran longer than its time limit (``query_timeout_secs`` over HTTP) and was stopped."""

    code = "query_timeout"
