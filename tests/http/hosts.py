"""Host applications that mount mallard under ``/_m``, run by real servers in the contract suite.

Each reads its settings from ``MALLARD_*`` variables (the test sets ``MALLARD_DATA_DIR`` and friends):

* ``starlette_app()`` — a Starlette app with ``Mount("/_m", MallardASGI(m))`` (uvicorn ``--factory``);
* ``flask_app`` — a Flask app with ``MallardFlask(app, url_prefix="/_m")`` (gunicorn);
* ``wsgi_app`` — a bare WSGI dispatcher sending ``/_m`` to ``MallardWSGI`` (gunicorn).

Every host also serves an HTML page at ``/`` and a view ``/signup`` that calls ``m.track("Signup")``
without passing the client (the request context supplies it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import mallard

PAGE = (b'<!doctype html><html><head><title>host</title>'
        b'<script defer data-include-local data-domain="host.example" src="/_m/mallard.js"></script>'
        b'</head><body>host page</body></html>')
SITE = "host.example"


def _track_signup(m: mallard.Mallard) -> bool:
    return bool(m.track("Signup", site=SITE, url="https://host.example/signup"))


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount, Route

    from mallard.adapters.asgi import MallardASGI
    from mallard.adapters.middleware import PageviewMiddleware

    m = mallard.Mallard()

    async def home(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def signup(request: Any) -> JSONResponse:
        return JSONResponse({"tracked": _track_signup(m)})

    app = Starlette(routes=[Route("/", home), Route("/signup", signup), Mount("/_m", app=MallardASGI(m))],
                    lifespan=m.lifespan)
    return PageviewMiddleware(app, m, site=SITE, pageviews=False)


def _flask() -> Any:
    from flask import Flask, jsonify

    from mallard.adapters.flask import MallardFlask

    app = Flask(__name__)
    ext = MallardFlask(app, url_prefix="/_m")

    @app.get("/")
    def home() -> Any:
        return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}

    @app.get("/signup")
    def signup() -> Any:
        return jsonify(tracked=_track_signup(ext.mallard))

    return app


def _wsgi() -> Callable[..., Iterable[bytes]]:
    import orjson

    from mallard.adapters.middleware import PageviewWSGIMiddleware
    from mallard.adapters.wsgi import MallardWSGI

    m = mallard.Mallard()
    inner = MallardWSGI(m)

    def host(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_m" or path.startswith("/_m/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/_m"
            environ["PATH_INFO"] = path[3:] or "/"
            return inner(environ, start_response)
        if path == "/signup":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [orjson.dumps({"tracked": _track_signup(m)})]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]

    return PageviewWSGIMiddleware(host, m, site=SITE, pageviews=False)


class _Lazy:
    """Builds the app on first use, in the worker process (after gunicorn forks)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self._app is None:
            self._app = self._build()
        return self._app(environ, start_response)


flask_app = _Lazy(_flask)
wsgi_app = _Lazy(_wsgi)
