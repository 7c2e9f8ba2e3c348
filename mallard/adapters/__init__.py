"""Thin adapters from web frameworks to :class:`Api`: ASGI, WSGI and Flask.

Import the one you need (``from mallard.adapters.asgi import MallardASGI``); this package imports none of
them, so no optional framework is loaded by accident. It holds the framework-neutral HTTP layer's public
names: :class:`Api` (``Api.for_mallard(m)``, the instance's one Api), :class:`Request`, :class:`Response`
and :class:`HTTPError`, for in-process callers and custom adapters.
"""

from .._http import Api as Api
from .._http import HTTPError as HTTPError
from .._http import Request as Request
from .._http import Response as Response

__all__ = ["Api", "HTTPError", "Request", "Response"]
