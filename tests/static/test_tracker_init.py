"""mallard.js under Plausible's newer snippet: the per-site ``js/pa-<id>.js`` script and
``plausible.init(options)``, called before the script loads (the snippet keeps the options in
``plausible.o``) or after. Run in the fake DOM of test_tracker_script.py; the real browser against a real
``mallard serve``: test_tracker_pa_snippet.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from .test_tracker_script import PAGE, events, names, run

SRC = "/js/pa-AqBGVqlDgFry_9WZW3j-D.js"
WARNING = "plausible.init() ran already: ignored"


def snippet(init: str | None = "{}", **cfg: Any) -> dict[str, Any]:
    """The pa- script without data- attributes, after Plausible's snippet (``init``: the options as
    JavaScript source, None for a snippet that does not call init)."""
    return run(domain=None, src=cfg.pop("src", SRC), snippet=init, **cfg)


def bodies(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [orjson.loads(request["body"]) for request in result["requests"]]


def test_init_before_load_takes_the_options_the_snippet_kept() -> None:
    """plausible.init() called before the script loads: its domain, endpoint and hashBasedRouting;
    calls queued before are sent once, after the pageview."""
    result = snippet("{domain: 'app.example', endpoint: 'https://collect.example/e', hashBasedRouting: true}",
                     href=PAGE + "#/a", snippetQueue=[["Early", {"props": {"n": 1}}]],
                     steps=[["hash", "#/b"]])
    assert [(b["n"], b["d"], b["u"], b.get("h"), b.get("p")) for b in bodies(result)] == [
        ("pageview", "app.example", PAGE + "#/a", 1, None),
        ("Early", "app.example", PAGE + "#/a", 1, '{"n":1}'),
        ("pageview", "app.example", PAGE + "#/b", 1, None)]
    assert {r["url"] for r in result["requests"]} == {"https://collect.example/e"}


@pytest.mark.parametrize(("src", "endpoint"), [
    (SRC, "https://shop.example/api/event"),
    ("/_m" + SRC, "https://shop.example/_m/api/event"),
    ("https://stats.example" + SRC + "?v=2", "https://stats.example/api/event"),
])
def test_site_and_endpoint_without_options(src: str, endpoint: str) -> None:
    """plausible.init() without options: the site is the page's host name, the endpoint the script's
    URL with js/pa-<id>.js replaced by api/event."""
    result = snippet(src=src)
    assert [(b["d"], r["url"]) for b, r in zip(bodies(result), result["requests"], strict=True)] == [
        ("shop.example", endpoint)]


def test_data_domain_is_the_site_when_init_names_none() -> None:
    """A data-domain on the script tag is the site unless init() names one."""
    assert bodies(run(src=SRC, snippet="{}"))[0]["d"] == "shop.example"
    assert bodies(run(src=SRC, snippet="{domain: 'other.example'}"))[0]["d"] == "other.example"


def test_init_after_load() -> None:
    """Without init() the pa- script sends nothing and queues calls; init() after load starts it: the
    pageview, then the queued call, once."""
    steps = [["plausible", "Before", {}]]
    assert snippet(None, steps=steps)["requests"] == []
    result = snippet(None, steps=[*steps, ["init", "{domain: 'late.example'}"], ["plausible", "After", {}]])
    assert [(raw.site, raw.name) for raw in events(result)] == [
        ("late.example", "pageview"), ("late.example", "Before"), ("late.example", "After")]


def test_init_without_the_snippet_after_load() -> None:
    """The pa- script loaded with no snippet at all defines the queue and plausible.init itself."""
    result = run(domain=None, src=SRC, steps=[["plausible", "Before", {}], ["init", ""]])
    assert [raw.name for raw in events(result)] == ["pageview", "Before"]


def test_second_init_is_ignored_with_a_warning() -> None:
    """A second init() changes nothing and warns on the console, as Plausible's script does; with
    logging: false it is silent."""
    result = snippet(steps=[["init", "{domain: 'other.example', hashBasedRouting: true}"], ["push", "/x"]])
    assert [(b["d"], b.get("h")) for b in bodies(result)] == [("shop.example", None), ("shop.example", None)]
    assert result["warnings"] == [WARNING]
    assert snippet(steps=[["init", "{logging: false}"]])["warnings"] == []
    legacy = run(steps=[["init", "{}"]])  # the classic script name: already started on load
    assert (names(legacy), legacy["warnings"]) == ([("pageview", PAGE)], [WARNING])


def test_script_loaded_twice_starts_once() -> None:
    """The pa- script included a second time warns as a second init() does and tracks nothing twice."""
    result = snippet(steps=[["load"], ["push", "/x"]])
    assert [raw.url for raw in events(result)] == [PAGE, "https://shop.example/x"]
    assert result["warnings"] == [WARNING]


@pytest.mark.parametrize(("props", "sent"), [
    ("{author: 'Ann', plan: 'free'}", ['{"author":"Ann","plan":"free"}', '{"author":"Ann","plan":"pro"}']),
    ("(n) => ({event: n})", ['{"event":"pageview"}', '{"event":"Signup","plan":"pro"}']),
    ("'abc'", [None, '{"plan":"pro"}']),
    ("() => 'abc'", [None, '{"plan":"pro"}']),
], ids=["object", "function", "invalid-string", "function-returning-a-string"])
def test_custom_properties(props: str, sent: list[str | None]) -> None:
    """customProperties, an object or a function of the event name, are props of every event; an
    event's own props win; anything else is ignored."""
    steps = [["plausible", "Signup", {"props": {"plan": "pro"}}]]
    result = snippet(f"{{customProperties: {props}}}", steps=steps)
    assert [raw.props for raw in events(result)] == sent


def test_transform_request() -> None:
    """transformRequest gets the payload (p as an object) and may change it; a falsy answer drops the
    event, whose callback gets status 0."""
    transform = ("{transformRequest: (b) => b.n == 'Drop' ? null : "
                 "(b.u = b.u.replace(/\\d+/g, '_ID_'), b.p && delete b.p.url, b)}")
    result = snippet(transform, href="https://shop.example/project/123/settings",
                     steps=[["plausible", "Click", {"props": {"url": "https://x.example/", "k": "v"}}],
                            ["plausible", "Drop", {"callback": True}]])
    assert [(raw.name, raw.url, raw.props) for raw in events(result)] == [
        ("pageview", "https://shop.example/project/_ID_/settings", None),
        ("Click", "https://shop.example/project/_ID_/settings", '{"k":"v"}')]
    assert result["callbacks"] == [{"status": 0}]


def test_feature_options() -> None:
    """outboundLinks, fileDownloads with fileExtensions, autoCapturePageviews: false, and tagged events
    (always on under init, as in Plausible's script)."""
    options = "{outboundLinks: true, fileDownloads: {fileExtensions: ['epub']}, autoCapturePageviews: false}"
    steps = [["push", "/next"], ["click", "https://partner.example/x"], ["click", "/a.pdf"],
             ["click", "/b.epub"], ["tagged", [{"tag": "button", "classes": ["plausible-event-name=Buy"]}]]]
    assert [(raw.name, raw.props) for raw in events(snippet(options, steps=steps))] == [
        ("Outbound Link: Click", '{"url":"https://partner.example/x"}'),
        ("File Download", '{"url":"https://shop.example/b.epub"}'),
        ("Buy", None)]


def test_file_downloads_true_uses_the_default_extensions() -> None:
    """fileDownloads: true counts the default extensions."""
    result = snippet("{fileDownloads: true}", steps=[["click", "/a.pdf"], ["click", "/b.epub"]])
    assert [raw.name for raw in events(result)] == ["pageview", "File Download", "File Download"]


def test_capture_on_localhost() -> None:
    """captureOnLocalhost tracks localhost pages, which are skipped otherwise."""
    href = "http://localhost:8000/"
    assert snippet(href=href)["requests"] == []
    assert names(snippet("{captureOnLocalhost: true}", href=href)) == [("pageview", href)]


def test_form_submissions() -> None:
    """formSubmissions sends Form: Submission for a valid (or novalidate) form that is not tagged."""
    steps = [["submit", [{"tag": "form"}]], ["submit", [{"tag": "form", "valid": False}]],
             ["submit", [{"tag": "form", "valid": False, "attrs": {"novalidate": ""}}]],
             ["submit", [{"tag": "form", "classes": ["plausible-event-name=Signup"]}]]]
    assert [raw.name for raw in events(snippet("{formSubmissions: true}", steps=steps))] == [
        "pageview", "Form: Submission", "Form: Submission", "Signup"]
    assert [raw.name for raw in events(snippet(steps=steps))] == ["pageview", "Signup"]
