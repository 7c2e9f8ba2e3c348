"""Schemathesis against a real ``python -m mallard serve`` on 127.0.0.1, driven by the generated OpenAPI
document, with an Admin API key (so the admin routes run too) and without credentials.

Checks per response: no 5xx except a documented 503; the status is one the operation documents; the
content type is a documented one; every error body is JSON ``{"error": "<string>", "code": "<string>"}``;
a request the schema calls invalid is refused with a 4xx. Not checked: that schema-valid data is
accepted, because some rules (an end date before the start date, a range over 366 days) are not in
JSON Schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from mallard._http.api import ROUTES
from mallard._http.openapi import document

from .conftest import Live, start, stop

pytestmark = pytest.mark.slow

PASSWORD = "fuzzing is a kind of testing"
#: Non-JSON answers that are documented as such (plain text).
TEXT_ERRORS = {("GET", "/metrics", 401), ("GET", "/health/ready", 503)}

DOCUMENT = document(ROUTES)


def error_body_is_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx (but the documented plain-text ones) is ``{"error": "<string>", "code": "<string>"}``."""
    if response.status_code < 400 or (case.method, case.path, response.status_code) in TEXT_ERRORS:
        return
    ctype = response.headers.get("content-type", [""])[0]
    assert ctype.startswith("application/json"), f"{response.status_code} with {ctype!r}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    assert isinstance(body.get("code"), str), body


def no_undocumented_server_error(ctx: Any, response: schemathesis.Response,
                                 case: schemathesis.Case) -> None:
    """A 5xx is a defect unless it is a documented 503 (storage or query timeout)."""
    if response.status_code >= 500:
        assert response.status_code == 503 and str(response.status_code) in \
            case.operation.definition.raw["responses"], f"{response.status_code}: {response.text[:300]}"


# no_undocumented_server_error stands in for schemathesis' not_a_server_error: a 503 must be documented.
CHECKS = [no_undocumented_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, unsupported_method, error_body_is_json]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, str]]:
    """``mallard serve`` with an admin password and an Admin API key (returned with the server)."""
    live = start("serve", tmp_path_factory.mktemp("fuzz") / "data")
    try:
        with live.client() as c:
            r = c.post("/api/auth/setup", json={"password": PASSWORD})
            assert r.status_code == 200, r.text
            r = c.post("/api/keys", json={"name": "fuzz", "scope": "Admin"},
                       headers={"Origin": live.base})
            assert r.status_code == 201, r.text
            key = r.json()["key"]
            c.cookies.clear()
        yield live, key
    finally:
        stop(live)
        logs = live.logs()
        assert "Traceback" not in logs, logs


SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
#: Without credentials the read and admin routes answer 401 before looking at their input, so the
#: coverage phase (every boundary value of every parameter, most of the run) is left to the admin run.
ANONYMOUS = schemathesis.openapi.from_dict(DOCUMENT)
ANONYMOUS.config.phases.coverage.enabled = False
FUZZ = settings(max_examples=8, deadline=timedelta(seconds=30), derandomize=True,
                suppress_health_check=list(HealthCheck))


@SCHEMA.parametrize()
@FUZZ
def test_api_with_an_admin_key(case: schemathesis.Case, server: tuple[Live, str]) -> None:
    live, key = server
    case.call_and_validate(base_url=live.base, headers={"X-API-Key": key}, checks=CHECKS, timeout=20)


@ANONYMOUS.parametrize()
@FUZZ
def test_api_without_credentials(case: schemathesis.Case, server: tuple[Live, str]) -> None:
    live, _ = server
    case.call_and_validate(base_url=live.base, checks=CHECKS, timeout=20)


def test_the_server_serves_this_document(server: tuple[Live, str]) -> None:
    live, _ = server
    assert httpx.get(live.base + "/api/openapi.json", timeout=10).json() == SCHEMA.raw_schema
