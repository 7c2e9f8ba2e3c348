"""Plausible's Sites API for goals and segments, and goal queries, through real HTTP on every adapter
(servers of their own: these tests set the admin password). Keys are made with the `mallard` command
on the server's data directory, as an operator would, and goals written by the command are seen by
the running server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from .conftest import KINDS, Live, eventually, serving

pytestmark = pytest.mark.slow  # real servers of every kind

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
PASSWORD = "a long enough test password"
SITE = "goals.example"


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "mallard", *args, "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=120, input=stdin)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "sites")


@pytest.fixture(scope="module")
def keys(live: Live) -> dict[str, str]:
    cli(live.data_dir, "password", "--password-stdin", stdin=PASSWORD + "\n")
    return {scope: json.loads(cli(live.data_dir, "keys", "create", scope.lower(), "--scope", scope).stdout
                              .split("\n}")[0] + "}")["key"] for scope in ("Admin", "ReadOnly")}


def client(live: Live, key: str | None) -> httpx.Client:
    headers = {"User-Agent": UA, "Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return live.client(headers=headers)


def put(c: httpx.Client, path: str, body: object) -> httpx.Response:
    return c.put(path, content=orjson.dumps(body))


def test_goals_are_found_or_created_listed_and_deleted(live: Live, keys: dict[str, str]) -> None:
    body = {"site_id": SITE, "goal_type": "event", "event_name": "Signup"}
    with client(live, None) as anon:
        assert put(anon, "/api/v1/sites/goals", body).status_code == 401
    with client(live, keys["ReadOnly"]) as ro:
        r = put(ro, "/api/v1/sites/goals", body)
        assert r.status_code == 403 and "error" in r.json()
    with client(live, keys["Admin"]) as c:
        r = put(c, "/api/v1/sites/goals", body)
        assert r.status_code == 200, r.text
        signup = r.json()
        assert signup == {"id": signup["id"], "domain": SITE, "goal_type": "event",
                          "display_name": "Signup", "event_name": "Signup", "page_path": None,
                          "custom_props": {}, "currency": None}
        assert put(c, "/api/v1/sites/goals", body).json() == signup  # idempotent
        page = put(c, "/api/v1/sites/goals", {"site_id": SITE, "goal_type": "page",
                                              "page_path": "/pricing*"}).json()
        assert page["display_name"] == "Visit /pricing*"
        for bad in [{"site_id": SITE}, {"site_id": SITE, "goal_type": "page", "page_path": "pricing"},
                    {"site_id": SITE, "goal_type": "event"},
                    {"site_id": SITE, "goal_type": "event", "event_name": "X", "custom_props": {"a": "b"}},
                    {"site_id": SITE, "goal_type": "event", "event_name": "X", "currency": "euro"},
                    {"site_id": "bad site", "goal_type": "event", "event_name": "X"}, ["not", "an object"]]:
            r = put(c, "/api/v1/sites/goals", bad)
            assert r.status_code == 400 and isinstance(r.json()["error"], str), (bad, r.text)
        assert c.put("/api/v1/sites/goals", content=b"{not json").status_code == 400
        # pagination: one per page, forwards then back
        first = c.get("/api/v1/sites/goals", params={"site_id": SITE, "limit": 1}).json()
        assert [g["id"] for g in first["goals"]] == [signup["id"]]
        assert first["meta"] == {"after": signup["id"], "before": None, "limit": 1}
        second = c.get("/api/v1/sites/goals", params={"site_id": SITE, "limit": 1,
                                                      "after": first["meta"]["after"]}).json()
        assert [g["id"] for g in second["goals"]] == [page["id"]]
        assert second["meta"] == {"after": None, "before": page["id"], "limit": 1}
        back = c.get("/api/v1/sites/goals", params={"site_id": SITE, "limit": 1,
                                                    "before": second["meta"]["before"]}).json()
        assert [g["id"] for g in back["goals"]] == [signup["id"]]
        assert c.get("/api/v1/sites/goals", params={"site_id": SITE, "limit": 0}).status_code == 400
        assert c.get("/api/v1/sites/goals").status_code == 400
        # deletion: only the site's own goal
        path = f"/api/v1/sites/goals/{page['id']}"
        other = orjson.dumps({"site_id": "other.example"})
        assert c.request("DELETE", path, content=other).status_code == 404
        r = c.request("DELETE", path, content=orjson.dumps({"site_id": SITE}))
        assert r.status_code == 200 and r.json() == {"deleted": "true"}
        assert c.request("DELETE", path, content=orjson.dumps({"site_id": SITE})).status_code == 404
        assert c.delete("/api/v1/sites/goals/abc").status_code in (400, 404)
        # a goal written by another process (the command) is seen by the server at once
        cli(live.data_dir, "goals", "add", SITE, "--page", "/docs/*")
        listed = c.get("/api/v1/sites/goals", params={"site_id": SITE}).json()["goals"]
        assert [g["display_name"] for g in listed] == ["Signup", "Visit /docs/*"]


def test_goal_and_segment_queries_over_http(live: Live, keys: dict[str, str]) -> None:
    site = "convert.example"
    with client(live, keys["Admin"]) as c:
        for i, (path, name) in enumerate([("/", "pageview"), ("/pricing", "pageview"), ("/pricing", "Signup"),
                                          ("/docs/a", "pageview")]):
            r = c.post("/api/event", content=orjson.dumps({"d": site, "n": name, "u": f"https://{site}{path}"}),
                       headers={"User-Agent": UA.replace("rv:120.0", f"rv:12{i}.0")})  # 4 visitors
            assert r.status_code == 202, r.text
        eventually(lambda: _stored(live.data_dir, site) == 4)
        for body in ({"site_id": site, "goal_type": "event", "event_name": "Signup"},
                     {"site_id": site, "goal_type": "page", "page_path": "/docs/*"}):
            assert put(c, "/api/v1/sites/goals", body).status_code == 200
        query = {"site_id": site, "metrics": ["visitors", "events", "conversion_rate"],
                 "dimensions": ["event:goal"], "date_range": "all"}
        r = c.post("/api/v2/query", content=orjson.dumps(query))
        assert r.status_code == 200, r.text
        assert {tuple(row["dimensions"]): row["metrics"] for row in r.json()["results"]} == {
            ("Signup",): [1, 1, 25.0], ("Visit /docs/*",): [1, 1, 25.0]}
        bad = c.post("/api/v2/query", content=orjson.dumps(
            {**query, "dimensions": [], "filters": [["is", "event:goal", ["Nope"]]]}))
        assert bad.status_code == 400 and "Nope" in bad.json()["error"]
        seg = put(c, "/api/v1/sites/segments", {"site_id": site, "name": "Pricing", "segment_data": {
            "filters": [["is", "event:page", ["/pricing"]]]}})
        assert seg.status_code == 200, seg.text
        r = c.post("/api/v2/query", content=orjson.dumps({
            "site_id": site, "metrics": ["visitors", "events"], "date_range": "all",
            "filters": [["is", "segment", [seg.json()["id"]]]]}))
        assert r.status_code == 200 and r.json()["results"][0]["metrics"] == [2, 2], r.text
        missing = c.post("/api/v2/query", content=orjson.dumps({
            "site_id": site, "metrics": ["visitors"], "date_range": "all",
            "filters": [["is", "segment", [999]]]}))
        assert missing.status_code == 400 and "999" in missing.json()["error"]
        assert put(c, "/api/v1/sites/segments", {"site_id": site, "name": "Bad", "segment_data": {
            "filters": [["is", "visit:nope", ["x"]]]}}).status_code == 400


def _stored(data_dir: Path, site: str) -> int:
    files = [str(p) for p in (data_dir / "events" / f"site_id={site}").rglob("*.parquet")]
    if not files:
        return 0
    with duckdb.connect() as con:
        row = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()
    return 0 if row is None else int(row[0])


def test_a_sites_settings_are_read_and_its_currency_set(live: Live, keys: dict[str, str]) -> None:
    """``GET /api/v1/sites/{site_id}``: Plausible's domain and time zone, the reporting currency and the
    first stored day, for a site with events; ``PUT`` sets or clears the currency only (the command
    sees it), with a 400 for anything else; Admin only; unknown sites 404; the literal paths beside it
    are not sites."""
    site = "settings-route.example"
    path = f"/api/v1/sites/{site}"
    with client(live, keys["Admin"]) as c:
        r = c.get(path)
        assert r.status_code == 404
        assert r.json() == {"error": "Site could not be found", "code": "unknown_site"}
        assert put(c, path, {"currency": "EUR"}).status_code == 404
        r = c.post("/api/event", content=orjson.dumps({"d": site, "n": "pageview", "u": f"https://{site}/"}))
        assert r.status_code == 202, r.text
        eventually(lambda: _stored(live.data_dir, site) == 1)
        day = next((live.data_dir / "events" / f"site_id={site}").iterdir()).name.removeprefix("date=")
        assert c.get(path).json() == {"domain": site, "timezone": "UTC", "currency": None,
                                      "first_event_date": day}
        r = put(c, path, {"currency": "EUR"})
        assert r.status_code == 200, r.text
        assert r.json() == {"domain": site, "timezone": "UTC", "currency": "EUR", "first_event_date": day}
        assert c.get(path).json()["currency"] == "EUR"
        shown = json.loads(cli(live.data_dir, "goals", "currency", site).stdout)
        assert shown == {"site_id": site, "currency": "EUR"}
        cli(live.data_dir, "goals", "currency", site, "USD")  # another process: seen at once
        assert c.get(path).json()["currency"] == "USD"
        assert put(c, path, {"currency": None}).json()["currency"] is None
        assert c.get(path).json()["currency"] is None
        for bad, needle in [({"currency": "eur"}, "ISO 4217"), ({"currency": "EURO"}, "ISO 4217"),
                            ({"currency": 978}, "ISO 4217"), ({"timezone": "Europe/Berlin"}, "timezone"),
                            ({"currency": "EUR", "domain": "x.example"}, "domain"), ({}, "currency"),
                            (["EUR"], "currency")]:
            r = put(c, path, bad)
            assert r.status_code == 400 and needle in r.json()["error"], (bad, r.text)
        assert c.put(path, content=b"{not json").status_code == 400
        assert c.get(path).json()["currency"] is None  # nothing refused was kept
        assert c.get("/api/v1/sites/not%20a%20site").status_code == 400
        assert c.get("/api/v1/sites/never-seen.example").status_code == 404
        # /api/v1/sites/goals and the others stay themselves: no site "goals", "funnels", ...
        assert put(c, "/api/v1/sites/funnels", {"currency": "EUR"}).status_code == 405
        assert c.get("/api/v1/sites/shared-links").status_code == 400  # its own site_id is missing
        assert c.delete(path).status_code == 405
    with client(live, keys["ReadOnly"]) as ro:
        assert ro.get(path).status_code == 403 and put(ro, path, {"currency": "EUR"}).status_code == 403
    with client(live, None) as anon:
        assert anon.get(path).status_code == 401 and put(anon, path, {"currency": "EUR"}).status_code == 401
