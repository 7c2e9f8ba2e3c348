"""The Flask extension's rules (``mallard/adapters/flask.py``): one ``init_app`` per app, per-app state
and body limits, driven in-process through Flask's test client (the real extension, app and mallard; no
server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mallard._http import Api
from mallard.adapters.flask import MallardFlask

from .test_middleware import SITE, UA, pages


def visitors(client: Any, prefix: str) -> object:
    """Today's unique visitors of SITE through a Flask app's stats route (open mode, local client)."""
    r = client.get(f"{prefix}/api/stats/main", query_string={"site_id": SITE, "period": "day"})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["unique_visitors"]


def test_one_flask_extension_init_app_on_two_apps(tmp_path: Path) -> None:
    """The Flask-SQLAlchemy way: one extension object, ``init_app`` per app; each app gets a mallard of
    its own config in its ``app.extensions`` (app b never gets app a's data dir), events tracked in app a
    are not in app b, and ``ext.mallard`` is the current app's."""
    a, b = Flask("a"), Flask("b")
    a.config["MALLARD_DATA_DIR"] = str(tmp_path / "a")
    b.config["MALLARD_DATA_DIR"] = str(tmp_path / "b")
    ext = MallardFlask()
    ext.init_app(a)
    ext.init_app(b, url_prefix="/stats")
    try:
        assert a.extensions["mallard"] is not b.extensions["mallard"]
        assert a.extensions["mallard"].settings.data_dir == tmp_path / "a"
        assert b.extensions["mallard"].settings.data_dir == tmp_path / "b"
        with a.app_context():
            assert ext.mallard is a.extensions["mallard"]
        with b.app_context():
            assert ext.mallard is b.extensions["mallard"]
        with pytest.raises(RuntimeError, match="app context"):
            _ = ext.mallard  # two apps and none current: which one is ambiguous
        assert b.test_client().get("/stats/health").data == b"ok"
        assert b.test_client().get("/_m/health").status_code == 404
        assert a.test_client().get("/_m/health").data == b"ok"

        body = {"d": SITE, "n": "pageview", "u": f"https://{SITE}/only-in-a"}
        r = a.test_client().post("/_m/api/event", json=body, headers={"User-Agent": UA})
        assert r.status_code == 202
        assert visitors(a.test_client(), "/_m") == 1
        assert visitors(b.test_client(), "/stats") == 0
        assert a.extensions["mallard"].flush() == 1
        assert b.extensions["mallard"].flush() == 0
        assert list((tmp_path / "a" / "events").rglob("*.parquet"))
        assert not (tmp_path / "b" / "events").exists() \
            or not list((tmp_path / "b" / "events").rglob("*.parquet"))
        assert pages(a.extensions["mallard"]) == {"/only-in-a": 1}
        assert pages(b.extensions["mallard"]) == {}
    finally:
        a.extensions["mallard"].close()
        b.extensions["mallard"].close()


def test_flask_body_limit_is_each_apps_own(tmp_path: Path) -> None:
    """One extension, two apps with their own ``MALLARD_MAX_BODY_BYTES``: each app's limit is its own."""
    a, b = Flask("a"), Flask("b")
    a.config.update(MALLARD_DATA_DIR=str(tmp_path / "a"))
    b.config.update(MALLARD_DATA_DIR=str(tmp_path / "b"), MALLARD_MAX_BODY_BYTES=1024)
    ext = MallardFlask()
    ext.init_app(a)
    ext.init_app(b)
    body = {"d": SITE, "n": "pageview", "u": f"https://{SITE}/", "p": {"pad": "x" * 2000}}
    try:
        assert a.test_client().post("/_m/api/event", json=body, headers={"User-Agent": UA}) \
            .status_code == 202
        refused = b.test_client().post("/_m/api/event", json=body, headers={"User-Agent": UA})
        assert refused.status_code == 413
        assert refused.get_json()["error"] == "Request body exceeds 1024 bytes."
    finally:
        a.extensions["mallard"].close()
        b.extensions["mallard"].close()


def test_flask_extension_outside_an_app_context(tmp_path: Path) -> None:
    """Outside an app context ``ext.mallard`` is the app given to the constructor's; an extension only
    registered with ``init_app`` needs an app context, and one registered nowhere says so."""
    app = Flask("ctor")
    app.config["MALLARD_DATA_DIR"] = str(tmp_path / "ctor")
    other = Flask("other")
    other.config["MALLARD_DATA_DIR"] = str(tmp_path / "other")
    ext, factory = MallardFlask(app), MallardFlask()
    factory.init_app(other)
    try:
        assert ext.mallard is app.extensions["mallard"]
        with pytest.raises(RuntimeError, match="app context"):
            _ = factory.mallard
        with other.app_context():
            assert factory.mallard is other.extensions["mallard"]
        with Flask("bare").app_context(), pytest.raises(RuntimeError, match="init_app"):
            _ = factory.mallard
    finally:
        app.extensions["mallard"].close()
        other.extensions["mallard"].close()


def test_flask_body_limit_before_the_body_is_read(tmp_path: Path) -> None:
    """A declared Content-Length over the limit is refused without reading the body; a chunked body is
    read no further than the limit."""
    app = Flask("limits")
    app.config["MALLARD_DATA_DIR"] = str(tmp_path / "d")
    ext = MallardFlask(app)
    limit = Api.for_mallard(ext.mallard).max_body_bytes
    read: list[int] = []

    class Body:
        def __init__(self, size: int) -> None:
            self.left = size

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            read.append(n)
            return b"x" * n

    try:
        environ = {"CONTENT_LENGTH": str(limit * 50), "CONTENT_TYPE": "text/plain",
                   "wsgi.input": Body(limit * 50)}
        response = app.test_client().post("/_m/api/event", environ_overrides=environ)
        assert response.status_code == 413 and "error" in response.get_json()
        assert sum(read) == 0
        read.clear()
        chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": "text/plain",
                   "wsgi.input": Body(limit * 50), "wsgi.input_terminated": True}
        response = app.test_client().post("/_m/api/event", environ_overrides=chunked)
        assert response.status_code == 413 and "error" in response.get_json()
        assert sum(read) <= limit + 1
    finally:
        ext.mallard.close()


def test_flask_extension_once_per_app_and_two_apps(tmp_path: Path) -> None:
    """A second MallardFlask on one app raises with guidance; two apps in one process each get their own."""
    a, b = Flask("a"), Flask("b")
    a.config["MALLARD_DATA_DIR"] = str(tmp_path / "a")
    b.config["MALLARD_DATA_DIR"] = str(tmp_path / "b")
    ext_a, ext_b = MallardFlask(a), MallardFlask(b, url_prefix="/stats")
    try:
        with pytest.raises(RuntimeError, match="already registered"):
            MallardFlask(a)
        assert a.extensions["mallard"] is ext_a.mallard and b.extensions["mallard"] is ext_b.mallard
        assert ext_a.mallard.settings.data_dir != ext_b.mallard.settings.data_dir
        assert a.test_client().get("/_m/health").data == b"ok"
        assert b.test_client().get("/stats/health").data == b"ok"
        assert b.test_client().get("/_m/health").status_code == 404
    finally:
        ext_a.mallard.close()
        ext_b.mallard.close()
