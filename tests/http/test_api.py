"""``Api.handle`` with plain Request objects: the rules that need no real server (proxies, open mode, HSTS,
error mapping), fast enough to cover the edges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import mallard
from mallard._http import Api, Request
from mallard._http.security import client_ip

LOCAL = "127.0.0.1"
HOST = "127.0.0.1:8000"  # what a browser on this machine sends to `mallard serve`


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    m = mallard.Mallard(data_dir=tmp_path / "data", trust_proxy_headers=True)
    try:
        yield Api.for_mallard(m)
    finally:
        m.close()


def test_one_api_per_mallard_shared_by_the_adapters(tmp_path: Path) -> None:
    """``Api.for_mallard`` gives every adapter over one instance the same Api (one query cache, one set
    of limits), and another instance its own."""
    from mallard.adapters.asgi import MallardASGI
    from mallard.adapters.wsgi import MallardWSGI

    m, other = mallard.Mallard(data_dir=tmp_path / "a"), mallard.Mallard(data_dir=tmp_path / "b")
    try:
        api = Api.for_mallard(m)
        assert Api.for_mallard(m) is api and MallardASGI(m).api is api and MallardWSGI(m).api is api
        assert Api.for_mallard(other) is not api and Api.for_mallard(other).mallard is other
    finally:
        m.close()
        other.close()


def test_mallard_extension_is_built_once_and_closed_with_the_instance(tmp_path: Path) -> None:
    """The core's hook that keeps the Api: one object per kind, built on first use, closed by close()."""
    class Thing:
        def __init__(self, owner: mallard.Mallard) -> None:
            self.owner, self.closed = owner, 0

        def close(self) -> None:
            self.closed += 1

    m = mallard.Mallard(data_dir=tmp_path / "data")
    built = m.extension(Thing, Thing)
    assert m.extension(Thing, Thing) is built and built.owner is m and built.closed == 0
    m.close()
    assert built.closed == 1


def get(api: Api, path: str, query: str = "", client: str | None = LOCAL,
        **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET with a loopback ``Host`` unless ``host=`` says otherwise (``host=""`` sends none)."""
    sent = {"host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}}
    r = api.handle(Request("GET", path, query, {k: v for k, v in sent.items() if v}, client=client))
    return r.status, {k.lower(): v for k, v in r.headers}, r.body


def test_forwarded_for_is_read_from_the_right(api: Api) -> None:
    """With one trusted proxy, the client is the rightmost X-Forwarded-For entry, not a spoofed left one."""
    req = Request("GET", "/", headers={"x-forwarded-for": "127.0.0.1, 203.0.113.7"}, client="10.0.0.2")
    assert client_ip(req, api.settings) == "203.0.113.7"
    settings = api.settings.replace(trusted_proxies=("10.0.0.0/8",))
    req = Request("GET", "/", headers={"x-forwarded-for": "1.2.3.4, 198.51.100.9, 10.0.0.3"},
                  client="10.0.0.2")
    assert client_ip(req, settings) == "198.51.100.9"
    untrusted = Request("GET", "/", headers={"x-forwarded-for": "1.2.3.4"}, client="192.0.2.1")
    assert client_ip(untrusted, settings) == "192.0.2.1"


def test_open_mode_reads_need_a_direct_local_client(api: Api) -> None:
    """Before a password exists stats are open to a loopback peer, but not to a request a local reverse
    proxy forwarded (it would make every visitor look local), nor to a remote peer."""
    assert get(api, "/api/stats/main", "site_id=a.example")[0] == 200
    assert get(api, "/api/stats/main", "site_id=a.example", x_forwarded_for="127.0.0.1")[0] == 401
    assert get(api, "/api/stats/main", "site_id=a.example", client="192.0.2.10")[0] == 401
    r = api.handle(Request("POST", "/api/auth/setup", headers={"x-real-ip": "127.0.0.1", "host": HOST},
                           body=orjson.dumps({"password": "correct horse battery staple"}), client=LOCAL))
    assert r.status == 403


@pytest.mark.parametrize("headers", [
    {"host": "evil.example"},                                   # DNS rebinding: a name bound to 127.0.0.1
    {"host": "evil.example:8000"},
    {"host": "127.0.0.1.evil.example"},
    {"host": "localhost.evil.example:8000"},
    {"host": ""},                                               # no Host at all
    {"host": HOST, "origin": "https://evil.example"},           # a web page the operator visits
    {"host": HOST, "origin": "http://localhost:8000"},          # another local origin
    {"host": HOST, "origin": "null"},                           # a sandboxed frame or a file:// page
    {"host": HOST, "sec-fetch-site": "cross-site"},
    {"host": HOST, "sec-fetch-site": "same-site"},
], ids=["rebound-host", "rebound-host-port", "host-suffix", "localhost-suffix", "no-host", "foreign-origin",
        "other-local-origin", "null-origin", "cross-site-fetch", "same-site-fetch"])
def test_open_mode_refuses_other_origins_and_hosts(api: Api, headers: dict[str, str]) -> None:
    """Before a password exists, a loopback peer is not enough: stats and the first-password setup
    refuse (403, JSON) a non-loopback Host, a foreign Origin or a cross-site fetch, and /api/auth/status
    does not call such a caller authenticated."""
    status, h, body = get(api, "/api/stats/main", "site_id=a.example", **headers)
    assert status == 403 and "same-origin" in orjson.loads(body)["error"]
    assert "access-control-allow-origin" not in h
    sent = {k: v for k, v in headers.items() if v}
    r = api.handle(Request("POST", "/api/auth/setup", headers=sent, client=LOCAL,
                           body=orjson.dumps({"password": "correct horse battery staple"})))
    assert r.status == 403 and "error" in orjson.loads(r.body)
    assert not api.auth.password_configured()
    _, _, body = get(api, "/api/auth/status", **headers)
    assert orjson.loads(body)["authenticated"] is False


@pytest.mark.parametrize("headers", [
    {"host": "127.0.0.1:8000"}, {"host": "127.1.2.3"}, {"host": "localhost:8000"}, {"host": "LOCALHOST"},
    {"host": "[::1]:8000"}, {"host": HOST, "origin": f"http://{HOST}"},
    {"host": HOST, "origin": f"http://{HOST}/"}, {"host": HOST, "sec-fetch-site": "same-origin"},
    {"host": HOST, "sec-fetch-site": "none"},
], ids=["ipv4-port", "loopback-net", "localhost-port", "localhost-case", "ipv6", "own-origin",
        "own-origin-slash", "same-origin-fetch", "typed-url"])
def test_open_mode_serves_same_origin_loopback_requests(api: Api, headers: dict[str, str]) -> None:
    """The dashboard served from http://127.0.0.1:<port>/ (or localhost, [::1]) keeps working in open
    mode, with or without an Origin header of its own."""
    assert get(api, "/api/stats/main", "site_id=a.example", **headers)[0] == 200


def test_open_mode_setup_from_the_dashboard_page(api: Api) -> None:
    """POST /api/auth/setup with the page's own Origin sets the password (as the dashboard does)."""
    r = api.handle(Request("POST", "/api/auth/setup", headers={"host": HOST, "origin": f"http://{HOST}"},
                           body=orjson.dumps({"password": "correct horse battery staple"}), client=LOCAL))
    assert r.status == 200 and api.auth.password_configured()


def test_hsts_only_over_https(api: Api) -> None:
    """Mounted in a host app, mallard sends HSTS only on https requests, without includeSubDomains."""
    assert "strict-transport-security" not in get(api, "/health")[1]
    r = api.handle(Request("GET", "/health", scheme="https", client=LOCAL))
    assert dict((k.lower(), v) for k, v in r.headers)["strict-transport-security"] == "max-age=31536000"


def test_tracker_has_one_allow_origin_header(api: Api) -> None:
    """The script's Access-Control-Allow-Origin is not repeated when the request has an Origin."""
    r = api.handle(Request("GET", "/mallard.js", headers={"origin": "https://shop.example"}, client=LOCAL))
    assert [v for k, v in r.headers if k.lower() == "access-control-allow-origin"] == ["*"]


def test_auth_rule_errors_are_400_not_500(api: Api) -> None:
    """A key name the auth store refuses (blank) answers 400 with its reason."""
    api.auth.set_password("correct horse battery staple")
    admin_key, _ = api.auth.create_key("ops", "Admin")
    r = api.handle(Request("POST", "/api/keys", headers={"x-api-key": admin_key},
                           body=orjson.dumps({"name": "   ", "scope": "ReadOnly"}), client=LOCAL))
    assert r.status == 400 and "error" in orjson.loads(r.body)


def test_head_keeps_the_length_and_drops_the_body(api: Api) -> None:
    """HEAD answers like GET without a body, with the GET body's Content-Length."""
    _, _, body = get(api, "/robots.txt")
    r = api.handle(Request("HEAD", "/robots.txt", client=LOCAL))
    assert (r.status, r.body) == (200, b"")
    assert dict((k.lower(), v) for k, v in r.headers)["content-length"] == str(len(body))


def test_query_cache_hits_until_new_data_is_flushed(api: Api) -> None:
    """A repeated stats request is answered from the cache; a flush of new events (any worker's new lake
    file) changes the lake fingerprint, so the next request sees them."""
    m = api.mallard
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    m.track("pageview", site="c.example", url="https://c.example/", ip="192.0.2.1", user_agent=ua)
    m.flush()
    first = get(api, "/api/stats/main", "site_id=c.example&period=day")
    hits = api.cache.hits
    assert get(api, "/api/stats/main", "site_id=c.example&period=day")[2] == first[2]
    assert api.cache.hits == hits + 1
    m.track("pageview", site="c.example", url="https://c.example/b", ip="192.0.2.2", user_agent=ua)
    m.flush()
    after = orjson.loads(get(api, "/api/stats/main", "site_id=c.example&period=day")[2])
    assert after["total_pageviews"] == 2 and api.cache.hits == hits + 1


def test_heavy_query_limit_answers_429(tmp_path: Path) -> None:
    """With every heavy-query slot taken, a stats request answers 429 with Retry-After."""
    m = mallard.Mallard(data_dir=tmp_path / "data", max_concurrent_queries=1, cache_ttl_secs=0)
    try:
        api = Api.for_mallard(m)
        assert api.heavy.try_enter()  # another request holds the only slot
        status, headers, _ = get(api, "/api/stats/main", "site_id=a.example")
        assert status == 429 and headers["retry-after"] == "1"
        api.heavy.leave()
        assert get(api, "/api/stats/main", "site_id=a.example")[0] == 200
    finally:
        m.close()


def test_a_query_over_its_time_limit_is_stopped(tmp_path: Path) -> None:
    """A query running past the time limit is interrupted: QueryTimeoutError, and the connection works on."""
    m = mallard.Mallard(data_dir=tmp_path / "data")
    try:
        store = m.store
        with pytest.raises(mallard.QueryTimeoutError, match=r"longer than 0\.2 s"), store.time_limit(0.2):
            m.queries.sql("SELECT count(*) AS n FROM range(100000000000) a")
        assert m.queries.sql("SELECT 42 AS n").to_pylist() == [{"n": 42}]
    finally:
        m.close()


def test_stats_cors_follows_dashboard_origin(tmp_path: Path) -> None:
    """With ``dashboard_origin`` set, stats answer that origin only, with credentials; the methods and
    headers it may use are on the preflight. Without it, no origin gets a CORS permission, not even
    ``*`` (it let any web page read stats in open mode)."""
    m = mallard.Mallard(data_dir=tmp_path / "data", dashboard_origin="https://stats.example")
    try:
        api = Api.for_mallard(m)
        _, h, _ = get(api, "/api/stats/main", "site_id=a.example", origin="https://stats.example")
        assert h["access-control-allow-origin"] == "https://stats.example"
        assert h["access-control-allow-credentials"] == "true" and h["vary"] == "Origin"
        assert "access-control-allow-methods" not in h
        _, h, _ = get(api, "/api/stats/main", "site_id=a.example", origin="https://evil.example")
        assert "access-control-allow-origin" not in h and h["vary"] == "Origin"
        r = api.handle(Request("OPTIONS", "/api/stats/main", headers={
            "origin": "https://stats.example", "access-control-request-method": "GET"}, client=LOCAL))
        h = {k.lower(): v for k, v in r.headers}
        assert r.status == 204 and h["access-control-allow-origin"] == "https://stats.example"
        assert "GET" in h["access-control-allow-methods"]
        assert "authorization" in h["access-control-allow-headers"]
    finally:
        m.close()
    open_api = Api.for_mallard(mallard.Mallard(data_dir=tmp_path / "open"))
    try:
        status, h, _ = get(open_api, "/api/stats/main", "site_id=a.example", origin="https://any.example")
        assert status == 403 and "access-control-allow-origin" not in h
        for path in ("/api/stats/main", "/api/auth/setup", "/health", "/api/openapi.json"):
            r = open_api.handle(Request("OPTIONS", path, headers={
                "origin": "https://any.example", "access-control-request-method": "POST"}, client=LOCAL))
            assert r.status == 204 and r.header("Access-Control-Allow-Origin") is None, path
    finally:
        open_api.mallard.close()


def test_ingestion_answer_headers_follow_each_request(api: Api) -> None:
    """The 202's headers are reused between requests, but CORS, HSTS and the request id still follow the
    request they answer."""
    body = orjson.dumps({"d": "a.example", "n": "pageview", "u": "https://a.example/"})

    def post(**headers: str) -> dict[str, str]:
        scheme = headers.pop("scheme", "http")
        r = api.handle(Request("POST", "/api/event", headers={
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", **headers}, body=body,
            client=LOCAL, scheme=scheme))
        assert r.status == 202 and r.body == b""
        return {k.lower(): v for k, v in r.headers}

    plain, again = post(), post()
    assert "access-control-allow-origin" not in plain and plain["content-length"] == "0"
    assert plain["x-request-id"] != again["x-request-id"]
    assert post(origin="https://a.example")["access-control-allow-origin"] == "*"
    assert post(**{"x-request-id": "trace-42"})["x-request-id"] == "trace-42"
    assert "strict-transport-security" in post(scheme="https")
    assert "strict-transport-security" not in post()
    assert post()["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("which", ["site", "ip"])
def test_rate_limits_answer_429_with_retry_after_and_are_counted(api: Api, which: str) -> None:
    """Per-site and per-IP token buckets (frozen clock: two tokens, no refill): the third event of a
    burst is refused with 429 and Retry-After, counted in /metrics, and nothing of it is stored."""
    from mallard._http.limits import RateLimiter

    frozen = RateLimiter(2, clock=lambda: 100.0)
    if which == "site":
        api.site_limiter = frozen
    else:
        api.ip_limiter = frozen
    body = orjson.dumps({"d": "rl.example", "n": "pageview", "u": "https://rl.example/"})
    headers = {"host": HOST, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}
    answers = [api.handle(Request("POST", "/api/event", headers=headers, body=body, client="192.0.2.7"))
               for _ in range(3)]
    assert [r.status for r in answers] == [202, 202, 429]
    refused = answers[2]
    assert dict(refused.headers)["Retry-After"] == "1"
    assert orjson.loads(refused.body) == {"error": "Rate limit exceeded. Slow down.",
                                          "code": "rate_limited"}
    assert "mallard_rate_limit_rejections_total 1.0" in api.metrics.render()[0].decode()
    assert api.mallard.stats().buffer.pending == 2
@pytest.mark.parametrize("site", ["a" * 248, "a:" * 83], ids=["248 characters", "83 colons (%3A)"])
def test_site_id_too_long_for_a_directory_is_refused(api: Api, site: str) -> None:
    """Regression (schemathesis): a site id whose lake directory name ``site_id=<id>`` would pass 255 bytes
    was accepted with 202 and then failed every flush, and stats for it answered 500 (ENAMETOOLONG).
    Now both answer 400; the longest site id that fits is stored and read back."""
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    event = {"n": "pageview", "u": "https://example.com/"}
    r = api.handle(Request("POST", "/api/event", body=orjson.dumps({"d": site, **event}),
                           headers={"user-agent": ua}, client=LOCAL))
    assert r.status == 400 and "site_id" in orjson.loads(r.body)["error"]
    assert get(api, "/api/stats/main", f"site_id={site}")[0] == 400
    longest = "b" * 244 + ":"  # len("site_id=") + 244 + 3 (":" is written %3A) = 255 bytes
    r = api.handle(Request("POST", "/api/event", body=orjson.dumps({"d": longest, **event}),
                           headers={"user-agent": ua}, client=LOCAL))
    assert r.status == 202
    api.mallard.flush()
    status, _, body = get(api, "/api/stats/main", f"site_id={longest.replace(':', '%3A')}&period=day")
    assert status == 200 and orjson.loads(body)["total_pageviews"] == 1


def test_export_checks_limit_for_every_kind(api: Api) -> None:
    """A malformed limit is a 400 for the daily export too (it used to be ignored unless kind=raw), as
    the OpenAPI document states."""
    assert get(api, "/api/stats/export", "site_id=a.example&limit=abc")[0] == 400
    assert get(api, "/api/stats/export", "site_id=a.example&limit=0&kind=daily")[0] == 400
    assert get(api, "/api/stats/export", "site_id=a.example&limit=5")[0] == 200


@pytest.mark.parametrize("path", ["/" + "a" * 300, "/vendor/" + "b" * 300, "/" + "c" * 255 + ".js"],
                         ids=["dashboard file", "vendor file", "255-byte name"])
def test_asset_name_too_long_for_the_filesystem_is_404(api: Api, path: str) -> None:
    """Regression (hypothesis over the route table): a dashboard file name longer than the filesystem
    allows answered 500 (ENAMETOOLONG from the lookup); it is simply not found."""
    status, _, body = get(api, path)
    assert status == 404 and orjson.loads(body) == {"error": "Not found.", "code": "not_found"}


def test_detailed_health_lists_quarantined_files_only_to_readers(api: Api) -> None:
    """The count is public (as the rest of /health/detailed); the file paths name sites, so only a caller
    who may read stats sees them."""
    status, _, body = get(api, "/health/detailed", client="192.0.2.1")
    assert status == 200
    remote = orjson.loads(body)
    assert remote["quarantined_file_count"] == 0 and "quarantined_files" not in remote
    local = orjson.loads(get(api, "/health/detailed")[2])
    assert local["quarantined_files"] == []


def test_detailed_health_says_the_behavioural_analyses_are_available(api: Api) -> None:
    """Regression: the flag was `hasattr(queries, "http_funnel")`, false once the HTTP parsing left
    Queries; funnels, sequences, retention and flow need no extension, so it is always true."""
    health = orjson.loads(get(api, "/health/detailed")[2])
    assert health["behavioral_available"] is True
    status, _, body = get(api, "/api/stats/funnel", "site_id=example.com&period=7d&steps=page:/")
    assert status == 200 and orjson.loads(body) == [
        {"step": 1, "label": "page:/", "visitors": 0, "conversion_rate": 0.0, "step_conversion_rate": 0.0,
         "median_seconds": None}]
