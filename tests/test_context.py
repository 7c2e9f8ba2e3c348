"""Host applications (Starlette, Flask, bare WSGI) around mallard: the request context reaches ``track()``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.http.conftest import Live, serving
from tests.http.test_contract import UA

pytestmark = pytest.mark.slow  # real host servers


@pytest.fixture(scope="module", params=("starlette", "flask", "wsgi"))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "host")


def test_request_context_reaches_track(live: Live) -> None:
    """``m.track()`` in a host view, without ip/user_agent, records the request's client."""
    r = httpx.get(live.host + "/signup", headers={"User-Agent": UA}, timeout=30)
    assert r.json() == {"tracked": True}
    with httpx.Client(base_url=live.base, timeout=30) as c:
        rows = c.get("/api/stats/breakdown/browsers", params={"site_id": "host.example",
                                                               "period": "day"}).json()
    assert rows and rows[0]["value"] == "Firefox"
