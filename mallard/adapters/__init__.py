"""Thin adapters from web frameworks to :class:`mallard.http.Api`: ASGI, WSGI and Flask.

Import the one you need (``from mallard.adapters.asgi import MallardASGI``); this package imports none of
them, so no optional framework is loaded by accident.
"""
