"""Static files served compressed (``mallard._http.assets``): gzip, and brotli when the ``brotli`` package
is importable, chosen by ``Accept-Encoding``, with ``Vary``, a distinct ETag per form and 304s; and through
every real host (uvicorn, gunicorn) the coding reaches the client intact."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mallard
from mallard._http import Api, Request
from mallard._http.assets import CODINGS, negotiate

from .conftest import Live

HAS_BROTLI = importlib.util.find_spec("brotli") is not None
DASHBOARD = Path(mallard.__file__).parent / "static" / "dashboard"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    m = mallard.Mallard(data_dir=tmp_path / "data")
    try:
        yield Api.for_mallard(m)
    finally:
        m.close()


def get(api: Api, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {"host": "127.0.0.1:8000", **{k.replace("_", "-"): v for k, v in headers.items()}}
    r = api.handle(Request("GET", path, "", sent, client="127.0.0.1"))
    return r.status, {k.lower(): v for k, v in r.headers}, r.body


def test_gzip_when_the_client_accepts_it(api: Api) -> None:
    raw = (DASHBOARD / "app.js").read_bytes()
    status, headers, body = get(api, "/app.js", accept_encoding="gzip, deflate")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(body) == raw and len(body) < len(raw)


def test_identity_when_the_client_names_no_coding_we_have(api: Api) -> None:
    raw = (DASHBOARD / "ui" / "chart.js").read_bytes()
    for accept in ("", "identity", "deflate", "gzip;q=0, br;q=0", "*;q=0"):
        status, headers, body = get(api, "/ui/chart.js", accept_encoding=accept)
        assert status == 200 and "content-encoding" not in headers and body == raw, accept
        assert "Accept-Encoding" in headers["vary"]  # the answer still depends on the header


@pytest.mark.skipif(not HAS_BROTLI, reason="the optional brotli package is not installed")
def test_brotli_first_when_accepted_and_installed(api: Api) -> None:
    import brotli

    raw = (DASHBOARD / "vendor" / "preact.module.js").read_bytes()
    status, headers, body = get(api, "/vendor/preact.module.js", accept_encoding="gzip, deflate, br, zstd")
    assert status == 200 and headers["content-encoding"] == "br"
    assert brotli.decompress(body) == raw
    assert negotiate("gzip, br") == ["br", "gzip"]
    assert negotiate("br;q=0, gzip") == ["gzip"]


def test_each_form_has_its_own_etag_and_revalidates(api: Api) -> None:
    forms = {}
    for accept in ("identity", "gzip", *(["br"] if "br" in CODINGS else [])):
        status, headers, _ = get(api, "/style.css", accept_encoding=accept)
        assert status == 200
        forms[accept] = headers["etag"]
        again, headers2, body = get(api, "/style.css", accept_encoding=accept, if_none_match=headers["etag"])
        assert again == 304 and body == b"" and headers2.get("content-encoding") == headers.get(
            "content-encoding")
    assert len(set(forms.values())) == len(forms), forms
    # The ETag of another form does not validate this one.
    assert get(api, "/style.css", accept_encoding="gzip", if_none_match=forms["identity"])[0] == 200


def test_a_bad_q_value_refuses_that_coding(api: Api) -> None:
    assert negotiate("gzip;q=abc") == []
    assert get(api, "/app.js", accept_encoding="gzip;q=abc")[1].get("content-encoding") is None


@pytest.mark.slow
def test_compressed_through_every_host(live: Live) -> None:
    """The adapters pass the coded body and its headers through untouched; httpx decodes it."""
    raw = (DASHBOARD / "ui" / "api.js").read_bytes()
    with httpx.Client(timeout=30) as c:
        r = c.get(live.base + "/ui/api.js", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.content == raw
        assert int(r.headers["content-length"]) < len(raw)
