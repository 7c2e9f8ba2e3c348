"""Read-only shared links, saved funnels and the dashboard's server facts over real HTTP, on every
adapter (servers of their own: these tests set the admin password), plus one `mallard serve
--workers 2` for revocation across workers and the lockout of secret guessing.

The matrix: a live link reads its site's read routes (header or ``?auth=``), gets 403 for another
site and for every admin route, 401 once revoked; unknown secrets are 401, then 429 (lockout).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

import mallard

from .conftest import KINDS, Live, eventually, serving, start, stop
from .test_sites import cli

# real servers or processes (`pytest -m 'not slow'` leaves them out)
pytestmark = pytest.mark.slow

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
PASSWORD = "a long enough test password"
SITE, OTHER = "shared.example", "other.example"
EMBED = "https://blog.example"


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "shares", env={"MALLARD_EMBED_ORIGINS": EMBED})


def make_keys(data_dir: Path) -> dict[str, str]:
    cli(data_dir, "password", "--password-stdin", stdin=PASSWORD + "\n")
    return {scope: json.loads(cli(data_dir, "keys", "create", scope.lower(), "--scope", scope).stdout
                              .split("\n}")[0] + "}")["key"] for scope in ("Admin", "ReadOnly")}


@pytest.fixture(scope="module")
def keys(live: Live) -> dict[str, str]:
    return make_keys(live.data_dir)


def client(live: Live, key: str | None = None, **headers: str) -> httpx.Client:
    sent = {"User-Agent": UA, "Content-Type": "application/json", **headers}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    return live.client(headers=sent)


def create_link(live: Live, admin: str, site: str = SITE, name: str = "Investors") -> dict[str, str]:
    with client(live, admin) as c:
        r = c.post("/api/v1/sites/shared-links", content=orjson.dumps({"site_id": site, "name": name}))
    assert r.status_code == 201, r.text
    body: dict[str, str] = r.json()
    return body


def read_routes(site: str) -> list[tuple[str, str, dict[str, str], object]]:
    """(method, path, query, JSON body) of read routes, all about ``site``."""
    q = {"site_id": site, "period": "day"}
    return [("GET", "/api/stats/main", q, None), ("GET", "/api/stats/timeseries", q, None),
            ("GET", "/api/stats/breakdown/pages", q, None), ("GET", "/api/stats/view", q, None),
            ("GET", "/api/stats/funnel", {**q, "steps": "page:/,event:Signup"}, None),
            ("GET", "/api/stats/retention", q, None), ("GET", "/api/stats/properties", q, None),
            ("GET", "/api/stats/info", {"site_id": site}, None),
            ("GET", "/api/stats/realtime", {"site_id": site}, None),
            ("GET", "/api/v1/stats/aggregate", {"site_id": site}, None),
            ("GET", "/api/v1/sites/funnels", {"site_id": site}, None),
            ("POST", "/api/v2/query", {}, {"site_id": site, "metrics": ["visitors"], "date_range": "day"})]


def admin_routes(link_id: str) -> list[tuple[str, str, dict[str, str], object]]:
    day = {"site_id": SITE, "start_date": "2026-01-01", "end_date": "2026-01-02"}
    return [("GET", "/api/keys", {}, None), ("POST", "/api/keys", {}, {"name": "x"}),
            ("DELETE", "/api/gdpr/erase", day, None),
            ("GET", "/api/v1/sites/goals", {"site_id": SITE}, None),
            ("PUT", "/api/v1/sites/goals", {}, {"site_id": SITE, "goal_type": "event", "event_name": "X"}),
            ("PUT", "/api/v1/sites/segments", {}, {"site_id": SITE, "name": "S", "segment_data": {
                "filters": [["is", "event:page", ["/"]]]}}),
            ("POST", "/api/v1/sites/funnels", {}, {"site_id": SITE, "name": "F", "steps": ["page:/"]}),
            ("POST", "/api/v1/sites/shared-links", {}, {"site_id": SITE, "name": "mine now"}),
            ("GET", "/api/v1/sites/shared-links", {"site_id": SITE}, None),
            ("DELETE", f"/api/v1/sites/shared-links/{link_id}", {"site_id": SITE}, None)]


def send(c: httpx.Client, method: str, path: str, query: dict[str, str], body: object) -> httpx.Response:
    return c.request(method, path, params=query, content=b"" if body is None else orjson.dumps(body))


def test_shared_link_reads_one_site_only_until_revoked(live: Live, keys: dict[str, str]) -> None:
    """The 403/401 matrix of a shared link, by header and by ?auth=, and the embedding headers."""
    for d in (SITE, OTHER):
        with client(live) as c:
            assert c.post("/api/event", content=orjson.dumps(
                {"d": d, "n": "pageview", "u": f"https://{d}/"})).status_code == 202
    link = create_link(live, keys["Admin"])
    secret = link["secret"]
    assert secret.startswith("sl_") and link["url"].endswith(f"/?site={SITE}&auth={secret}")
    assert link["url"] == (live.base[len(live.host):] + f"/?site={SITE}&auth={secret}")
    assert secret not in (live.data_dir / "state" / "shared_links.json").read_text()
    with client(live, keys["Admin"]) as c:
        listed = c.get("/api/v1/sites/shared-links", params={"site_id": SITE}).json()["shared_links"]
        assert [(x["id"], x["name"], x["revoked"]) for x in listed] == [(link["id"], "Investors", False)]
        assert "secret" not in listed[0]
    with client(live, keys["ReadOnly"]) as ro:
        assert send(ro, "POST", "/api/v1/sites/shared-links", {}, {"site_id": SITE, "name": "x"}
                    ).status_code == 403
    by_header, by_param = client(live, **{"X-Mallard-Share": secret}), client(live)
    with by_header, by_param:
        for c, extra in ((by_header, {}), (by_param, {"auth": secret})):
            for method, path, query, body in read_routes(SITE):
                r = send(c, method, path, {**query, **extra}, body)
                assert r.status_code == 200, (path, r.text)
            for method, path, query, body in read_routes(OTHER):
                r = send(c, method, path, {**query, **extra}, body)
                assert r.status_code == 403 and "shared.example only" in r.json()["error"], (path, r.text)
            for method, path, query, body in admin_routes(link["id"]):
                r = send(c, method, path, {**query, **extra}, body)
                assert r.status_code == 403 and "error" in r.json(), (path, r.text)
            assert c.get("/api/stats/main", params=extra).status_code == 403  # no site_id at all
            assert c.get("/api/sites", params=extra).json() == {"sites": [SITE]}
            info = c.get("/api/stats/info", params={"site_id": SITE, **extra}).json()
            assert info["access"] == "shared" and info["shared_link"] == {"id": link["id"],
                                                                          "name": "Investors"}
            status = c.get("/api/auth/status", params=extra).json()
            assert status["shared_link"] == {"site_id": SITE, "name": "Investors"}
        assert by_header.get("/api/stats/main", params={"site_id": SITE, "period": "day"}
                             ).json()["total_pageviews"] >= 1
        page = by_param.get("/", params={"site": SITE, "auth": secret})
        assert page.status_code == 200
        assert f"frame-ancestors {EMBED};" in page.headers["content-security-policy"]
        assert "x-frame-options" not in page.headers
        plain = by_param.get("/", params={"site": SITE})
        assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
        assert plain.headers["x-frame-options"] == "DENY"
        with client(live, keys["Admin"]) as admin:
            assert admin.get("/api/stats/main", params={"site_id": OTHER, "auth": secret}
                             ).status_code == 200  # a key wins over the link
            r = admin.delete(f"/api/v1/sites/shared-links/{link['id']}", params={"site_id": OTHER})
            assert r.status_code == 404
            r = admin.delete(f"/api/v1/sites/shared-links/{link['id']}", params={"site_id": SITE})
            assert r.status_code == 200 and r.json() == {"revoked": "true"}
        for c, extra in ((by_header, {}), (by_param, {"auth": secret})):
            r = c.get("/api/stats/main", params={"site_id": SITE, **extra})
            assert r.status_code == 401 and "revoked" in r.json()["error"]
        revoked_page = by_param.get("/", params={"site": SITE, "auth": secret})
        assert revoked_page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in revoked_page.headers["content-security-policy"]


def test_saved_funnels_over_http(live: Live, keys: dict[str, str]) -> None:
    """Saved, listed (read access), run by id with the same answer as its steps, 404 for an unknown or
    deleted id (even right after a cached answer), deleted; one saved from Python in another process
    is served at once."""
    site = "funnel.example"
    with client(live) as c:
        for path in ("/", "/pricing"):
            assert c.post("/api/event", content=orjson.dumps(
                {"d": site, "n": "pageview", "u": f"https://{site}{path}"})).status_code == 202
    body = {"site_id": site, "name": "Pricing", "steps": ["page:/", "page:/pricing"], "window": "1 hour"}
    with client(live, keys["ReadOnly"]) as ro:
        assert ro.post("/api/v1/sites/funnels", content=orjson.dumps(body)).status_code == 403
    with client(live, keys["Admin"]) as c:
        r = c.post("/api/v1/sites/funnels", content=orjson.dumps(body))
        assert r.status_code == 201, r.text
        saved = r.json()
        assert saved == {"id": saved["id"], "site_id": site, "name": "Pricing",
                         "steps": ["page:/", "page:/pricing"], "window": "1 hour"}
        for bad in ({**body, "name": "Other", "steps": ["nope:/"]}, {**body, "name": "", "window": "x"},
                    {**body, "name": "Other", "window": "soon"}, {**body, "steps": {"a": 1}},
                    body):  # the last: the name is taken
            r = c.post("/api/v1/sites/funnels", content=orjson.dumps(bad))
            assert r.status_code == 400 and isinstance(r.json()["error"], str), (bad, r.text)
    with client(live, keys["ReadOnly"]) as ro:
        listed = ro.get("/api/v1/sites/funnels", params={"site_id": site}).json()
        assert listed["funnels"] == [saved] and listed["meta"]["after"] is None
        q = {"site_id": site, "period": "day"}
        by_steps = ro.get("/api/stats/funnel", params={**q, "steps": "page:/,page:/pricing",
                                                        "window": "1 hour"})
        by_id = ro.get("/api/stats/funnel", params={**q, "funnel": saved["id"]})
        assert by_id.status_code == 200 and by_id.json() == by_steps.json(), by_id.text
        assert ro.get("/api/stats/funnel", params={**q, "funnel": saved["id"], "steps": "page:/"}
                      ).status_code == 400
        for unknown in ("999999", "abc"):
            r = ro.get("/api/stats/funnel", params={**q, "funnel": unknown})
            assert r.status_code == 404 and r.json() == {"error": "Funnel could not be found",
                                                          "code": "unknown_funnel"}
        other = ro.get("/api/stats/funnel", params={"site_id": OTHER, "funnel": saved["id"]})
        assert other.status_code == 404
    with mallard.Mallard(data_dir=live.data_dir) as m:  # another process, as an operator's script
        from_python = m.funnels.add(site, "From Python", ["page:/pricing"])
    with client(live, keys["Admin"]) as c:
        assert c.get("/api/stats/funnel", params={**q, "funnel": str(from_python.id)}).status_code == 200
        r = c.delete(f"/api/v1/sites/funnels/{saved['id']}", params={"site_id": site})
        assert r.status_code == 200 and r.json() == {"deleted": "true"}
        assert c.get("/api/stats/funnel", params={**q, "funnel": saved["id"]}).status_code == 404
        assert c.delete(f"/api/v1/sites/funnels/{saved['id']}").status_code == 404
        listed = c.get("/api/v1/sites/funnels", params={"site_id": site}).json()["funnels"]
        assert [f["name"] for f in listed] == ["From Python"]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = start("serve", tmp_path_factory.mktemp("shares-workers") / "data", workers=2,
                 env={"MALLARD_MAX_LOGIN_ATTEMPTS": "3"})
    try:
        yield live
    finally:
        stop(live)


def worker_4xx(live: Live) -> list[float]:
    """Each worker's count of 4xx answers, from its metrics snapshot."""
    counts = []
    for path in (live.data_dir / "state" / "metrics").glob("*.json"):
        if path.name == "archive.json":
            continue
        counters = orjson.loads(path.read_bytes()).get("counters", [])
        counts.append(sum(v for n, labels, v in counters
                          if n == "mallard_http_requests_total" and dict(labels).get("status") == "4xx"))
    return counts


@pytest.mark.slow
def test_revocation_reaches_every_worker_and_guessing_is_locked_out(two_workers: Live) -> None:
    """With 2 workers: a link read by both is refused by both right after one of them revokes it;
    revoked secrets, and any secret on an admin route, do not lock the client out; unknown secrets on
    read routes do (401, 401, 401, then 429)."""
    keys = make_keys(two_workers.data_dir)
    secret = create_link(two_workers, keys["Admin"])["secret"]
    params = {"site_id": SITE, "period": "day", "auth": secret}

    def fresh(query: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=two_workers.base, timeout=30) as c:  # a new connection each time
            return c.get("/api/stats/main", params=query)

    assert {fresh(params).status_code for _ in range(20)} == {200}
    link_id = create_link(two_workers, keys["Admin"], name="second")["id"]
    with client(two_workers, keys["Admin"]) as admin:
        first = admin.get("/api/v1/sites/shared-links", params={"site_id": SITE}).json()["shared_links"][0]
        assert first["id"] != link_id
        assert admin.delete(f"/api/v1/sites/shared-links/{first['id']}").status_code == 200
    answers = [fresh(params) for _ in range(60)]
    assert {r.status_code for r in answers} == {401}, [r.text for r in answers]
    # Both workers gave those 401s (no other 4xx happened before): each one saw the revocation.
    eventually(lambda: len([n for n in worker_4xx(two_workers) if n > 0]) == 2, timeout=30)
    with client(two_workers) as c:  # admin routes refuse any secret unread: no guess is counted
        assert {c.get("/api/keys", params={"auth": "sl_" + f"{i:048x}"}).status_code
                for i in range(5)} == {403}
    guesses = [fresh({**params, "auth": "sl_" + f"{i:048x}"}).status_code for i in range(4)]
    assert guesses == [401, 401, 401, 429]
    locked = fresh({**params, "auth": "sl_" + "f" * 48})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
