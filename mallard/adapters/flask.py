"""Flask extension: :class:`MallardFlask`.

``MallardFlask(app)`` or ``ext = MallardFlask(); ext.init_app(app, url_prefix="/_m")``. Settings come
from ``app.config["MALLARD_*"]`` over the ``MALLARD_*`` environment (read once, at ``init_app``); each
app's instance lives in its ``app.extensions["mallard"]``. Every request of the host app gets a request
context, so ``m.track("signup", ...)`` in a view picks up the client's IP and User-Agent.
"""

from __future__ import annotations

import weakref
from typing import Any

from flask import Flask, current_app, g, has_app_context
from flask import request as flask_request

from .._app import Mallard
from .._http.api import Api
from .._http.messages import Request
from .._http.security import client_context
from .._settings import Settings
from ..context import reset_client, set_client

__all__ = ["MallardFlask"]

_METHODS = ["GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT", "PATCH"]


class MallardFlask:
    """Mount mallard in a Flask app, or in several (one extension, ``init_app`` per app).

    As with Flask-SQLAlchemy, the extension object keeps no per-app state: each app's instance lives in
    its ``app.extensions["mallard"]``, built from that app's config, and :attr:`mallard` reads the
    current app's.

    Args:
        app: the app (or call :meth:`init_app` later, once per app).
        mallard: an existing instance, used by every app this extension is registered on; by default
            each app gets one built from its own ``MALLARD_*`` config.
        url_prefix: where the API, script and dashboard are mounted.
    """

    def __init__(self, app: Flask | None = None, *, mallard: Mallard | None = None,
                 url_prefix: str = "/_m") -> None:
        self._given = mallard
        # Only so that `MallardFlask(app).mallard` works outside an app context, as it always has.
        self._app: weakref.ref[Flask] | None = None
        self.url_prefix = url_prefix
        if app is not None:
            self._app = weakref.ref(app)
            self.init_app(app)

    @property
    def mallard(self) -> Mallard:
        """The current app's instance (in an app or request context); outside one, the instance given
        to the constructor, else that of the app given to it."""
        if has_app_context():
            return _instance(current_app)
        if self._given is not None:
            return self._given
        app = self._app() if self._app is not None else None
        if app is None:
            raise RuntimeError("MallardFlask.mallard outside an app context: use it inside one "
                               "(with app.app_context()) or read app.extensions['mallard'].")
        return _instance(app)

    def init_app(self, app: Flask, *, url_prefix: str | None = None) -> None:
        """Register on ``app``: its instance (built from its ``MALLARD_*`` config over the environment,
        unless the extension was given one), its routes under ``url_prefix`` and its request context.

        Raises:
            RuntimeError: a MallardFlask is already registered on ``app``.
        """
        if "mallard" in app.extensions:
            raise RuntimeError("A MallardFlask instance is already registered on this app. "
                               "Reuse app.extensions['mallard'] instead of registering a second one.")
        # MALLARD_* environment variables (and MALLARD_CONFIG), overridden by this app's config.
        m = self._given or Mallard(Settings.from_mapping(app.config, base=Settings.load()))
        app.extensions["mallard"] = m
        api = Api.for_mallard(m)
        prefix = (url_prefix if url_prefix is not None else self.url_prefix).rstrip("/")

        def view(path: str = "") -> Any:
            data = _body(api.max_body_bytes)
            if data is None:
                response = api.refuse(413, f"Request body exceeds {api.max_body_bytes} bytes.")
            else:
                env = flask_request.environ
                headers = {k.lower(): v for k, v in flask_request.headers.items()}
                req = Request(method=flask_request.method, path="/" + path,
                              query_string=env.get("QUERY_STRING", ""), headers=headers, body=data,
                              client=flask_request.remote_addr, root_path=flask_request.script_root + prefix,
                              scheme=flask_request.scheme)
                response = api.handle(req)
            out = app.response_class(response.body, status=response.status)
            out.headers.clear()
            for name, value in response.headers:
                out.headers.add(name, value)
            return out

        endpoint = "mallard" if "mallard" not in app.view_functions else f"mallard_{id(self)}"
        app.add_url_rule(f"{prefix}/", endpoint, view, methods=_METHODS)
        app.add_url_rule(f"{prefix}/<path:path>", endpoint, view, methods=_METHODS)

        def before() -> None:
            headers = {k.lower(): v for k, v in flask_request.headers.items()}
            peer = Request("GET", "/", headers=headers, client=flask_request.remote_addr)
            g._mallard_token = set_client(client_context(peer, m.settings))

        def after(exc: BaseException | None) -> None:
            token = g.pop("_mallard_token", None)
            if token is not None:
                reset_client(token)

        app.before_request(before)
        app.teardown_request(after)


def _instance(app: Flask) -> Mallard:
    found = app.extensions.get("mallard")
    if not isinstance(found, Mallard):
        raise RuntimeError("MallardFlask is not registered on this app: call init_app(app) first.")
    return found


def _body(limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes: a declared ``Content-Length`` over it
    is refused unread, and a body without one is read no further than ``limit + 1`` bytes."""
    declared = flask_request.content_length
    if declared is not None and declared > limit:
        return None
    data = flask_request.stream.read(limit + 1)
    return None if len(data) > limit else data
