"""Every error answer is ``{"error": <message>, "code": <code>}`` with the status of the one table in
mallard/_http/errors.py: each row of that table checked on its own (a route raising that exception), and
each row a request can reach checked through every adapter, by real requests to real servers (this
module's servers set a password; see conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

import mallard
from mallard._auth import AlreadyConfiguredError, PasswordRejectedError
from mallard._errors import (
    ConfigurationError,
    InvalidEventError,
    InvalidQueryError,
    MallardError,
    QueryTimeoutError,
    StorageError,
)
from mallard._goals import GoalError
from mallard._http import Api, HTTPError, Request, Response
from mallard._http.errors import RULES, STATUS_CODES
from mallard._http.routing import Route, Router

from .conftest import KINDS, Live, serving
from .test_contract import JSON, event, post

PASSWORD = "error codes are for machines"
LOCAL = "127.0.0.1"


# -- the table, row by row -------------------------------------------------------------------------
@pytest.fixture
def api(tmp_data_dir: Path) -> Iterator[Api]:
    with mallard.Mallard(data_dir=tmp_data_dir) as m:
        yield Api.for_mallard(m)


def raising(api: Api, exc: BaseException) -> tuple[int, dict[str, str], dict[str, object]]:
    """The answer of a route that raises ``exc``: status, headers, JSON body."""
    def handler(api: Api, request: Request, params: dict[str, str]) -> Response:
        raise exc

    api.router = Router([Route("GET", "/raise", handler, "Raises.")])
    response = api.handle(Request("GET", "/raise", client=LOCAL))
    return response.status, dict(response.headers), orjson.loads(response.body)


#: (exception raised, status, code, message answered (None: the exception's)) for every row of RULES.
ROWS: dict[tuple[type[BaseException], str | None], tuple[BaseException, int, str, str | None]] = {
    (InvalidEventError, "missing_field"): (
        InvalidEventError("Missing required field 'u'.", code="missing_field"), 422, "missing_field", None),
    (InvalidEventError, "invalid_type"): (
        InvalidEventError("Field 'w' must be a non-negative integer.", code="invalid_type"), 422,
        "invalid_type", None),
    (InvalidEventError, None): (InvalidEventError("url must be at most 2000 bytes", code="too_long"), 400,
                                "too_long", None),
    (InvalidQueryError, None): (InvalidQueryError("Unknown metric 'vistors'.", code="invalid_metric"), 400,
                                "invalid_metric", None),
    (ConfigurationError, None): (ConfigurationError("site_ids: not a site id."), 400, "configuration",
                                 None),
    (AlreadyConfiguredError, None): (
        AlreadyConfiguredError("An admin password is already configured.", code="already_configured"),
        409, "already_configured", "Admin password already configured"),
    (StorageError, None): (StorageError("Cannot write /data/state/x.json: disk full."), 503,
                           "storage_unavailable", "Storage is unavailable; retry later."),
    (QueryTimeoutError, None): (QueryTimeoutError("The query took longer than 1 s and was stopped."), 503,
                                "query_timeout", None),
    (MallardError, None): (GoalError("Invalid currency 'EURO'.", code="invalid_currency"), 400,
                           "invalid_currency", None),
    (Exception, None): (RuntimeError("a bug quoting /secret?token=x"), 500, "internal_error",
                        "Internal server error"),
}


def test_every_row_of_the_table_is_checked() -> None:
    assert set(ROWS) == set(RULES)


@pytest.mark.parametrize("row", list(ROWS), ids=lambda r: f"{r[0].__name__}-{r[1]}")
def test_each_row_answers_its_status_and_code(api: Api,
                                              row: tuple[type[BaseException], str | None]) -> None:
    exc, status, code, message = ROWS[row]
    got, headers, body = raising(api, exc)
    assert (got, body) == (status, {"error": message or str(exc), "code": code})
    assert headers["Content-Type"] == "application/json"
    if status == 503:
        assert headers["Retry-After"] == "5"


def test_a_subclass_takes_its_nearest_row(api: Api) -> None:
    """PasswordRejectedError has no row of its own: AuthError's nearest listed base, MallardError (400),
    answers it with its own code; a subclass of InvalidEventError keeps the code rows of its base."""
    assert raising(api, PasswordRejectedError("Too short.", code="password_too_short"))[::2] == (
        400, {"error": "Too short.", "code": "password_too_short"})

    class Nested(InvalidEventError):
        pass

    assert raising(api, Nested("Missing required field 'd'.", code="missing_field"))[0] == 422


@pytest.mark.parametrize("status", sorted(STATUS_CODES))
def test_an_http_error_without_a_code_carries_its_status_code(api: Api, status: int) -> None:
    assert raising(api, HTTPError(status, "Refused."))[::2] == (
        status, {"error": "Refused.", "code": STATUS_CODES[status]})
    assert raising(api, HTTPError(status, "Refused.", code="own_code"))[2]["code"] == "own_code"


def test_no_message_text_decides_a_status(api: Api) -> None:
    """The same message under two codes answers two statuses; two messages under one code, one."""
    text = "Missing required field 'u'."
    assert raising(api, InvalidEventError(text, code="missing_field"))[0] == 422
    assert raising(api, InvalidEventError(text, code="empty_field"))[0] == 400
    assert raising(api, InvalidEventError("url must not be empty", code="missing_field"))[0] == 422


def test_refusals_before_routing_carry_codes(api: Api) -> None:
    """The adapters' 413, the slow body's 408 and the busy server's 503 are coded too."""
    for response, status, code in ((api.refuse(413, "Too big."), 413, "payload_too_large"),
                                   (api.refuse_slow_body(), 408, "body_timeout"),
                                   (api.refuse_busy(), 503, "server_busy")):
        assert response.status == status and orjson.loads(response.body)["code"] == code


# -- through every adapter -------------------------------------------------------------------------
@dataclass
class Admin:
    """What setting the password answered, and an Admin API key (this module's servers have one)."""

    before: dict[str, httpx.Response]
    key: str


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving(request.param, tmp_path_factory, "codes")


@pytest.fixture(scope="module")
def admin(live: Live) -> Admin:
    """Answers given before and while the password is set, then an Admin key (made with the cookie)."""
    with live.client() as c:
        before = {
            "admin_route": c.get("/api/keys"),
            "weak_password": c.post("/api/auth/setup", json={"password": "short"}),
            "setup": c.post("/api/auth/setup", json={"password": PASSWORD}),
            "setup_again": c.post("/api/auth/setup", json={"password": PASSWORD}),
            "wrong_password": c.post("/api/auth/login", json={"password": "not the password at all"}),
        }
        assert before["setup"].status_code == 200, before["setup"].text
        origin = {"Origin": live.host}
        before["cross_site"] = c.post("/api/keys", json={"name": "x"},
                                      headers={"Origin": "https://evil.example"})
        r = c.post("/api/keys", json={"name": "codes", "scope": "Admin"}, headers=origin)
        assert r.status_code == 201, r.text
        return Admin(before, r.json()["key"])


def coded(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/json"), r.text
    body: dict[str, object] = r.json()
    assert set(body) == {"error", "code"} and body["code"] == code and isinstance(body["error"], str), body
    return body


@pytest.mark.parametrize(("name", "status", "code"), [
    ("admin_route", 401, "not_configured"),
    ("weak_password", 400, "password_too_short"),         # PasswordRejectedError → MallardError's row
    ("setup_again", 409, "already_configured"),           # AlreadyConfiguredError's row
    ("wrong_password", 401, "wrong_password"),
    ("cross_site", 403, "cross_site_refused"),
])
@pytest.mark.slow
def test_auth_errors(admin: Admin, name: str, status: int, code: str) -> None:
    body = coded(admin.before[name], status, code)
    if name == "setup_again":
        assert body["error"] == "Admin password already configured"  # Mallard Metrics' text


def client(live: Live, admin: Admin) -> httpx.Client:
    return live.client(headers={"Authorization": f"Bearer {admin.key}"})


BAD_EVENTS = [
    (b"{}", 422, "missing_field"),
    (orjson.dumps([{"d": "e.example", "n": "pageview"}]), 422, "missing_field"),
    (orjson.dumps({"d": "e.example", "n": "pageview", "u": "/", "w": "wide"}), 422, "invalid_type"),
    (orjson.dumps([]), 422, "invalid_type"),
    (orjson.dumps({"d": "", "n": "pageview", "u": "/"}), 400, "empty_field"),
    (orjson.dumps({"d": "e.example", "n": "\x00\x01", "u": "/"}), 400, "empty_field"),  # the pipeline's
    (orjson.dumps({"d": "e.example", "n": "pageview", "u": "x" * 3000}), 400, "too_long"),
    (orjson.dumps({"d": "bad site", "n": "pageview", "u": "/"}), 400, "invalid_site_id"),
    (b"{not json", 400, "malformed_json"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("body", "status", "code"), BAD_EVENTS,
                         ids=["empty-object", "batch-missing-url", "bad-width", "empty-batch", "empty-site",
                              "control-only-name", "long-url", "bad-site", "malformed"])
def test_ingestion_errors(live: Live, body: bytes, status: int, code: str) -> None:
    with live.client() as c:
        coded(c.post("/api/event", content=body, headers=JSON), status, code)


@pytest.mark.slow
def test_ingestion_refusals(live: Live) -> None:
    """The pixel's parameters are query parameters (400, never 422); a body over the limit is 413."""
    with live.client() as c:
        coded(c.get("/api/event", params={"u": "/"}), 400, "missing_param")
        coded(c.get("/api/event", params={"d": "e.example", "u": "/", "w": "4294967296"}), 400,
              "invalid_param")
        coded(c.post("/api/event", content=b"x" * 70_000, headers=JSON), 413, "payload_too_large")
        coded(c.post("/api/event", params={"debug": "yes"}, content=orjson.dumps(event("e.example")),
                     headers=JSON), 400, "invalid_param")
        assert post(c, event("e.example")).status_code == 202


@pytest.mark.slow
def test_routing_errors(live: Live) -> None:
    with live.client() as c:
        coded(c.get("/api/nope"), 404, "not_found")
        body = coded(c.put("/api/event", content=b"{}"), 405, "method_not_allowed")
        assert body["error"] == "Method PUT not allowed."


@pytest.mark.slow
def test_query_errors(live: Live, admin: Admin) -> None:
    """InvalidQueryError answers its own code; the Stats API v1 and v2 keep Plausible's text."""
    with client(live, admin) as c:
        coded(c.get("/api/stats/main"), 400, "missing_param")
        coded(c.get("/api/stats/main", params={"site_id": "q.example", "period": "fortnight"}), 400,
              "invalid_period")
        coded(c.get("/api/stats/main", params={"site_id": "q.example", "compare": "yesterday"}), 400,
              "invalid_compare")
        body = coded(c.get("/api/v1/stats/aggregate", params={"site_id": "q.example", "metrics": "vistors"}),
                     400, "invalid_metric")
        assert str(body["error"]).startswith("Unknown metric 'vistors'.")
        coded(c.post("/api/v2/query", json={"site_id": "q.example", "metrics": ["vistors"],
                                            "date_range": "7d"}), 400, "invalid_metric")
        coded(c.post("/api/v2/query", content=b"[1]", headers=JSON), 400, "invalid_query")
        coded(c.post("/api/v2/query", content=b"{", headers=JSON), 400, "malformed_json")


@pytest.mark.slow
def test_admin_route_errors(live: Live, admin: Admin) -> None:
    """The core's own rules (a goal's currency: GoalError, MallardError's row) and the 404s of records."""
    with client(live, admin) as c:
        coded(c.put("/api/v1/sites/goals", json={"site_id": "g.example", "goal_type": "event",
                                                 "event_name": "Buy", "currency": "EURO"}), 400,
              "invalid_currency")
        coded(c.get("/api/v1/sites/unknown.example"), 404, "unknown_site")
        coded(c.get("/api/stats/funnel", params={"site_id": "g.example", "funnel": "12"}), 404,
              "unknown_funnel")
        coded(c.delete("/api/keys/" + "0" * 64), 404, "unknown_key")
        coded(c.delete("/api/gdpr/erase", params={"site_id": "g.example", "start_date": "2024-02-01",
                                                  "end_date": "2024-01-01"}), 400, "invalid_range")
    with live.client(headers={"Authorization": "Bearer not-a-key"}) as c:
        coded(c.get("/api/stats/main", params={"site_id": "g.example"}), 401, "unauthorized")


@pytest.mark.slow
def test_storage_errors_are_503_without_the_file_name(live: Live, admin: Admin) -> None:
    """An API key list that cannot be read (StorageError) answers 503 storage_unavailable, naming no
    file; restored, the key works again."""
    keys = live.data_dir / "state" / "api_keys.json"
    saved = keys.read_bytes()
    keys.write_bytes(b"not json at all")
    try:
        with client(live, admin) as c:
            r = c.get("/api/stats/main", params={"site_id": "k.example"})
        body = coded(r, 503, "storage_unavailable")
        assert r.headers["retry-after"] == "5" and "api_keys" not in str(body["error"])
    finally:
        keys.write_bytes(saved)
    with client(live, admin) as c:
        assert c.get("/api/stats/main", params={"site_id": "k.example"}).status_code == 200
