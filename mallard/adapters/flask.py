"""Flask extension: :class:`MallardFlask`.

``MallardFlask(app)`` or ``ext = MallardFlask(); ext.init_app(app, url_prefix="/_m")``. Settings come
from ``app.config["MALLARD_*"]`` over the ``MALLARD_*`` environment (read once, at ``init_app``); the
instance lives in
``app.extensions["mallard"]``. Every request of the host app gets a request context, so
``m.track("signup", ...)`` in a view picks up the client's IP and User-Agent.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask import request as flask_request

from ..analytics import Mallard
from ..context import reset_client, set_client
from ..http.messages import Request
from ..http.security import client_context
from ..settings import Settings

__all__ = ["MallardFlask"]

_METHODS = ["GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT", "PATCH"]


class MallardFlask:
    """Mount mallard in a Flask app.

    Args:
        app: the app (or call :meth:`init_app` later).
        mallard: an existing instance; by default one is built from the app's ``MALLARD_*`` config.
        url_prefix: where the API, script and dashboard are mounted.
    """

    def __init__(self, app: Flask | None = None, *, mallard: Mallard | None = None,
                 url_prefix: str = "/_m") -> None:
        self._mallard = mallard
        self.url_prefix = url_prefix
        if app is not None:
            self.init_app(app)

    @property
    def mallard(self) -> Mallard:
        if self._mallard is None:
            raise RuntimeError("MallardFlask.init_app(app) has not been called yet.")
        return self._mallard

    def init_app(self, app: Flask, *, url_prefix: str | None = None) -> None:
        if "mallard" in app.extensions:
            raise RuntimeError("A MallardFlask instance is already registered on this app. "
                               "Reuse app.extensions['mallard'] instead of registering a second one.")
        if self._mallard is None:
            # MALLARD_* environment variables (and MALLARD_CONFIG), overridden by app.config.
            self._mallard = Mallard(Settings.from_mapping(app.config, base=Settings.load()))
        m = self._mallard
        api = m.http_api()
        prefix = (url_prefix if url_prefix is not None else self.url_prefix).rstrip("/")
        app.extensions["mallard"] = m

        def view(path: str = "") -> Any:
            data = flask_request.get_data(cache=False)
            if len(data) > api.max_body_bytes:
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
