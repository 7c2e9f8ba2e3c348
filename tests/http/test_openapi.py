"""The OpenAPI document: valid OpenAPI 3.1, every route of the table in it with typed parameters, request
body schemas and the ``{"error": ...}`` schema on its error statuses, and body schemas that never refuse
what the server accepts (so schemathesis' negative-data findings mean something)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator

from mallard._errors import InvalidEventError
from mallard._events import MAX_SITE_ID
from mallard._http.api import ROUTES
from mallard._http.openapi import document, error_statuses
from mallard._payload import parse_body
from tests.strategies import raw_payloads, request_bodies

DOC = document(ROUTES)
ROUTE_IDS = [f"{r.method} {r.pattern}" for r in ROUTES]


def _op(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = DOC["paths"][path][method.lower()]
    return op


def test_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator finds no error in the document, and it survives a JSON round trip."""
    OpenAPIV31SpecValidator(DOC).validate()
    assert json.loads(orjson.dumps(DOC)) == DOC


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_is_documented_with_schemas(route: Any) -> None:
    """Each route is an operation whose parameters all carry a JSON Schema, whose path segments are all
    declared, whose body (every POST but logout has one) has a schema, and whose error answers use the
    Error schema."""
    op = _op(route.method, route.pattern)
    params = op.get("parameters", [])
    assert all(p["schema"] and ("type" in p["schema"] or "anyOf" in p["schema"]) for p in params)
    declared = {p["name"] for p in params if p["in"] == "path"}
    assert declared == set(re.findall(r"\{([a-z_]+)\}", route.pattern))
    if route.method == "POST" and route.pattern != "/api/auth/logout":
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert "type" in schema or "oneOf" in schema
    for status in error_statuses(route):
        assert op["responses"][str(status)] == {"$ref": "#/components/responses/Error"}
    assert not any(s.startswith("5") and s != "503" for s in op["responses"]), "5xx other than 503"
    assert "default" not in op["responses"]
    if route.access != "public":
        shared = [{"sharedLink": []}, {"sharedLinkQuery": []}] if route.access == "read" else []
        assert op["security"] == [{"session": []}, {"bearer": []}, {"apiKey": []}, *shared]
        assert "401" in op["responses"]


def test_parameters_are_typed() -> None:
    """Dates are format: date, limits bounded integers, periods an enum, site ids patterned."""
    params = {p["name"]: p for p in _op("GET", "/api/stats/breakdown/{dimension}")["parameters"]}
    assert params["start_date"]["schema"]["format"] == "date"
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}
    assert "7d" in params["period"]["schema"]["enum"]
    assert params["site_id"]["required"] and params["site_id"]["schema"]["maxLength"] == MAX_SITE_ID
    assert params["dimension"]["in"] == "path"
    erase = {p["name"]: p for p in _op("DELETE", "/api/gdpr/erase")["parameters"]}
    assert erase["start_date"]["required"] and erase["end_date"]["schema"]["format"] == "date"
    keys = _op("POST", "/api/keys")["requestBody"]["content"]["application/json"]["schema"]
    assert keys["properties"]["scope"]["enum"] == ["ReadOnly", "Admin"]
    assert set(DOC["components"]["securitySchemes"]) == {"session", "bearer", "apiKey", "sharedLink",
                                                         "sharedLinkQuery"}


def test_dashboard_routes_of_issue_11_are_documented() -> None:
    """Shared links, saved funnels, the server facts and property-key suggestions are in the document
    with their parameters, bodies and error answers."""
    paths = DOC["paths"]
    assert set(paths["/api/v1/sites/shared-links"]) == {"post", "get"}
    create = paths["/api/v1/sites/shared-links"]["post"]
    assert create["responses"]["201"] and create["responses"]["403"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == ["site_id", "name"]
    assert "404" in paths["/api/v1/sites/shared-links/{link_id}"]["delete"]["responses"]
    assert set(paths["/api/v1/sites/funnels"]) == {"post", "get"}
    assert "404" in paths["/api/v1/sites/funnels/{funnel_id}"]["delete"]["responses"]
    funnel = {p["name"]: p for p in _op("GET", "/api/stats/funnel")["parameters"]}
    assert funnel["funnel"]["schema"]["pattern"] == "^[0-9]{1,18}$" and not funnel["steps"]["required"]
    assert "404" in _op("GET", "/api/stats/funnel")["responses"]
    assert {p["name"] for p in _op("GET", "/api/stats/info")["parameters"]} == {"site_id"}
    keys = {p["name"]: p for p in _op("GET", "/api/stats/properties")["parameters"]}
    assert keys["limit"]["schema"]["maximum"] == 100 and keys["q"]["schema"]["maxLength"] == 128


def test_served_document_is_the_generated_one(tmp_path: Any) -> None:
    """GET /api/openapi.json answers exactly this document."""
    import mallard
    from mallard._http import Api, Request

    m = mallard.Mallard(data_dir=tmp_path / "data")
    try:
        r = Api.for_mallard(m).handle(Request("GET", "/api/openapi.json", client="127.0.0.1"))
    finally:
        m.close()
    assert r.status == 200 and orjson.loads(r.body) == json.loads(orjson.dumps(DOC))


_BODY_SCHEMA = _op("POST", "/api/event")["requestBody"]["content"]["application/json"]["schema"]
_BODY_VALIDATOR = jsonschema.Draft202012Validator(_BODY_SCHEMA)


@pytest.mark.parametrize("body", [
    {"d": "example.com", "n": "pageview", "u": "https://example.com/"},
    {"domain": "a.com,b.com", "name": "Signup", "url": "https://a.com/x", "props": {"plan": "pro"},
     "revenue": {"amount": "12.50", "currency": "EUR"}, "screen_width": 1280},
    [{"d": "example.com", "n": "pageview", "u": "https://example.com/", "w": 390, "p": "{}"}],
], ids=["short keys", "plausible keys", "batch"])
def test_real_bodies_match_the_event_schema(body: Any) -> None:
    assert _BODY_VALIDATOR.is_valid(body)


@pytest.mark.parametrize("body", [
    {"n": "pageview", "u": "https://example.com/"}, {"d": "", "n": "x", "u": "y"},
    {"d": "example.com", "n": "x", "u": "y", "w": -1}, [], [1],
], ids=["no site", "empty site", "negative width", "empty batch", "not an object"])
def test_bodies_the_server_refuses_break_the_schema(body: Any) -> None:
    with pytest.raises(InvalidEventError):
        parse_body(orjson.dumps(body))
    assert not _BODY_VALIDATOR.is_valid(body)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.one_of(raw_payloads(), request_bodies()))
def test_event_schema_never_refuses_what_the_parser_accepts(value: Any) -> None:
    """Whatever body parse_body takes, the schema takes too (the schema may be stricter only where the
    tracker refuses later): otherwise schemathesis would report documented-invalid data as accepted."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    try:
        parse_body(raw)
    except InvalidEventError:
        return
    assert _BODY_VALIDATOR.is_valid(json.loads(raw)), raw[:300]
