"""Authentication over HTTP, through every adapter, on servers of its own (these tests set the password):
open mode, setup, login, logout, API keys and scopes, CSRF, erasure, lockout.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from .conftest import KINDS, Live, serving
from .test_contract import JSON, event, post, site

pytestmark = pytest.mark.slow  # real servers of every kind

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "auth")


def test_admin_routes_are_closed_before_setup(live: Live) -> None:
    """Before a password exists, key management and erasure answer 401; stats are open to loopback."""
    with live.client() as c:
        assert c.get("/api/keys").status_code == 401
        assert c.post("/api/keys", content=b'{"name":"x"}', headers=JSON).status_code == 401
        assert c.delete("/api/gdpr/erase", params={"site_id": "a.example", "start_date": "2024-01-01",
                                                   "end_date": "2024-01-02"}).status_code == 401
        status = c.get("/api/auth/status").json()
        assert status["setup_required"] is True and status["loopback_only"] is True


def test_open_mode_serves_only_same_origin_loopback_requests(live: Live) -> None:
    """Before a password exists, a page on another origin, or a DNS name rebound to 127.0.0.1, can
    neither read stats nor set the first password (403, JSON), and gets no CORS permission; the
    same-origin request of the dashboard still reads."""
    evil = {"Origin": "https://evil.example"}
    rebound = {"Host": "evil.example:8000"}
    with live.client() as c:
        for headers in (evil, rebound, {"Origin": "null"}):
            r = c.get("/api/stats/main", params={"site_id": "a.example"}, headers=headers)
            assert r.status_code == 403 and "same-origin" in r.json()["error"], (headers, r.text)
            assert "access-control-allow-origin" not in r.headers
            r = c.post("/api/auth/setup", content=orjson.dumps({"password": PASSWORD}),
                       headers={**JSON, **headers})
            assert r.status_code == 403 and "error" in r.json(), (headers, r.text)
        r = c.options("/api/stats/main", headers={**evil, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in r.headers
        assert c.get("/api/auth/status").json()["setup_required"] is True
        r = c.get("/api/stats/main", params={"site_id": "a.example"}, headers={"Origin": live.host})
        assert r.status_code == 200, r.text
        assert c.get("/api/stats/main", params={"site_id": "a.example"}).status_code == 200


def test_setup_login_keys_and_erase(live: Live) -> None:
    """Setup, login, logout, API keys with scopes, CSRF on cookie-authenticated changes, erasure."""
    d = site()
    origin = {"Origin": live.host}
    with live.client() as c:
        post(c, event(d, "/gone"))
        assert c.post("/api/auth/setup", content=orjson.dumps({"password": "short"}), headers=JSON
                      ).status_code == 400
        r = c.post("/api/auth/setup", content=orjson.dumps({"password": PASSWORD}), headers=JSON)
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "mm_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.post("/api/auth/setup", content=orjson.dumps({"password": PASSWORD + "!"}),
                      headers=JSON).status_code == 409
    with live.client() as anon:
        assert anon.get("/api/stats/main", params={"site_id": d}).status_code == 401
        assert post(anon, event(d)).status_code == 202  # ingestion never needs auth
        assert anon.post("/api/auth/login", content=orjson.dumps({"password": "wrong password!"}),
                         headers=JSON).status_code == 401
    with live.client() as c:
        r = c.post("/api/auth/login", content=orjson.dumps({"password": PASSWORD}), headers=JSON)
        assert r.status_code == 200
        assert c.get("/api/stats/main", params={"site_id": d}).status_code == 200
        assert c.post("/api/keys", content=b'{"name":"ci","scope":"ReadOnly"}', headers=JSON
                      ).status_code == 403  # cookie without Origin: CSRF check
        r = c.post("/api/keys", content=b'{"name":"ci","scope":"ReadOnly"}', headers={**JSON, **origin})
        assert r.status_code == 201 and r.json()["key"].startswith("mm_")
        ro_key, ro_hash = r.json()["key"], r.json()["key_hash"]
        admin_key = c.post("/api/keys", content=b'{"name":"ops","scope":"Admin"}',
                           headers={**JSON, **origin}).json()["key"]
        assert [k["name"] for k in c.get("/api/keys").json()] == ["ci", "ops"]
        assert c.post("/api/auth/logout").status_code == 200
    with live.client() as k:
        assert k.get("/api/stats/main", params={"site_id": d},
                     headers={"Authorization": f"Bearer {ro_key}"}).status_code == 200
        assert k.get("/api/keys", headers={"X-API-Key": ro_key}).status_code == 403
        today = datetime.now(UTC).date()
        r = k.delete("/api/gdpr/erase", params={"site_id": d, "start_date": str(today - timedelta(days=1)),
                                                "end_date": str(today)}, headers={"X-API-Key": admin_key})
        assert r.status_code == 200 and r.json()["status"] == "erased"
        after = k.get("/api/stats/main", params={"site_id": d, "period": "day"},
                      headers={"X-API-Key": admin_key}).json()
        assert after["total_events"] == 0
        assert k.delete(f"/api/keys/{ro_hash}", headers={"X-API-Key": admin_key}).status_code == 200
        assert k.get("/api/stats/main", params={"site_id": d},
                     headers={"Authorization": f"Bearer {ro_key}"}).status_code == 401


def test_login_lockout_answers_429_with_retry_after(live: Live) -> None:
    """Five wrong passwords lock the client out: even the right one then gets 429 + Retry-After."""
    with live.client() as c:
        codes = [c.post("/api/auth/login", content=orjson.dumps({"password": f"wrong-{i}-password"}),
                        headers=JSON).status_code for i in range(5)]
        assert codes == [401] * 5
        r = c.post("/api/auth/login", content=orjson.dumps({"password": PASSWORD}), headers=JSON)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
