"""Plausible's ingestion limits and hash mode over HTTP, against a real ``mallard serve`` on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mallard._payload import parse_body
from mallard._privacy import Salts
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from mallard._tracker import Tracker

from .conftest import Live, serving
from .test_contract import stored

pytestmark = pytest.mark.slow  # a real mallard serve

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
SITE = "limits.example"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from serving("serve", tmp_path_factory, "plausible-ingest")


def post(c: httpx.Client, body: object) -> httpx.Response:
    return c.post("/api/event", content=orjson.dumps(body),
                  headers={"Content-Type": "text/plain", "User-Agent": UA})


def event(**fields: Any) -> dict[str, Any]:
    return {"domain": SITE, "name": "Signup", "url": f"https://{SITE}/", **fields}


OVER = {  # Plausible's limit, one past it: (body, the tracker's error code, words the answer must hold)
    "31-props": (event(props={f"k{i}": "v" for i in range(31)}), "too_many_props", "at most 30"),
    "key-301-bytes": (event(props={"k" * 301: "v"}), "prop_key_too_long", "300 bytes"),
    "value-2001-bytes": (event(props={"k": "é" * 1000 + "x"}), "prop_value_too_long", "2000 bytes"),
    "nested-object": (event(props={"k": {"a": "b"}}), "nested_prop", "nested"),
    "nested-array": (event(props='{"k": ["a"]}'), "nested_prop", "nested"),
    "name-121-chars": (event(name="n" * 121), "too_long", "120 characters"),
    "url-2001-bytes": (event(url=f"https://{SITE}/" + "a" * (2001 - len(f"https://{SITE}/"))), "too_long",
                       "2000 bytes"),
}
AT = {  # exactly at the limit: accepted
    "30-props": event(props={f"k{i:02}": "v" for i in range(30)}),
    "key-300-bytes": event(props={"k" * 300: "v"}),
    "value-2000-bytes": event(props={"k": "é" * 1000}),
    "name-120-chars": event(name="n" * 120),
    "url-2000-bytes": event(url=f"https://{SITE}/" + "a" * (2000 - len(f"https://{SITE}/"))),
}


@pytest.mark.parametrize(("body", "code", "words"), OVER.values(), ids=OVER.keys())
def test_past_a_plausible_limit_is_a_400_naming_it(serve: Live, body: dict[str, Any], code: str,
                                                   words: str) -> None:
    """One past each of Plausible's ingestion limits: 400, ``{"error": ...}`` naming the limit."""
    with serve.client() as c:
        response = post(c, body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"], response.text


@pytest.mark.parametrize("body", AT.values(), ids=AT.keys())
def test_at_a_plausible_limit_is_accepted(serve: Live, body: dict[str, Any]) -> None:
    """Exactly at each limit: stored (202)."""
    with serve.client() as c:
        assert post(c, body).status_code == 202


def test_hash_mode_keeps_the_fragment_in_the_stored_path(serve: Live) -> None:
    """``h: 1`` (Plausible's trackers, mallard.js's data-hash) stores ``/path#fragment``; without it, and
    with ``h: 0``, the fragment is dropped. The pixel takes ``h=1`` too."""
    site = "hash.example"
    with serve.client() as c:
        for h in (1, 0, None):
            body = {"d": site, "n": "pageview", "u": f"https://{site}/app/#/settings/team?tab=2",
                    **({} if h is None else {"h": h})}
            assert post(c, body).status_code == 202
        assert c.get("/api/event", params={"d": site, "u": f"https://{site}/docs#intro", "h": "1"},
                     headers={"User-Agent": UA}).status_code == 200
        rows = stored(serve.data_dir, site, 4)
    assert sorted(str(r["pathname"]) for r in rows) == [
        "/app", "/app", "/app#/settings/team?tab=2", "/docs#intro"]


@pytest.mark.parametrize(("body", "code", "words"), OVER.values(), ids=OVER.keys())
def test_past_a_plausible_limit_is_an_invalid_event_with_its_code(body: dict[str, Any], code: str,
                                                                  words: str, tmp_path: Path) -> None:
    """In Python (the pipeline behind ``Mallard.track``), each limit is its own error code."""
    tracker = Tracker(Settings(), salts=Salts(LocalState(tmp_path)), secret=b"k" * 32)
    (raw,) = parse_body(orjson.dumps(body))
    outcome = tracker.process(raw)
    assert outcome.error is not None and outcome.error.code == code, outcome
    assert words in outcome.error.message


@pytest.mark.parametrize("path", [
    "/js/script.js", "/js/plausible.js", "/js/script.hash.js", "/js/plausible.hash.outbound-links.js",
    "/js/script.file-downloads.hash.local.manual.outbound-links.pageview-props.revenue.tagged-events.js",
    "/js/script.compat.exclusions.js", "/js/pa-AqBGVqlDgFry_9WZW3j-D.js", "/js/pa-C4b1d4tXm7xemtcbC7WZk.js",
])
def test_plausible_script_variant_urls_serve_the_tracker(serve: Live, path: str) -> None:
    """Every Plausible variant name, and the per-site ``pa-<id>.js`` of Plausible's newer snippet, serves
    mallard.js itself (which reads its features from the name, or from ``plausible.init()``)."""
    with serve.client() as c:
        script = c.get("/mallard.js")
        variant = c.get(path)
    assert variant.status_code == 200
    assert variant.content == script.content
    assert variant.headers["content-type"].startswith("text/javascript")
    assert variant.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/js/script.nope.js", "/js/script.hash.x.js", "/js/plausible.hash..js"])
def test_unknown_script_variant_is_a_404_naming_the_extensions(serve: Live, path: str) -> None:
    with serve.client() as c:
        response = c.get(path)
    assert response.status_code == 404
    assert "outbound-links" in response.json()["error"]


@pytest.mark.parametrize("path", ["/js/pa-short.js", "/js/pa-AqBGVqlDgFry_9WZW3j-DX.js",
                                  "/js/pa-AqBGVqlDgFry.9WZW3j-D.js", "/js/pa-AqBGVqlDgFry%209WZW3j-D.js"])
def test_junk_site_script_id_is_a_404(serve: Live, path: str) -> None:
    """An id that is not Plausible's (21 letters, digits, ``_`` or ``-``) is a JSON 404 saying so (an
    empty one is an unknown path: a JSON 404 too)."""
    with serve.client() as c:
        response = c.get(path)
        empty = c.get("/js/pa-.js")
    assert response.status_code == 404
    assert "pa-<id>.js" in response.json()["error"]
    assert empty.status_code == 404 and empty.json()["error"]
