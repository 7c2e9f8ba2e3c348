"""Slow and idle clients cannot hold a real server: stalled bodies get a 408 and are closed, connections
that never send their headers are closed, and past ``limit_concurrency`` new requests get a JSON 503.

Real servers on 127.0.0.1 with small timeouts set through the environment; every wait is bounded by a
generous deadline (the configured timeout plus a margin), never a speed assertion.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.http.conftest import Live, eventually, serving

pytestmark = pytest.mark.slow  # real servers and slow sockets

BODY_TIMEOUT = 2.0
HEADER_TIMEOUT = 1.0
MARGIN = 20.0
STALLED = 200
EVENT = {"name": "pageview", "url": "https://slow.example/", "domain": "slow.example"}
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def connect(live: Live, count: int, data: bytes = b"") -> list[socket.socket]:
    """``count`` raw connections to ``live``, each having sent ``data``."""
    address = urlsplit(live.host)
    socks = []
    for _ in range(count):
        sock = socket.create_connection((address.hostname, address.port), timeout=MARGIN)
        if data:
            sock.sendall(data)
        socks.append(sock)
    return socks


def read_until_closed(socks: list[socket.socket], deadline: float) -> list[bytes]:
    """What the server sent on each socket up to its closing it; fails past ``deadline`` (monotonic)."""
    received = {sock: b"" for sock in socks}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_socks = len(socks)
        while open_socks:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{open_socks} of {len(socks)} connections still open"
            for key, _ in selector.select(remaining):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[sock] += chunk
                else:
                    selector.unregister(sock)
                    open_socks -= 1
    for sock in socks:
        sock.close()
    return [received[sock] for sock in socks]


def metric(live: Live, line_start: str) -> float:
    text = httpx.get(live.base + "/metrics", timeout=MARGIN).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


@pytest.fixture(scope="module", params=["serve", "starlette"])
def quick(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server with second-scale body and header timeouts (``starlette``: mallard mounted under
    uvicorn's own defaults, so only the ASGI adapter's body timeout applies)."""
    yield from serving(request.param, tmp_path_factory, "slow",
                       {"MALLARD_BODY_TIMEOUT_SECS": str(BODY_TIMEOUT),
                        "MALLARD_HEADER_TIMEOUT_SECS": str(HEADER_TIMEOUT),
                        "MALLARD_LIMIT_CONCURRENCY": str(STALLED + 50)})


def test_stalled_bodies_get_408_and_are_closed_while_others_are_served(quick: Live) -> None:
    """200 connections send headers with a Content-Length and never the body: each gets a 408 JSON
    error and is closed within body_timeout_secs (+ margin), a normal request meanwhile gets its
    answer, and none of the stalled events is stored."""
    path = urlsplit(quick.base).path + "/api/event"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n\r\n").encode()
    stalled = connect(quick, STALLED, head)
    with quick.client() as client:
        assert client.post("/api/event", json=EVENT, headers={"User-Agent": UA}).status_code == 202
        assert client.get("/health").status_code == 200
    replies = read_until_closed(stalled, time.monotonic() + BODY_TIMEOUT + MARGIN)
    for reply in replies:
        head_part, _, body = reply.partition(b"\r\n\r\n")
        assert head_part.startswith(b"HTTP/1.1 408 "), reply[:200]
        assert b"connection: close" in head_part.lower()
        assert "error" in orjson.loads(body)
    assert metric(quick, 'mallard_http_refusals_total{reason="body_timeout"}') == STALLED
    assert metric(quick, "mallard_events_ingested_total") == 1


@pytest.mark.parametrize("quick", ["serve"], indirect=True)  # the watch is `mallard serve`'s
@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
                         ids=["nothing", "half-headers"])
def test_connections_without_complete_headers_are_closed(quick: Live, sent: bytes) -> None:
    """`mallard serve` closes connections that send nothing, or half their headers, within
    header_timeout_secs (checked once per period, so at most twice that, + margin)."""
    idle = connect(quick, 50, sent)
    assert read_until_closed(idle, time.monotonic() + 2 * HEADER_TIMEOUT + MARGIN) == [b""] * 50
    assert httpx.get(quick.base + "/health", timeout=MARGIN).status_code == 200


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "limited",
                       {"MALLARD_LIMIT_CONCURRENCY": "20", "MALLARD_HEADER_TIMEOUT_SECS": "120"})


def test_requests_past_limit_concurrency_get_a_json_503(limited: Live) -> None:
    """With limit_concurrency=20 and 30 idle connections open, a request gets a JSON 503 with
    Retry-After (not a hang), counted; once they close, requests are served again."""
    idle = connect(limited, 30)
    try:
        responses: list[httpx.Response] = []

        def refused() -> bool:
            responses.append(httpx.get(limited.base + "/health", timeout=MARGIN))
            return responses[-1].status_code == 503

        eventually(refused, timeout=MARGIN)
        busy = responses[-1]
        assert "error" in busy.json()
        assert busy.headers["retry-after"] == "1"
        assert busy.headers["content-type"] == "application/json"
    finally:
        for sock in idle:
            sock.close()
    eventually(lambda: httpx.get(limited.base + "/health", timeout=MARGIN).status_code == 200,
               timeout=MARGIN)
    assert metric(limited, 'mallard_http_refusals_total{reason="concurrency_limit"}') >= 1
