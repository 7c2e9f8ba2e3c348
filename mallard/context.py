"""The client of the request being handled, for ``Mallard.track()`` calls made inside a view.

Adapters and the pageview middleware set it around the host's handler; ``track()`` uses it when the
caller passes no ``ip``/``user_agent``. It holds the raw IP only for the duration of the request, in
memory, and the tracker never stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._tracker import ClientContext

__all__ = ["current_client", "request_client"]

_current: ContextVar[ClientContext | None] = ContextVar("mallard_client", default=None)


def current_client() -> ClientContext | None:
    """The client of the request being handled in this context, if an adapter set it."""
    return _current.get()


@contextmanager
def request_client(ctx: ClientContext) -> Iterator[None]:
    """Make ``ctx`` the current client within the block."""
    token = _current.set(ctx)
    try:
        yield
    finally:
        _current.reset(token)


def set_client(ctx: ClientContext | None) -> object:
    """Set the current client; returns a token for :func:`reset_client` (for WSGI iterables)."""
    return _current.set(ctx)


def reset_client(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
