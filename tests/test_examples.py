"""The example apps of examples/ (FastAPI, Flask, Django) run as real servers on 127.0.0.1, started with the
one command their README gives, and mallard works inside each over HTTP: an event sent with a browser's
User-Agent and a server-side ``track()`` are counted by the stats API, the dashboard and the tracking script
load, and the host's own page embeds the script.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.conftest import Live, eventually, free_port, spawn, stop

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"

#: What the test adds to each README command to put the server on a free port, and nothing else
#: (Django's runserver: no auto-reloader, whose child process would outlive a killed parent's group less
#: predictably; the port as its address argument).
PORT_OPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "fastapi": ((), "PORT"),
    "flask": (("--port", "{port}"), ""),
    "django": (("--noreload", "127.0.0.1:{port}"), ""),
}

pytestmark = pytest.mark.slow


def readme_command(example: str) -> list[str]:
    """The one command of the example's README (its first bash block), as argv."""
    text = (EXAMPLES / example / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 1, "one command, in one bash block"
    argv = shlex.split(blocks[0].strip())
    assert argv[0] in ("python", "flask"), argv
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert f"`{blocks[0].strip()}`" in index, "examples/README.md gives the same command"
    return [sys.executable, *argv[1:]] if argv[0] == "python" else [sys.executable, "-m", *argv]


@pytest.fixture(scope="module", params=sorted(PORT_OPTIONS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    name = request.param
    args, port_env = PORT_OPTIONS[name]
    data_dir = tmp_path_factory.mktemp(f"example-{name}") / "data"
    live = None
    for _ in range(3):  # a port taken between free_port() and the bind: another one
        port = free_port()
        cmd = [*readme_command(name), *(a.format(port=port) for a in args)]
        live = spawn(name, cmd, port, data_dir, env={port_env: str(port)} if port_env else None)
        if live is not None:
            break
    assert live is not None, f"{name}: no free port in three tries"
    try:
        yield live
    finally:
        stop(live)
    assert "Traceback" not in live.logs(), live.logs()


def test_the_host_page_embeds_the_tracking_script(example: Live) -> None:
    page = httpx.get(example.host + "/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="/_m/mallard.js"' in page.text


def test_events_are_counted_by_the_stats_api(example: Live) -> None:
    """A browser's event through /_m/api/event and the host's own track() in POST /signup both count."""
    with example.client(headers={"User-Agent": UA}) as client:
        sent = client.post("/api/event", json={"d": "example.com", "n": "pageview",
                                               "u": "https://example.com/pricing", "w": 1280})
        assert sent.status_code == 202, sent.text
        assert "x-mallard-dropped" not in sent.headers
        signup = httpx.post(example.host + "/signup", headers={"User-Agent": UA}, timeout=30)
        assert signup.status_code == 200, signup.text
        assert signup.json() == {"tracked": True, "reason": None}

        def counted() -> bool:
            main = client.get("/api/stats/main", params={"site_id": "example.com", "period": "day"})
            assert main.status_code == 200, main.text
            stats = main.json()
            return bool(stats["total_pageviews"] == 1 and stats["total_events"] == 2
                        and stats["unique_visitors"] == 1)
        eventually(counted)
        pages = client.get("/api/stats/breakdown/pages", params={"site_id": "example.com", "period": "day"})
        assert {row["value"]: row["pageviews"] for row in pages.json()}["/pricing"] == 1


def test_the_dashboard_and_the_tracking_script_load(example: Live) -> None:
    with example.client() as client:
        dashboard = client.get("/")
        assert dashboard.status_code == 200
        assert dashboard.headers["content-type"].startswith("text/html")
        assert "<title>" in dashboard.text and "mallard" in dashboard.text.lower()
        script = client.get("/mallard.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert "/api/event" in script.text
