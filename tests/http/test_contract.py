"""One HTTP contract, run through every adapter: ``mallard serve``, Starlette + uvicorn, Flask + gunicorn and
bare WSGI + gunicorn, as real server processes on 127.0.0.1 (see conftest.py).

No test here sets a password (test_admin.py does, on servers of its own). Each test uses its own site id,
so tests do not see each other's events.
"""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.static.test_tracker_script import BUDGET

from .conftest import Live, eventually, start, stop

pytestmark = pytest.mark.slow  # real servers of every kind

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
JSON = {"Content-Type": "application/json", "User-Agent": UA}
_sites = itertools.count()


def site() -> str:
    return f"s{next(_sites)}.example"


def post(c: httpx.Client, body: object, **headers: str) -> httpx.Response:
    return c.post("/api/event", content=orjson.dumps(body), headers={**JSON, **headers})


def event(d: str, path: str = "/", name: str = "pageview", **extra: object) -> dict[str, object]:
    return {"d": d, "n": name, "u": f"https://{d}{path}", **extra}


def main(c: httpx.Client, d: str, **params: str) -> dict[str, object]:
    r = c.get("/api/stats/main", params={"site_id": d, "period": "day", **params})
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


# -- ops ---------------------------------------------------------------------------------------------
def test_health_probes_and_texts(live: Live) -> None:
    """Health, readiness, detailed health, robots.txt and security.txt answer as the reference."""
    with live.client() as c:
        assert c.get("/health").text == "ok"
        assert c.get("/health/ready").text == "ready"
        detail = c.get("/health/detailed").json()
        assert detail["status"] == "ok" and detail["auth_configured"] is False
        assert "Disallow: /api/" in c.get("/robots.txt").text
        assert c.get("/.well-known/security.txt").text.startswith("Contact:")


def test_security_headers_and_request_ids(live: Live) -> None:
    """Every response has the security headers; a sane X-Request-ID is echoed, a bad one replaced."""
    with live.client() as c:
        r = c.get("/health", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in r.headers  # only over https (see test_api.py)
        assert r.headers["x-request-id"] == "abc-123"
        r = c.get("/health", headers={"X-Request-ID": "x" * 200})
        assert r.headers["x-request-id"] != "x" * 200 and len(r.headers["x-request-id"]) == 36
        r = c.get("/api/stats/main", params={"site_id": "a.example"})
        assert r.headers["cache-control"].startswith("no-store")


def test_openapi_document_lists_the_routes(live: Live) -> None:
    """/api/openapi.json is an OpenAPI 3.1 document naming the ingestion and stats routes."""
    with live.client() as c:
        doc = c.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/event", "/api/stats/main", "/api/stats/breakdown/{dimension}",
            "/api/keys"} <= set(doc["paths"])


def test_unknown_route_and_wrong_method(live: Live) -> None:
    """Unknown paths are 404 and known paths with another method 405, both with a JSON error."""
    with live.client() as c:
        r = c.get("/api/nope")
        assert r.status_code == 404 and "error" in r.json()
        r = c.put("/api/event", content=b"{}")
        assert r.status_code == 405 and "error" in r.json()


# -- ingestion ---------------------------------------------------------------------------------------
def test_event_is_accepted_and_counted_at_once(live: Live) -> None:
    """POST /api/event answers 202 with an empty body and the event shows in the stats immediately."""
    d = site()
    with live.client() as c:
        r = post(c, event(d, "/pricing", r="https://www.google.com/", w=1280))
        assert r.status_code == 202 and r.content == b""
        stats = main(c, d)
        assert stats["unique_visitors"] == 1 and stats["total_pageviews"] == 1
        rows = c.get("/api/stats/breakdown/sources", params={"site_id": d, "period": "day"}).json()
        assert rows[0]["value"] == "Google" and rows[0]["pageviews"] == 1  # a JSON number


def test_pixel_records_a_pageview(live: Live) -> None:
    """GET /api/event answers the 43-byte GIF and records the pageview."""
    d = site()
    with live.client() as c:
        r = c.get("/api/event", params={"d": d, "u": f"https://{d}/about"}, headers={"User-Agent": UA})
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        assert len(r.content) == 43 and r.content.startswith(b"GIF89a")
        assert "no-store" in r.headers["cache-control"]
        pages = c.get("/api/stats/breakdown/pages", params={"site_id": d, "period": "day"}).json()
        assert pages == [{"value": "/about", "visitors": 1, "pageviews": 1, "events": 1}]


def test_batch_is_all_or_nothing(live: Live) -> None:
    """An array of events is stored whole (202) or, with one bad event, not at all (400)."""
    d = site()
    with live.client() as c:
        r = post(c, [event(d, f"/{i}") for i in range(3)])
        assert r.status_code == 202 and r.headers["x-mallard-accepted"] == "3"
        r = post(c, [event(d, "/x"), {"d": d, "n": "pageview", "u": "x" * 3000}])
        assert r.status_code == 400 and "event 1" in r.json()["error"]
        assert main(c, d)["total_pageviews"] == 3


def test_batch_errors_name_the_index_the_client_sent(live: Live) -> None:
    """A bad object is named by its position in the array sent: a shape error in item 1 as well as an
    invalid event after an object whose domain listed two sites."""
    d = site()
    two = {"domain": f"{d},{site()}", "name": "pageview", "url": f"https://{d}/"}
    with live.client() as c:
        r = post(c, [event(d), {"d": d, "n": "pageview"}])
        assert r.status_code == 422 and r.json()["error"].startswith("event 1: Missing required field")
        r = post(c, [two, {"d": d, "n": "pageview", "u": "x" * 3000}])
        assert r.status_code == 400 and r.json()["error"].startswith("event 1: url"), r.text
        assert "no event of the batch was stored" in r.json()["error"]
        assert main(c, d)["total_events"] == 0


def test_domain_lists_at_most_ten_sites_and_refusals_are_counted(live: Live) -> None:
    """A domain naming 11 sites is refused with 400 and counted in /metrics; 100 objects × 10 sites (1000
    events) are accepted, 101 × 10 refused: a batch expands to at most 1000 events."""
    sites = [site() for _ in range(11)]
    with live.client() as c:
        r = post(c, {"domain": ",".join(sites), "name": "pageview", "url": f"https://{sites[0]}/"})
        assert r.status_code == 400 and "at most 10" in r.json()["error"]
        ten = {"domain": ",".join(sites[:10]), "name": "pageview", "url": f"https://{sites[0]}/"}
        r = post(c, [ten] * 101)
        assert r.status_code == 400 and "At most 1000 events" in r.json()["error"]
        r = post(c, [ten] * 100)
        assert r.status_code == 202 and r.headers["x-mallard-accepted"] == "1000"
        assert main(c, sites[9])["total_pageviews"] == 100 and main(c, sites[10])["total_events"] == 0

        def refused(reason: str) -> float:
            for line in c.get("/metrics").text.splitlines():
                if line.startswith(f'mallard_ingest_refused_total{{reason="{reason}"}}'):
                    return float(line.split()[-1])
            return 0.0

        assert refused("too_many_sites") >= 1 and refused("batch_too_large") >= 1


def test_bots_are_accepted_and_dropped(live: Live) -> None:
    """A crawler's event answers 202 but is not stored."""
    d = site()
    with live.client() as c:
        r = post(c, event(d), **{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})
        assert r.status_code == 202
        assert main(c, d)["total_events"] == 0


def test_dropped_events_say_why(live: Live) -> None:
    """An event accepted but not stored (curl's User-Agent is a bot's) names its reason in
    X-Mallard-Dropped; ?debug=1 explains each event; a stored event carries no such header."""
    d = site()
    with live.client() as c:
        r = post(c, event(d), **{"User-Agent": "curl/8.5.0"})
        assert r.status_code == 202 and r.headers["x-mallard-dropped"] == "bot" and not r.content
        r = c.post("/api/event", params={"debug": "1"}, content=orjson.dumps([event(d), event(d)]),
                   headers={**JSON, "User-Agent": "curl/8.5.0"})
        assert r.status_code == 202 and r.headers["x-mallard-accepted"] == "0"
        body = r.json()
        assert body["accepted"] == 0 and [x["event"] for x in body["dropped"]] == [0, 1]
        assert {x["reason"] for x in body["dropped"]} == {"bot"}
        assert "filter_bots" in body["dropped"][0]["why"]
        r = post(c, event(d))
        assert r.status_code == 202 and "x-mallard-dropped" not in r.headers
        r = c.post("/api/event", params={"debug": "1"}, content=orjson.dumps(event(d)), headers=JSON)
        assert r.status_code == 202 and r.json() == {"accepted": 1, "dropped": []}
        r = c.post("/api/event", params={"debug": "yes"}, content=orjson.dumps(event(d)), headers=JSON)
        assert r.status_code == 400 and "debug" in r.json()["error"]
        assert main(c, d)["total_events"] == 2


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{}", 422, "Missing required field"),
    (orjson.dumps({"d": "", "n": "pageview", "u": "/"}), 400, "site_id must not be empty"),
    (orjson.dumps({"d": "bad domain.com", "n": "pageview", "u": "/"}), 400, "site_id may only"),
    (orjson.dumps({"d": "../etc/passwd", "n": "pageview", "u": "/"}), 400, "site_id"),
    (orjson.dumps({"d": "a.example", "n": "pageview", "u": "x" * 3000}), 400, "url"),
    (b"{not json", 400, "not valid JSON"),
    (orjson.dumps({"d": "a.example", "n": "pageview", "u": "/", "w": "wide"}), 422, "'w'"),
    (orjson.dumps([]), 422, "empty"),
], ids=["empty-object", "empty-site", "space-in-site", "traversal", "long-url", "malformed", "bad-width",
        "empty-batch"])
def test_bad_events_get_clear_4xx(live: Live, body: bytes, status: int, needle: str) -> None:
    """Every malformed event answers a 4xx JSON error saying what is wrong, never a 500."""
    with live.client() as c:
        r = c.post("/api/event", content=body, headers=JSON)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_oversized_body_is_413(live: Live) -> None:
    """A body over 64 KiB is refused with 413 and a JSON error."""
    with live.client() as c:
        r = c.post("/api/event", content=b"x" * 70_000, headers=JSON)
    assert r.status_code == 413 and "error" in r.json()


def test_ingestion_cors_preflight(live: Live) -> None:
    """OPTIONS /api/event allows any origin; POST carries Access-Control-Allow-Origin: *."""
    with live.client() as c:
        r = c.options("/api/event", headers={"Origin": "https://shop.example",
                                             "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"]
        r = post(c, event(site()), Origin="https://shop.example")
        assert r.headers["access-control-allow-origin"] == "*"
        # what only a preflight needs is not repeated on every beacon's answer
        assert "access-control-allow-methods" not in r.headers


def test_tracking_script_at_both_urls(live: Live) -> None:
    """/mallard.js and /js/script.js serve the tracker with ACAO * and an ETag that revalidates."""
    with live.client() as c:
        for path in ("/mallard.js", "/js/script.js"):
            r = c.get(path)
            assert r.status_code == 200 and "javascript" in r.headers["content-type"]
            assert r.headers["access-control-allow-origin"] == "*"
            assert "data-domain" in r.text
            assert len(gzip.compress(r.content, 9)) <= BUDGET
            again = c.get(path, headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304


# -- PII redaction ---------------------------------------------------------------------------------
PII_URL = "/u/john.smith@example.com?token=tok_SECRET1&utm_term=mary@example.org"
PII_REFERRER = "https://mail.example/read?access_token=AT_SECRET2&x=1"
PII = (b"john.smith", b"mary@example", b"jane.doe", b"AT_SECRET2", b"tok_SECRET1", b"4111111111111111")


def redactions(c: httpx.Client) -> dict[str, float]:
    body = c.get("/metrics").text
    return {s.labels["kind"]: s.value for f in text_string_to_metric_families(body)
            for s in f.samples if s.name == "mallard_pii_redactions_total"}


def send_pii(c: httpx.Client, d: str) -> None:
    """The same PII through the three ways in: the short body, a Plausible body, the pixel."""
    assert post(c, event(d, PII_URL, r=PII_REFERRER, p={"email": "jane.doe@example.org"})).status_code == 202
    assert post(c, {"domain": d, "name": "Buy", "url": f"https://{d}{PII_URL}", "referrer": PII_REFERRER,
                    "props": {"card": "4111111111111111"}}).status_code == 202
    assert c.get("/api/event", params={"d": d, "u": f"https://{d}{PII_URL}", "r": PII_REFERRER},
                 headers={"User-Agent": UA}).status_code == 200


def stored(data_dir: Path, d: str, events: int) -> list[dict[str, object]]:
    """The rows of site ``d`` in the lake, once ``events`` of them are flushed (polled)."""
    rows: list[dict[str, object]] = []

    def flushed() -> bool:
        files = sorted((data_dir / "events" / f"site_id={d}").rglob("*.parquet"))
        rows[:] = [row for path in files for row in pq.read_table(path).to_pylist()]
        return len(rows) == events

    eventually(flushed)
    return rows


def test_pii_is_stored_redacted_and_counted(live: Live) -> None:
    """Whichever way an event comes in, PII in its URL, referrer and props is stored as markers, and
    /metrics counts each replacement by kind."""
    d = site()
    with live.client() as c:
        before = redactions(c)
        send_pii(c, d)
        rows = stored(live.data_dir, d, 3)
        after = redactions(c)
        pages = c.get("/api/stats/breakdown/pages", params={"site_id": d, "period": "day"}).json()
    assert [p["value"] for p in pages] == ["/u/[email]"]
    assert {r["pathname"] for r in rows} == {"/u/[email]"} and {r["utm_term"] for r in rows} == {"[email]"}
    assert {r["referrer"] for r in rows} == {"https://mail.example/read?access_token=[redacted]&x=1"}
    assert sorted(str(r["props"]) for r in rows) == ['None', '{"card":"[card]"}', '{"email":"[email]"}']
    decoded = orjson.dumps(rows, default=str)
    assert not [n for n in PII if n in decoded]
    for path in live.data_dir.rglob("*"):  # the spool, state/, any other file
        if path.is_file():
            assert not [n for n in PII if n in path.read_bytes()], path
    delta = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in after}
    assert delta == {"email": 7, "card": 1, "phone": 0, "secret": 3, "custom": 0}


def test_redaction_can_be_turned_off(tmp_path: Path) -> None:
    """With MALLARD_REDACT_PII=false the same events are stored as sent and nothing is counted."""
    server = start("serve", tmp_path / "data", env={"MALLARD_REDACT_PII": "false"})
    try:
        d = site()
        with server.client() as c:
            send_pii(c, d)
            rows = stored(server.data_dir, d, 3)
            assert redactions(c) == {"email": 0, "card": 0, "phone": 0, "secret": 0, "custom": 0}
    finally:
        stop(server)
    assert {r["pathname"] for r in rows} == {"/u/john.smith@example.com"}
    assert {r["referrer"] for r in rows} == {PII_REFERRER}
    assert '{"email":"jane.doe@example.org"}' in {r["props"] for r in rows}


# -- stats -------------------------------------------------------------------------------------------
def test_stats_routes_and_shapes(live: Live) -> None:
    """main, timeseries (zero-filled), breakdowns, sessions, sites and the v2 query answer their shapes."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/"), event(d, "/pricing"), event(d, "/pricing", name="Signup",
                                                              p=orjson.dumps({"plan": "pro"}).decode())])
        stats = main(c, d)
        assert (stats["total_pageviews"], stats["total_events"], stats["total_sessions"]) == (2, 3, 1)
        series = c.get("/api/stats/timeseries", params={"site_id": d, "period": "7d"}).json()
        assert len(series) == 8 and series[-1]["pageviews"] == 2 and series[0]["pageviews"] == 0
        events = c.get("/api/stats/breakdown/events", params={"site_id": d, "period": "day"}).json()
        assert {r["value"] for r in events} == {"pageview", "Signup"}
        sessions = c.get("/api/stats/sessions", params={"site_id": d, "period": "day"}).json()
        assert sessions["total_sessions"] == 1 and sessions["bounce_rate"] == 0.0
        assert d in c.get("/api/sites").json()["sites"]
        today = datetime.now(UTC).date().isoformat()
        v2 = c.post("/api/v2/query", content=orjson.dumps({
            "site_id": d, "metrics": ["visitors", "pageviews"], "date_range": [today, today],
            "dimensions": ["event:page"], "order_by": [["pageviews", "desc"]]}), headers=JSON)
        assert v2.status_code == 200, v2.text
        assert v2.json()["results"] == [{"dimensions": ["/"], "metrics": [1, 1]},
                                        {"dimensions": ["/pricing"], "metrics": [1, 1]}]
        filtered = main(c, d, filters="pages==/pricing")
        assert filtered["total_pageviews"] == 1


def test_view_parts_equal_the_routes_bodies(live: Live) -> None:
    """/api/stats/view answers, in one body, exactly what main, timeseries, sessions and each breakdown
    route answer for the same parameters (filters, limit and breakdowns included); a repeat is a cache
    hit; a bad dimension or too many are a 400 like the breakdown route's."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/"), event(d, "/pricing"), event(d, "/docs", name="Signup"),
                 event(d, "/pricing", r="https://news.example/")])
        assert main(c, d)["total_pageviews"] == 3
        # Once the events are flushed (every 0.2 s here) the lake, and so the cache key, stays put.
        eventually(lambda: c.get("/api/stats/main", params={"site_id": d, "period": "day"})
                   .headers["x-mallard-cache"] == "hit")
        for params in ({"site_id": d, "period": "day"},
                       {"site_id": d, "period": "7d", "filters": "pages!=/docs", "limit": "1"},
                       {"site_id": d, "period": "day", "interval": "day", "compare": "previous_period",
                        "breakdowns": "os,exit-pages,visit:utm_campaign"}):
            r = c.get("/api/stats/view", params=params)
            assert r.status_code == 200, r.text
            assert r.headers["x-mallard-cache"] == "miss"
            view = r.json()
            slugs = params.get("breakdowns", "pages,sources,countries,browsers,events").split(",")
            compared = {"previous_timeseries"} if "compare" in params else set()
            assert set(view) == {"main", "timeseries", "sessions", "breakdowns", "range", *compared}
            assert list(view["breakdowns"]) == slugs
            one = {k: v for k, v in params.items() if k != "breakdowns"}
            for part, path in (("main", "main"), ("timeseries", "timeseries"), ("sessions", "sessions")):
                assert view[part] == c.get(f"/api/stats/{path}", params=one).json(), part
            for slug in slugs:
                alone = c.get(f"/api/stats/breakdown/{slug}", params=one).json()
                assert view["breakdowns"][slug] == alone, slug
            # A repeat is a hit (polled: a compaction may change the lake's files, so the key, once).
            eventually(lambda p=params: c.get("/api/stats/view", params=p)
                       .headers["x-mallard-cache"] == "hit")
            assert c.get("/api/stats/view", params=params).json() == view
        assert view["main"]["comparison"]["mode"] == "previous_period"
        bad = c.get("/api/stats/view", params={"site_id": d, "breakdowns": "pages,nope"})
        assert bad.status_code == 400 and "Unknown dimension" in bad.json()["error"]
        many = c.get("/api/stats/view", params={"site_id": d, "breakdowns": ",".join(
            ["pages", "sources", "countries", "browsers", "events", "os", "devices", "cities", "regions",
             "referrers", "entry-pages"])})
        assert many.status_code == 400 and "at most 10" in many.json()["error"]


@pytest.mark.parametrize(("path", "params", "needle"), [
    ("/api/stats/main", {}, "site_id"),
    ("/api/stats/main", {"site_id": "bad site"}, "site_id"),
    ("/api/stats/main", {"site_id": "a.example", "period": "bogus"}, "Invalid period"),
    ("/api/stats/main", {"site_id": "a.example", "start_date": "2024-01-01", "end_date": "2025-06-01"},
     "366 days"),
    ("/api/stats/main", {"site_id": "a.example", "start_date": "2024-13-01", "end_date": "2024-12-01"},
     "start_date"),
    ("/api/stats/main", {"site_id": "a.example", "start_date": "2024-02-01", "end_date": "2024-01-01"},
     "on or after"),
    ("/api/stats/breakdown/nope", {"site_id": "a.example"}, "Unknown dimension"),
    ("/api/stats/breakdown/pages", {"site_id": "a.example", "limit": "99999"}, "limit"),
    ("/api/stats/main", {"site_id": "a.example", "filters": "nonsense"}, "filter"),
    ("/api/stats/main", {"site_id": "a.example", "compare": "junk"}, "compare"),
    ("/api/stats/export", {"site_id": "a.example", "format": "xml"}, "Invalid format"),
    ("/api/stats/main", {"site_id": "a.example", "start_date": "9999-12-31", "end_date": "9999-12-31"},
     "between 0001-01-02 and 9999-12-30"),
    ("/api/stats/main", {"site_id": "a.example", "start_date": "0001-01-02", "end_date": "0001-01-05",
                         "compare": "year_over_year"}, "comparison period"),
], ids=["no-site", "bad-site", "bad-period", "too-long", "bad-date", "reversed", "bad-slug", "limit",
        "bad-filter", "bad-compare", "bad-format", "last-date", "compare-before-year-1"])
def test_bad_stats_queries_get_clear_400(live: Live, path: str, params: dict[str, str], needle: str) -> None:
    """Malformed stats parameters answer 400 with a JSON error naming the problem."""
    with live.client() as c:
        r = c.get(path, params=params)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


def test_sql_looking_filter_values_are_just_values(live: Live) -> None:
    """A filter value full of SQL is matched literally (200, nothing found), never executed."""
    with live.client() as c:
        r = c.get("/api/stats/main", params={"site_id": "a.example",
                                             "filters": "pages==/x' OR 1=1 UNION SELECT * FROM events --"})
    assert r.status_code == 200 and r.json()["total_pageviews"] == 0


def test_export_csv_and_json(live: Live) -> None:
    """Daily and raw exports as CSV (formula-safe, quoted) and JSON, without visitor ids."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/a", name="=cmd()"), event(d, "/b")])
        r = c.get("/api/stats/export", params={"site_id": d, "period": "7d"})
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        lines = r.text.splitlines()
        assert lines[0] == '"date","visitors","pageviews","top_page","top_source"' and len(lines) == 9
        raw = c.get("/api/stats/export", params={"site_id": d, "period": "day", "kind": "raw",
                                                 "format": "json"}).json()
        assert len(raw) == 2 and "visitor_id" not in raw[0]
        csv_raw = c.get("/api/stats/export", params={"site_id": d, "period": "day", "kind": "raw"}).text
        assert "\"'=cmd()\"" in csv_raw


def test_funnel_and_sequences_routes(live: Live) -> None:
    """/api/stats/funnel answers cumulative step rows; /api/stats/sequences the converting share; bad steps
    and windows answer 400."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/"), event(d, "/pricing"), event(d, "/pricing", name="Signup")])
        post(c, event(d, "/"), **{"User-Agent": UA.replace("120.0", "121.0")})  # a second visitor
        params = {"site_id": d, "period": "day", "steps": "page:/,page:/pricing,event:Signup",
                  "window": "1 hour"}
        rows = c.get("/api/stats/funnel", params=params).json()
        assert [(r["step"], r["visitors"]) for r in rows] == [(1, 2), (2, 1), (3, 1)]
        assert rows[1]["conversion_rate"] == 0.5
        seq = c.get("/api/stats/sequences", params={**params, "steps": "page:/,event:Signup"}).json()
        assert (seq["converting_visitors"], seq["total_visitors"]) == (1, 2)
        for bad in ({"steps": "DROP TABLE events"}, {"window": "1 day; DROP TABLE"},
                    {"steps": "event:pageview,page:/"}, {"steps": ""}):
            r = c.get("/api/stats/funnel", params={**params, **bad})
            assert r.status_code == 400 and "error" in r.json(), (bad, r.text)
        assert c.get("/api/stats/sequences", params={**params, "steps": "page:/"}).status_code == 400


def test_retention_and_flow_routes(live: Live) -> None:
    """/api/stats/retention answers cohorts with the identity caveat; /api/stats/flow the next pages and
    exits; bad weeks and pages answer 400."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/"), event(d, "/pricing"), event(d, "/pricing", name="Signup")])
        post(c, [event(d, "/"), event(d, "/docs")], **{"User-Agent": UA.replace("120.0", "121.0")})
        post(c, event(d, "/"), **{"User-Agent": UA.replace("120.0", "122.0")})
        ret = c.get("/api/stats/retention", params={"site_id": d, "period": "7d", "weeks": "4"}).json()
        assert sum(cohort["visitors"] for cohort in ret["cohorts"]) == 3
        assert ret["identity"] == "visitor_id" and ret["caveat"]
        flow = c.get("/api/stats/flow", params={"site_id": d, "period": "day", "page": "/"}).json()
        assert (flow["visitors_at_page"], flow["exits"]) == (3, 1)
        rows = [(r["next_page"], r["visitors"]) for r in flow["next_pages"]]
        assert rows == [("/docs", 1), ("/pricing", 1)]
        users = c.get("/api/stats/retention", params={"site_id": d, "period": "7d", "identity": "user_id"})
        assert users.json()["cohorts"] == [] and users.json()["caveat"] is None
        entered = c.get("/api/stats/flow", params={"site_id": d, "period": "day", "page": "/",
                                                   "filters": "exit_page==/docs"}).json()
        assert [(r["next_page"], r["visitors"]) for r in entered["next_pages"]] == [("/docs", 1)]
        for params in ({"weeks": "0"}, {"weeks": "53"}, {"weeks": "x"}, {"identity": "users"}):
            r = c.get("/api/stats/retention", params={"site_id": d, **params})
            assert r.status_code == 400 and "error" in r.json(), r.text
        for page in ("", "pricing", "/" + "x" * 3000):
            r = c.get("/api/stats/flow", params={"site_id": d, "page": page})
            assert r.status_code == 400 and "error" in r.json(), (page[:20], r.text)


# -- what the dashboard calls (issue 11) ------------------------------------------------------------
def test_server_info_for_the_dashboard(live: Live) -> None:
    """/api/stats/info: the time zone answers are in, GeoIP not configured here, the longest range the
    stats routes take (one day more is a 400), realtime available, open-mode access; site_id checked."""
    d = site()
    with live.client() as c:
        r = c.get("/api/stats/info", params={"site_id": d})
        assert r.status_code == 200, r.text
        assert r.json() == {"site_id": d, "timezone": "UTC",
                            "geoip": {"configured": False, "source": "iptocc", "levels": ["country"],
                                      "precision": "city"}, "max_range_days": 366,
                            "realtime": {"available": True, "window_minutes": 5}, "access": "open",
                            "shared_link": None}
        longest = {"site_id": d, "start_date": "2025-01-01", "end_date": "2026-01-02"}  # 366 days apart
        assert c.get("/api/stats/main", params=longest).status_code == 200
        r = c.get("/api/stats/main", params={**longest, "end_date": "2026-01-03"})
        assert r.status_code == 400 and "366" in r.json()["error"]
        for bad in ({}, {"site_id": "not a site"}):
            r = c.get("/api/stats/info", params=bad)
            assert r.status_code == 400 and "error" in r.json(), r.text


def test_saved_funnel_routes_answer_json_errors(live: Live) -> None:
    """A site without saved funnels lists none; an unknown saved funnel id is a 404 JSON error; saving
    needs an admin (no password here: 401)."""
    d = site()
    with live.client() as c:
        listed = c.get("/api/v1/sites/funnels", params={"site_id": d}).json()
        assert listed == {"funnels": [], "meta": {"after": None, "before": None, "limit": 100}}
        r = c.get("/api/stats/funnel", params={"site_id": d, "funnel": "12"})
        assert r.status_code == 404 and r.json() == {"error": "Funnel could not be found",
                                                  "code": "unknown_funnel"}
        r = c.post("/api/v1/sites/funnels", content=orjson.dumps(
            {"site_id": d, "name": "F", "steps": ["page:/"]}), headers=JSON)
        assert r.status_code == 401 and "error" in r.json()


def test_site_settings_route_is_admin_only(live: Live) -> None:
    """``/api/v1/sites/{site_id}`` is an Admin route: 401 JSON without a password; the literal paths
    beside it keep their own answers (a missing site_id, a wrong method)."""
    d = site()
    with live.client() as c:
        assert post(c, event(d)).status_code == 202
        for r in (c.get(f"/api/v1/sites/{d}"),
                  c.put(f"/api/v1/sites/{d}", content=orjson.dumps({"currency": "EUR"}), headers=JSON)):
            assert r.status_code == 401 and "error" in r.json(), r.text
        assert c.get("/api/v1/sites/funnels").status_code == 400
        r = c.put("/api/v1/sites/funnels", content=orjson.dumps({"currency": "EUR"}), headers=JSON)
        assert r.status_code == 405 and "PUT" not in r.headers["allow"], r.headers


def test_suggestions_are_v2_queries_and_prop_keys(live: Live) -> None:
    """The filter menu's and funnel builder's suggestions: a v2 query with a case-insensitive contains
    filter and a limit answers the matching values most visitors first; property keys come from
    /api/stats/properties with q."""
    d = site()
    with live.client() as c:
        sent = [("/Pricing", '{"plan":"pro"}'), ("/pricing/team", '{"plan":"free"}'),
                ("/pricing/team", '{"Planet":"x"}'), ("/docs", '{"author":"a"}')]
        for i, (path, props) in enumerate(sent):
            post(c, event(d, path, p=props), **{"User-Agent": UA.replace("120.0", f"12{i}.0")})
        query = {"site_id": d, "metrics": ["visitors"], "date_range": "day", "dimensions": ["event:page"],
                 "filters": [["contains", "event:page", ["PRIC"], {"case_sensitive": False}]],
                 "pagination": {"limit": 5}}
        r = c.post("/api/v2/query", content=orjson.dumps(query), headers=JSON)
        assert r.status_code == 200, r.text
        assert [(row["dimensions"][0], row["metrics"][0]) for row in r.json()["results"]] == [
            ("/pricing/team", 2), ("/Pricing", 1)]
        values = {**query, "dimensions": ["event:props:plan"],
                  "filters": [["contains", "event:props:plan", ["r"]]], "pagination": {"limit": 1}}
        r = c.post("/api/v2/query", content=orjson.dumps(values), headers=JSON)
        assert [row["dimensions"] for row in r.json()["results"]] == [["free"]]
        keys = c.get("/api/stats/properties", params={"site_id": d, "period": "day", "q": "PL"}).json()
        assert keys == {"site_id": d, "search": "PL", "properties": [
            {"key": "plan", "visitors": 2, "events": 2}, {"key": "Planet", "visitors": 1, "events": 1}]}
        limited = c.get("/api/stats/properties", params={"site_id": d, "period": "day", "limit": "1"}).json()
        assert limited["properties"] == [{"key": "plan", "visitors": 2, "events": 2}]
        for bad in ({"limit": "0"}, {"limit": "101"}, {"q": "x" * 129}):
            r = c.get("/api/stats/properties", params={"site_id": d, **bad})
            assert r.status_code == 400 and "error" in r.json(), (bad, r.text)


def test_properties_route(live: Live) -> None:
    """/api/stats/properties lists the custom property keys of the range, most visitors first, with
    their visitors and events; filters select visitors (as flow's do: every event of those with a matching
    session); a bad limit or filter answers 400."""
    d = site()
    with live.client() as c:
        post(c, [event(d, "/", props={"plan": "pro", "color": "red"}), event(d, "/a", props={"plan": "free"}),
                 event(d, "/b", name="Signup", props={"plan": "pro"})])
        post(c, event(d, "/", props={"color": "blue"}), **{"User-Agent": UA.replace("120.0", "121.0")})
        post(c, event(d, "/"), **{"User-Agent": UA.replace("120.0", "122.0")})
        r = c.get("/api/stats/properties", params={"site_id": d, "period": "day"})
        assert r.status_code == 200, r.text
        assert r.json() == {"site_id": d, "properties": [{"key": "color", "visitors": 2, "events": 2},
                                                         {"key": "plan", "visitors": 1, "events": 3}]}
        signups = c.get("/api/stats/properties", params={"site_id": d, "filters": "event==Signup"}).json()
        assert signups["properties"] == [{"key": "plan", "visitors": 1, "events": 3},
                                         {"key": "color", "visitors": 1, "events": 1}]
        entered = c.get("/api/stats/properties", params={"site_id": d, "filters": "entry_page==/"}).json()
        assert entered["properties"] == r.json()["properties"]  # every visit entered on /
        assert c.get("/api/stats/properties",
                     params={"site_id": d, "filters": "entry_page==/a"}).json()["properties"] == []
        one = c.get("/api/stats/properties", params={"site_id": d, "limit": "1"}).json()
        assert [p["key"] for p in one["properties"]] == ["color"]
        for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"filters": "nope==/"}):
            r = c.get("/api/stats/properties", params={"site_id": d, **params})
            assert r.status_code == 400 and "error" in r.json(), (params, r.text)
