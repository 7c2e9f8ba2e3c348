"""Authentication and administration routes: ``/api/auth/*``, ``/api/keys``, ``/api/gdpr/erase``.

Sessions are ``mm_session`` cookies (HttpOnly, SameSite=Strict, Secure when configured or when the
dashboard origin is https) holding signed tokens that every worker process verifies. Failed logins
are counted per client IP across all workers; a locked IP gets 429 with ``Retry-After``.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Final

from .._auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, SCOPES, PasswordRejectedError
from .._queries.model import check_site
from .._queries.periods import MAX_API_DAYS, parse_date
from .messages import HTTPError, Request, Response, json_response
from .routing import JSON, Body, Param, Route
from .schemas import date_param, site_param
from .security import client_ip, open_mode_allowed

if TYPE_CHECKING:
    from .api import Api

__all__ = ["COOKIE", "OPEN_MODE_REFUSED", "ROUTES", "check_lockout"]

COOKIE: Final = "mm_session"
OPEN_MODE_REFUSED: Final = (
    "Refused: no admin password is set, so only same-origin requests to this machine's loopback "
    "address (Host 127.0.0.1, ::1 or localhost, no other Origin) may use the API. Open the dashboard "
    "at http://127.0.0.1:<port>/ or set a password with `mallard password`.")


def _cookie(api: Api, request: Request, token: str, max_age: int) -> str:
    s = api.settings
    secure = s.secure_cookies or (s.dashboard_origin or "").startswith("https://") \
        or request.scheme == "https"
    path = request.root_path or "/"
    return (f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}"
            + ("; Secure" if secure else ""))


def _password(request: Request) -> str:
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        raise HTTPError(422, 'The body must be a JSON object {"password": "..."}.', code="invalid_body")
    password: str = body["password"]
    return password


def check_lockout(api: Api, ip: str) -> None:
    """429 with ``Retry-After`` while the client is locked out (failed logins or shared-link guesses)."""
    remaining = api.auth.lockout_remaining(ip)
    if remaining > 0:
        raise HTTPError(429, "Too many failed attempts. Try again later.", code="locked_out",
                        headers=[("Retry-After", str(max(1, int(remaining))))])


def _logged_in(api: Api, request: Request) -> Response:
    token, max_age = api.auth.create_session()
    return json_response({"token": token}, headers=[("Set-Cookie", _cookie(api, request, token, max_age))])


def status(api: Api, request: Request, params: dict[str, str]) -> Response:
    from .shares import live_link  # shares uses check_lockout from here

    configured = api.auth.password_configured()
    local = open_mode_allowed(request)
    link = live_link(api, request)
    return json_response({
        "shared_link": None if link is None else {"site_id": link.site_id, "name": link.name},
        "setup_required": not configured,
        "authenticated": api.principal(request) is not None or (not configured and local),
        "loopback_only": not configured,
        "note": None if configured else (
            "No admin password is set: stats are readable only from this machine (loopback, "
            "same-origin) until one is set with `mallard password` or POST /api/auth/setup from this "
            "machine."),
    })


def setup(api: Api, request: Request, params: dict[str, str]) -> Response:
    ip = client_ip(request, api.settings) or "unknown"
    check_lockout(api, ip)
    if not open_mode_allowed(request):
        raise HTTPError(403, "The first password can only be set from this machine, by a same-origin "
                             "request to a loopback address (Host 127.0.0.1, ::1 or localhost), or with "
                             "`mallard password`.", code="open_mode_refused")
    password = _password(request)
    try:
        api.auth.setup(password)  # AlreadyConfiguredError (409) before the password is looked at
    except PasswordRejectedError:
        api.auth.record_failure(ip)
        raise
    return _logged_in(api, request)


def login(api: Api, request: Request, params: dict[str, str]) -> Response:
    ip = client_ip(request, api.settings) or "unknown"
    check_lockout(api, ip)
    password = _password(request)
    if not api.auth.password_configured():
        raise HTTPError(400, "No admin password configured. Use /api/auth/setup first.",
                        code="not_configured")
    if not api.auth.verify(password):
        api.auth.record_failure(ip)
        api.count("mallard_login_failures_total")
        raise HTTPError(401, "Invalid password", code="wrong_password")
    api.auth.record_success(ip)
    return _logged_in(api, request)


def logout(api: Api, request: Request, params: dict[str, str]) -> Response:
    token = request.cookie(COOKIE)
    if token:
        api.auth.revoke_session(token)
    cookie = _cookie(api, request, "", 0)
    return json_response({"status": "logged_out"}, headers=[("Set-Cookie", cookie)])


def create_key(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(422, 'The body must be a JSON object {"name": "...", "scope": "ReadOnly"|"Admin"}.',
                        code="invalid_body")
    name, scope = body.get("name"), body.get("scope", "ReadOnly")
    if not isinstance(name, str) or not 1 <= len(name) <= 128:
        raise HTTPError(400, "Key name must be 1-128 characters", code="invalid_key_name")
    if scope not in ("ReadOnly", "Admin"):
        raise HTTPError(422, "scope must be 'ReadOnly' or 'Admin'.", code="invalid_scope")
    plaintext, record = api.auth.create_key(name, scope)
    return json_response({"key": plaintext, **_public(record)}, 201)


def _public(record: Any) -> dict[str, Any]:
    data = dict(record) if isinstance(record, dict) else dict(vars(record))
    return {k: data[k] for k in ("key_hash", "name", "scope", "created_at", "revoked") if k in data}


def list_keys(api: Api, request: Request, params: dict[str, str]) -> Response:
    return json_response([_public(k) for k in api.auth.list_keys()])


def revoke_key(api: Api, request: Request, params: dict[str, str]) -> Response:
    if not api.auth.revoke_key(params["key_hash"]):
        raise HTTPError(404, "Key not found", code="unknown_key")
    return json_response({"status": "revoked"})


def erase(api: Api, request: Request, params: dict[str, str]) -> Response:
    site_arg = request.arg("site_id")
    if site_arg is None:
        raise HTTPError(400, "Missing required query parameter site_id.", code="missing_param")
    site = check_site(site_arg)
    start_text, end_text = request.arg("start_date"), request.arg("end_date")
    if start_text is None or end_text is None:
        raise HTTPError(400, "start_date and end_date (YYYY-MM-DD, inclusive) are required.",
                        code="missing_param")
    start: date = parse_date(start_text, "start_date")
    end: date = parse_date(end_text, "end_date")
    if end < start:
        raise HTTPError(400, "end_date must be on or after start_date", code="invalid_range")
    if (end - start).days > MAX_API_DAYS:
        raise HTTPError(400, f"Date range must not exceed {MAX_API_DAYS} days.", code="range_too_long")
    result = api.mallard.erase(site, start, end)
    api.cache.invalidate_site(site)
    return json_response({"status": "erased", "site_id": site, "start_date": start.isoformat(),
                          "end_date": end.isoformat(),
                          "db_records_deleted": result.buffered_events_deleted,
                          "buffered_events_deleted": result.buffered_events_deleted,
                          "parquet_partitions_deleted": result.parquet_partitions_deleted})


def _password_body(schema: dict[str, Any]) -> Body:
    return Body({"type": "object", "required": ["password"], "properties": {"password": schema}})


ROUTES: Final = (
    Route("GET", "/api/auth/status", status, "Whether a password is set and the caller is logged in.",
          tag="auth"),
    Route("POST", "/api/auth/setup", setup, "Set the first admin password (from this machine only).",
          tag="auth", body=_password_body({"type": "string", "minLength": MIN_PASSWORD_LENGTH,
                                           "maxLength": MAX_PASSWORD_LENGTH}),
          errors=(400, 403, 409, 422, 429)),
    Route("POST", "/api/auth/login", login, "Log in: sets the mm_session cookie.", tag="auth",
          body=_password_body({"type": "string"}), errors=(400, 401, 422, 429)),
    Route("POST", "/api/auth/logout", logout, "Log out: revokes the session.", tag="auth"),
    Route("POST", "/api/keys", create_key, "Create an API key (shown once).", access="admin", tag="auth",
          body=Body({"type": "object", "required": ["name"], "properties": {
              "name": {"type": "string", "minLength": 1, "maxLength": 128},
              "scope": {"type": "string", "enum": list(SCOPES), "default": "ReadOnly"}}}),
          replies={201: (JSON,)}, errors=(400, 422)),
    Route("GET", "/api/keys", list_keys, "List API keys (hashes only).", access="admin", tag="auth"),
    Route("DELETE", "/api/keys/{key_hash}", revoke_key, "Revoke an API key.", access="admin", tag="auth",
          params=(Param("key_hash", {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "The key's SHA-256 (from GET /api/keys).", required=True, where="path"),),
          errors=(404,)),
    Route("DELETE", "/api/gdpr/erase", erase, "Erase a site's events between two dates (inclusive).",
          access="admin", tag="admin", errors=(400, 503),
          params=(site_param(), date_param("start_date", "First day to erase.", required=True),
                  date_param("end_date", "Last day to erase (inclusive, at most 366 days later).",
                             required=True))),
)
