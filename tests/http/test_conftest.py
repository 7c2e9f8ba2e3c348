"""The real-server fixture itself: with tests running in parallel (pytest-xdist), the port free_port()
picked can be taken by another process before the server binds it; start() must not hand out a server
that is not the one it started."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.http import conftest
from tests.static.quiet import QuietHandler

pytestmark = pytest.mark.slow  # a real mallard serve


class Healthy(QuietHandler):
    """Another process's server on the port: answers every GET with 200."""

    def do_GET(self) -> None:
        self.send(200, b"{}", "application/json")


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port already served by someone else (an HTTP server in this process); yields the port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_start_replaces_a_port_another_server_took(squatter: int, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ports = iter([squatter])
    real = conftest.free_port
    monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or real())
    live = conftest.start("serve", tmp_path / "data")
    try:
        assert not live.base.endswith(f":{squatter}")
        assert conftest.listens(live, int(live.base.rsplit(":", 1)[1]))
        assert httpx.get(live.base + "/health", timeout=10).status_code == 200
    finally:
        conftest.stop(live)
