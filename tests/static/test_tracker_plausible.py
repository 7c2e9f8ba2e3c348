"""mallard.js as a drop-in for Plausible's script: ``window.plausible`` and its queue, Plausible's call
options, the script variants chosen by the file name, tagged-event CSS classes, exclusions and
pageview props. Run in the fake DOM of test_tracker_script.py (the real browser: test_tracker_browser.py).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from .test_tracker_script import PAGE, events, names, run


def bodies(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [orjson.loads(request["body"]) for request in result["requests"]]


# -- window.plausible ----------------------------------------------------------------------------------
def test_plausible_queue_is_drained_after_the_pageview() -> None:
    """Calls made to Plausible's stub (window.plausible.q) before the script loads are sent, in order,
    after the pageview, as are mallard's own; window.plausible is then the tracker itself."""
    result = run(plausibleQueue=[["Signup", {"props": {"plan": "pro"}}], ["Second", None]],
                 queue=[["Mine", {}]], steps=[["plausible", "After", {}]])
    assert [raw.name for raw in events(result)] == ["pageview", "Mine", "Signup", "Second", "After"]
    assert events(result)[2].props == '{"plan":"pro"}'


def test_plausible_call_signature() -> None:
    """plausible(name, {props, revenue: {amount, currency}, u, interactive: false, callback})."""
    result = run(steps=[["plausible", "Purchase", {
        "props": {"plan": "pro"}, "revenue": {"amount": "19.90", "currency": "EUR"},
        "u": "https://shop.example/virtual", "interactive": False, "callback": True}]])
    body = bodies(result)[1]
    assert body == {"d": "shop.example", "n": "Purchase", "u": "https://shop.example/virtual", "r": None,
                    "w": 1280, "i": False, "p": '{"plan":"pro"}', "ra": 19.9, "rc": "EUR"}
    assert result["callbacks"] == [{"status": 202}]


def test_plausible_ignore_in_local_storage_opts_out() -> None:
    """Plausible's own opt-out key, localStorage.plausible_ignore = 'true', silences the script too."""
    assert run(plausibleIgnore="true")["requests"] == []


# -- variants by file name -------------------------------------------------------------------------------
@pytest.mark.parametrize("src", ["/js/script.hash.js", "/js/plausible.hash.js",
                                 "/js/script.file-downloads.hash.outbound-links.js"])
def test_hash_variant(src: str) -> None:
    """A hash variant sends h: 1 and the fragment, and counts a hash change as a pageview."""
    result = run(src=src, href=PAGE + "#/a", steps=[["hash", "#/b"]])
    assert [(b["u"], b.get("h")) for b in bodies(result)] == [(PAGE + "#/a", 1), (PAGE + "#/b", 1)]
    assert result["requests"][0]["url"] == "https://shop.example/api/event"


def test_data_hash_sends_h() -> None:
    """data-hash (mallard's attribute) is the same switch."""
    assert bodies(run({"hash": ""}, href=PAGE + "#/a"))[0]["h"] == 1
    assert "h" not in bodies(run(href=PAGE + "#/a"))[0]


def test_manual_variant_sends_no_automatic_pageview() -> None:
    """script.manual.js (or data-manual) sends no pageview on load or navigation; plausible('pageview',
    {u}) sends one with that URL."""
    steps = [["push", "/checkout"], ["plausible", "pageview", {"u": "https://shop.example/step/[id]"}]]
    for result in (run(src="/js/script.manual.js", steps=steps), run({"manual": ""}, steps=steps)):
        assert names(result) == [("pageview", "https://shop.example/step/[id]")]


@pytest.mark.parametrize(("src", "attrs"), [
    ("/js/script.outbound-links.file-downloads.js", {}),
    ("/js/plausible.js", {"outbound-links": "", "file-downloads": ""}),
    ("/_m/mallard.js", {"outbound": "", "downloads": ""}),
], ids=["variant", "plausible-attributes", "mallard-attributes"])
def test_outbound_and_download_variants(src: str, attrs: dict[str, str]) -> None:
    """outbound-links and file-downloads, from the file name or an attribute."""
    result = run(attrs, src=src, steps=[["click", "https://partner.example/x"], ["click", "/doc.pdf?a=1"]])
    assert [(raw.name, raw.props) for raw in events(result)[1:]] == [
        ("Outbound Link: Click", '{"url":"https://partner.example/x"}'),
        ("File Download", '{"url":"https://shop.example/doc.pdf"}')]


def test_plausible_file_type_attributes() -> None:
    """file-types replaces the download extensions, add-file-types adds to them (Plausible's names)."""
    steps = [["click", "/a.pdf"], ["click", "/b.epub"], ["click", "/c.abc"]]
    only = run(src="/js/script.file-downloads.js", plainAttrs={"file-types": "epub"}, steps=steps)
    added = run(src="/js/script.file-downloads.js", plainAttrs={"add-file-types": "abc"}, steps=steps)
    assert [raw.url for raw in events(only)[1:]] == [PAGE]
    assert [orjson.loads(raw.props or "")["url"] for raw in events(only)[1:]] == ["https://shop.example/b.epub"]
    assert [orjson.loads(raw.props or "")["url"] for raw in events(added)[1:]] == [
        "https://shop.example/a.pdf", "https://shop.example/b.epub", "https://shop.example/c.abc"]


def test_local_variant_tracks_localhost() -> None:
    """script.local.js tracks localhost, as data-include-local does."""
    href = "http://localhost:8000/"
    assert run(href=href, src="https://cdn.example/js/script.js")["requests"] == []
    assert names(run(href=href, src="https://cdn.example/js/script.local.js")) == [("pageview", href)]


# -- exclusions and pageview props ---------------------------------------------------------------------
@pytest.mark.parametrize(("attrs", "href", "sent"), [
    ({"exclude": "/admin/**"}, "https://shop.example/admin/users/1", False),
    ({"exclude": "/admin/**"}, "https://shop.example/pricing", True),
    ({"exclude": "/blog/*, /tmp"}, "https://shop.example/blog/post", False),
    ({"exclude": "/blog/*"}, "https://shop.example/blog/a/b", True),
    ({"include": "/docs/**"}, "https://shop.example/docs/x", True),
    ({"include": "/docs/**"}, "https://shop.example/pricing/", False),
], ids=["excluded-deep", "not-excluded", "excluded-one-segment", "star-is-one-segment", "included",
        "not-included"])
def test_exclusions(attrs: dict[str, str], href: str, sent: bool) -> None:
    """data-include / data-exclude: paths with * (one segment) and ** (any) wildcards, pageviews only."""
    result = run(attrs, href=href, steps=[["event", "Signup", {}]])
    assert [raw.name for raw in events(result)] == (["pageview", "Signup"] if sent else ["Signup"])


def test_pageview_props_attributes() -> None:
    """event-<key> attributes on the script tag are props of every event; an event's own props win."""
    result = run(plainAttrs={"event-author": "Ann", "event-plan": "free"},
                 steps=[["plausible", "Signup", {"props": {"plan": "pro"}}]])
    assert [raw.props for raw in events(result)] == ['{"author":"Ann","plan":"free"}',
                                                     '{"author":"Ann","plan":"pro"}']


# -- tagged events ---------------------------------------------------------------------------------------
TAGGED = "/js/script.tagged-events.js"


def test_tagged_element_click() -> None:
    """A click inside an element with class plausible-event-name=… sends that event, its other
    plausible-event-<key>=… classes as props ('+' read as a space), plausible-revenue-* as revenue."""
    chain = [{"tag": "span"}, {"tag": "button", "classes": [
        "btn", "plausible-event-name=Add+to+cart", "plausible-event-plan=pro+plus",
        "plausible-revenue-amount=9.50", "plausible-revenue-currency=USD"]}]
    (raw,) = events(run(src=TAGGED, steps=[["tagged", chain]]))[1:]
    assert (raw.name, raw.props, raw.revenue, raw.currency) == (
        "Add to cart", '{"plan":"pro plus"}', 9.5, "USD")


def test_tagged_link_adds_its_url_and_is_not_also_outbound() -> None:
    """A tagged link sends its event with props.url, and no Outbound Link: Click besides."""
    chain = [{"tag": "a", "classes": ["plausible-event-name--Partner"]}]
    result = run({"outbound-links": ""}, src=TAGGED, steps=[["tagged", chain, "https://partner.example/"]])
    assert [(raw.name, raw.props) for raw in events(result)[1:]] == [
        ("Partner", '{"url":"https://partner.example/"}')]


def test_tagged_form_submit_and_no_clicks_inside_forms() -> None:
    """A tagged form sends its event on submit; a click inside a form sends nothing."""
    form = [{"tag": "form", "classes": ["plausible-event-name=Newsletter"]}]
    steps = [["tagged", [{"tag": "button", "classes": ["plausible-event-name=Inner"]}, *form]],
             ["submit", form]]
    assert [raw.name for raw in events(run(src=TAGGED, steps=steps))[1:]] == ["Newsletter"]


def test_tagged_classes_need_the_variant_or_attribute() -> None:
    """Without tagged-events in the file name (or data-tagged-events) the classes are not read."""
    chain = [{"tag": "button", "classes": ["plausible-event-name=Signup"]}]
    assert names(run(steps=[["tagged", chain]])) == [("pageview", PAGE)]
    assert [raw.name for raw in events(run({"tagged-events": ""}, steps=[["tagged", chain]]))] == [
        "pageview", "Signup"]


@pytest.mark.parametrize("attrs", [{}, {"hash": ""}], ids=["plain", "hash-mode"])
def test_source_tags_of_the_landing_url_are_sent_unchanged(attrs: dict[str, str]) -> None:
    """?ref=, ?source= and utm_source reach the server as they are in the address bar (the server takes
    the source from them when there is no referrer)."""
    href = "https://shop.example/launch?ref=producthunt&source=Newsletter%202&utm_source=x%2By"
    (raw,) = events(run(attrs, href=href))
    assert raw.url == href
