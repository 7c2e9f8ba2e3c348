"""The browser tracker ``mallard/static/mallard.js``: size, syntax, privacy, behaviour in a fake DOM."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from mallard._payload import RawEvent, parse_body

SCRIPT = Path(__file__).resolve().parents[2] / "mallard" / "static" / "mallard.js"
BUDGET = 3100
NODE = shutil.which("node") or "node"

# A fake browser for one scenario, run in a fresh `vm` context. The scenario (JSON on stdin) gives the
# <script> attributes, the page, the browser's state and a list of steps; the harness prints every request
# the script made (beacon or fetch), every callback it invoked and any exception that reached the page.
HARNESS = r"""
const vm = require('vm'), fs = require('fs');
const cfg = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = {requests: [], callbacks: [], thrown: [], warnings: []};
const listeners = {window: {}, document: {}};
const on = (who) => (type, fn) => { (listeners[who][type] = listeners[who][type] || []).push(fn); };
const fire = (who, type, ev) => (listeners[who][type] || []).forEach((fn) => fn(ev || {type}));
const loc = {};
const go = (url) => {
  const u = new URL(url, loc.href || undefined);
  for (const k of ['href', 'protocol', 'host', 'hostname', 'pathname', 'search', 'hash', 'origin']) {
    loc[k] = u[k];
  }
};
go(cfg.href);
const attrs = Object.fromEntries(Object.entries(cfg.attrs).map(([k, v]) => ['data-' + k, v]));
Object.assign(attrs, cfg.plainAttrs || {});  // attributes without the data- prefix (file-types, event-*)
const script = {
  src: cfg.src ? new URL(cfg.src, cfg.href).href : '',
  getAttribute: (n) => (n in attrs ? attrs[n] : null),
  hasAttribute: (n) => n in attrs,
  getAttributeNames: () => Object.keys(attrs),
};
const document = {
  currentScript: cfg.currentScript === false ? null : script,
  referrer: cfg.referrer || '',
  visibilityState: cfg.visibility || 'visible',
  title: cfg.title || '',
  addEventListener: on('document'),
  querySelector: (sel) => {
    if (sel === 'script[data-domain]') return 'data-domain' in attrs ? script : null;
    if (sel === 'meta[name="mallard-404"]') return cfg.meta404 ? {} : null;
    throw new Error('unexpected selector ' + sel);
  },
};
const navigator = {doNotTrack: cfg.dnt, globalPrivacyControl: cfg.gpc};
if (cfg.beacon !== 'missing') {
  navigator.sendBeacon = (url, blob) => {
    out.requests.push({via: 'beacon', url, type: blob.type, body: blob.parts.join('')});
    return cfg.beacon !== 'false';
  };
}
class Blob { constructor(parts, opts) { this.parts = parts; this.type = (opts || {}).type; } }
const fetch = (url, init) => {
  out.requests.push({via: 'fetch', url, method: init.method, keepalive: init.keepalive,
                     headers: init.headers, body: init.body});
  return cfg.fetchStatus === 0 ? Promise.reject(new TypeError('network'))
                               : Promise.resolve({status: cfg.fetchStatus || 202});
};
const store = {mallard_ignore: cfg.ignore, plausible_ignore: cfg.plausibleIgnore};
const localStorage = {
  getItem: (k) => (k in store && store[k] !== undefined ? store[k] : null),
  setItem: () => { throw new Error('setItem called'); },
};
const history = {
  pushState(state, title, url) { go(url); },
  replaceState(state, title, url) { go(url); },
};
const window = {location: loc, history, innerWidth: 1280, addEventListener: on('window')};
window.window = window;
const fakeConsole = {warn: (...args) => out.warnings.push(args.join(' '))};
Object.assign(window, {document, navigator, localStorage, URL, Blob, fetch, console: fakeConsole});
vm.createContext(window);
const run = (code) => {
  try { vm.runInContext(code, window); } catch (e) { out.thrown.push(String(e)); }
};
const call = (fn, ...args) => { try { fn(...args); } catch (e) { out.thrown.push(String(e)); } };
const opts = (o) => {
  if (o && o.callback) o = {...o, callback: (r) => out.callbacks.push(r)};
  return o;
};
if (cfg.queue) {
  run('window.mallard = window.mallard || function () {' +
      '(window.mallard.q = window.mallard.q || []).push(arguments)}');
  for (const [name, o] of cfg.queue) call(window.mallard, name, opts(o));
}
if (cfg.plausibleQueue) {  // Plausible's snippet
  run('window.plausible = window.plausible || function () {' +
      '(window.plausible.q = window.plausible.q || []).push(arguments)}');
  for (const [name, o] of cfg.plausibleQueue) call(window.plausible, name, opts(o));
}
if (cfg.snippet !== undefined) {  // Plausible's pa-<id>.js snippet; snippet: init's argument (JS) or null
  run('window.plausible=window.plausible||function(){(plausible.q=plausible.q||[]).push(arguments)},' +
      'plausible.init=plausible.init||function(i){plausible.o=i||{}}');
  for (const [name, o] of cfg.snippetQueue || []) call(window.plausible, name, opts(o));
  if (cfg.snippet !== null) run('plausible.init(' + cfg.snippet + ')');
}
// An element and its ancestors, innermost first: [{tag, classes, attrs, valid}], the last one's parent
// being null.
const element = (chain, href) => chain.reduceRight((parent, {tag, classes, attrs, valid}) => ({
  tagName: (tag || 'div').toUpperCase(), classList: classes || [], parentNode: parent,
  closest: (sel) => (sel === 'a[href]' && href ? {href: new URL(href, loc.href).href} : null),
  hasAttribute: (n) => n in (attrs || {}), checkValidity: () => valid !== false,
}), null);
run(fs.readFileSync(cfg.script, 'utf8'));
for (const [op, arg, extra] of cfg.steps || []) {
  if (op === 'push') call(() => window.history.pushState({}, '', arg));
  else if (op === 'replace') call(() => window.history.replaceState({}, '', arg));
  else if (op === 'pop') { go(arg); call(fire, 'window', 'popstate'); }
  else if (op === 'hash') { go(arg); call(fire, 'window', 'popstate'); call(fire, 'window', 'hashchange'); }
  else if (op === 'event') call(window.mallard, arg, opts(extra));
  else if (op === 'plausible') call(window.plausible, arg, opts(extra));
  else if (op === 'init') run('plausible.init(' + arg + ')');  // arg: JavaScript source of the options
  else if (op === 'load') run(fs.readFileSync(cfg.script, 'utf8'));  // the script included once more
  else if (op === 'tagged') {
    call(fire, 'document', 'click', {type: 'click', button: 0, target: element(arg, extra)});
  } else if (op === 'submit') call(fire, 'document', 'submit', {type: 'submit', target: element(arg)});
  else if (op === 'visible') {
    document.visibilityState = 'visible';
    call(fire, 'document', 'visibilitychange');
  }
  else if (op === 'ignore') store.mallard_ignore = arg;
  else if (op === 'cyclic') { const p = {}; p.self = p; call(window.mallard, 'x', {props: p}); }
  else if (op === 'oddclick') call(fire, 'document', 'click', {type: 'click', button: 0, target: {}});
  else if (op === 'click' || op === 'auxclick') {
    const href = new URL(arg, loc.href).href, button = extra || (op === 'click' ? 0 : 1);
    const target = {closest: (sel) => (sel === 'a[href]' ? {href} : null)};
    call(fire, 'document', op, {type: op, button, target});
  } else throw new Error('unknown step ' + op);
}
setTimeout(() => process.stdout.write(JSON.stringify(out)), 0);
"""

PAGE = "https://shop.example/pricing?plan=pro"


def run(attrs: dict[str, str] | None = None, *, domain: str | None = "shop.example",
        **cfg: Any) -> dict[str, Any]:
    """Run the tracker in the fake browser and return what it did."""
    site = {} if domain is None else {"domain": domain}
    scenario = {"script": str(SCRIPT), "href": PAGE, "src": "/_m/mallard.js",
                "attrs": {**site, **(attrs or {})}, **cfg}
    done = subprocess.run([NODE, "-e", HARNESS], input=json.dumps(scenario), capture_output=True,
                          text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["thrown"] == [], result["thrown"]
    return result


def events(result: dict[str, Any]) -> list[RawEvent]:
    """Every body the script sent, parsed by the server's own parser (one event per body)."""
    parsed = []
    for request in result["requests"]:
        (raw,) = parse_body(request["body"])
        parsed.append(raw)
    return parsed


def names(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, url) of every event sent."""
    return [(raw.name, raw.url) for raw in events(result)]


# -- the file itself ---------------------------------------------------------------------------------
def test_gzipped_size_is_within_budget() -> None:
    """The script stays within 3,100 bytes gzipped at level 9 (every Plausible variant's features,
    engagement reports and plausible.init()'s options in one)."""
    size = len(gzip.compress(SCRIPT.read_bytes(), compresslevel=9))
    assert size <= BUDGET, f"mallard.js is {size} bytes gzipped (-9), budget {BUDGET}"


def test_node_accepts_the_syntax() -> None:
    """`node --check` parses the script."""
    done = subprocess.run([NODE, "--check", str(SCRIPT)], capture_output=True, text=True, timeout=10,
                          check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("forbidden", ["document.cookie", "localStorage.setItem", "sessionStorage"])
def test_no_cookies_or_storage_writes(forbidden: str) -> None:
    """The script never touches cookies, never writes localStorage and never uses sessionStorage."""
    assert forbidden not in SCRIPT.read_text()


def test_sends_only_the_wire_format_keys() -> None:
    """Every key of the payload literals (events, engagement reports) and their additions is one of
    {d, n, u, r, w, p, ra, rc, h, i, sd, e}."""
    source = SCRIPT.read_text()
    literals = re.findall(r"\bb=\{(.*?)\};", source)
    assert len(literals) == 2
    keys = {k for lit in literals for k in re.findall(r"(?:^|,)(\w+):", lit)}
    keys |= set(re.findall(r"\bb\.(\w+)=", source))
    assert keys == {"d", "n", "u", "r", "w", "p", "ra", "rc", "h", "i", "sd", "e"}


# -- pageviews and the endpoint ----------------------------------------------------------------------
def test_pageview_on_load() -> None:
    """Loading the script sends one pageview beacon, text/plain, that the server parses."""
    result = run(referrer="https://news.example/item?id=1")
    (request,) = result["requests"]
    assert request["via"] == "beacon"
    assert request["type"] == "text/plain"
    assert request["url"] == "https://shop.example/_m/api/event"
    assert set(orjson.loads(request["body"])) == {"d", "n", "u", "r", "w"}
    assert events(result) == [RawEvent(site="shop.example", name="pageview", url=PAGE,
                                       referrer="https://news.example/item?id=1", screen_width=1280)]


@pytest.mark.parametrize(("src", "endpoint"), [
    ("/_m/mallard.js", "https://shop.example/_m/api/event"),
    ("/mallard.js", "https://shop.example/api/event"),
    ("/js/script.js", "https://shop.example/api/event"),
    ("/a/b/js/script.js?v=2", "https://shop.example/a/b/api/event"),
    ("https://stats.example/x/mallard.js", "https://stats.example/x/api/event"),
])
def test_endpoint_is_derived_from_the_script_url(src: str, endpoint: str) -> None:
    """Without data-api the endpoint replaces mallard.js or js/script.js in the script's URL by api/event."""
    (request,) = run(src=src)["requests"]
    assert request["url"] == endpoint


def test_data_api_overrides_the_endpoint() -> None:
    """A data-api attribute is used as the endpoint as is."""
    (request,) = run({"api": "https://collect.example/e"})["requests"]
    assert request["url"] == "https://collect.example/e"


def test_falls_back_to_the_first_script_with_data_domain() -> None:
    """Without document.currentScript (injected scripts) the script[data-domain] element is used."""
    assert names(run(currentScript=False)) == [("pageview", PAGE)]


def test_missing_domain_sends_nothing() -> None:
    """Without data-domain the script does nothing and does not throw."""
    assert run(domain=None, steps=[["push", "/a"]], queue=[["Signup", {}]])["requests"] == []
    assert run(domain=None, currentScript=False)["requests"] == []


def test_same_host_referrer_is_dropped() -> None:
    """A referrer on the page's own host is sent as null."""
    (raw,) = events(run(referrer="https://shop.example/"))
    assert raw.referrer is None


def test_hash_is_not_part_of_the_url_by_default() -> None:
    """Without data-hash the fragment is stripped from u."""
    (raw,) = events(run(href=PAGE + "#faq"))
    assert raw.url == PAGE


# -- single-page applications ------------------------------------------------------------------------
def test_push_state_to_a_new_path_sends_one_pageview_without_referrer() -> None:
    """pushState to another path sends one pageview, whose referrer is null."""
    result = run(referrer="https://news.example/", steps=[["push", "/checkout"]])
    first, second = events(result)
    assert (first.url, first.referrer) == (PAGE, "https://news.example/")
    assert (second.name, second.url, second.referrer) == ("pageview", "https://shop.example/checkout", None)


def test_push_state_to_the_same_page_sends_nothing() -> None:
    """pushState to the same path and query (a state or hash change only) sends no pageview."""
    result = run(steps=[["push", PAGE], ["push", "#top"], ["replace", PAGE]])
    assert names(result) == [("pageview", PAGE)]


def test_query_change_counts_as_a_new_page() -> None:
    """A change of the query string is a new page."""
    result = run(steps=[["push", "/pricing?plan=team"]])
    assert names(result)[1] == ("pageview", "https://shop.example/pricing?plan=team")


def test_replace_state_and_popstate() -> None:
    """replaceState to a new path and a popstate back each send one pageview."""
    result = run(steps=[["replace", "/a"], ["pop", PAGE], ["pop", PAGE]])
    assert names(result) == [("pageview", PAGE), ("pageview", "https://shop.example/a"), ("pageview", PAGE)]


def test_hashchange_is_ignored_without_data_hash() -> None:
    """Without data-hash a hash change sends nothing."""
    assert names(run(steps=[["hash", "#/settings"]])) == [("pageview", PAGE)]


def test_hashchange_sends_a_pageview_with_data_hash() -> None:
    """With data-hash each hash change sends one pageview whose url keeps the fragment."""
    result = run({"hash": ""}, steps=[["hash", "#/settings"], ["hash", "#/settings"], ["hash", "#/a"]])
    assert [url for _, url in names(result)] == [PAGE, PAGE + "#/settings", PAGE + "#/a"]


def test_prerendered_page_sends_its_pageview_once_when_shown() -> None:
    """A prerendered page sends nothing until it becomes visible, then one pageview."""
    assert run(visibility="prerender")["requests"] == []
    result = run(visibility="prerender", steps=[["visible"], ["visible"]])
    assert names(result) == [("pageview", PAGE)]


# -- custom events and the queue ---------------------------------------------------------------------
def test_custom_event_with_props_and_revenue() -> None:
    """mallard(name, {props, revenue, currency}) sends p as a JSON string, ra and rc."""
    result = run(steps=[["event", "Purchase", {"props": {"plan": "pro", "seats": 3}, "revenue": 49.9,
                                               "currency": "EUR"}]])
    body = orjson.loads(result["requests"][1]["body"])
    assert isinstance(body["p"], str)
    raw = events(result)[1]
    assert (raw.site, raw.name, raw.url) == ("shop.example", "Purchase", PAGE)
    assert orjson.loads(raw.props) == {"plan": "pro", "seats": 3}  # type: ignore[arg-type]
    assert (raw.revenue, raw.currency) == (49.9, "EUR")


def test_custom_event_url_and_referrer_options() -> None:
    """The url and referrer options replace the page's own."""
    result = run(steps=[["event", "Signup", {"url": "/virtual/step-2", "referrer": "https://ads.example/"}]])
    raw = events(result)[1]
    assert (raw.url, raw.referrer) == ("/virtual/step-2", "https://ads.example/")


def test_calls_queued_before_load_are_replayed_in_order() -> None:
    """Calls made to the stub before the script loads are sent after the pageview, in order."""
    result = run(queue=[["First", {}], ["Second", {"props": {"n": 2}}], ["Third", None]])
    assert [raw.name for raw in events(result)] == ["pageview", "First", "Second", "Third"]
    assert events(result)[2].props == '{"n":2}'


def test_callback_receives_the_status_through_fetch() -> None:
    """With a callback the event goes through a keepalive fetch and the callback gets {status}."""
    result = run(steps=[["event", "Signup", {"callback": True}]])
    request = result["requests"][1]
    assert request["via"] == "fetch"
    assert (request["method"], request["keepalive"]) == ("POST", True)
    assert request["headers"] == {"Content-Type": "text/plain"}
    assert request["url"] == "https://shop.example/_m/api/event"
    assert result["callbacks"] == [{"status": 202}]


def test_callback_gets_status_zero_on_network_error() -> None:
    """A failed fetch calls the callback with status 0."""
    result = run(fetchStatus=0, steps=[["event", "Signup", {"callback": True}]])
    assert result["callbacks"] == [{"status": 0}]


@pytest.mark.parametrize("beacon", ["missing", "false"])
def test_fetch_is_the_fallback_when_the_beacon_is_unavailable(beacon: str) -> None:
    """Without sendBeacon, or when it refuses the data, the event goes through a keepalive fetch."""
    result = run(beacon=beacon)
    vias = [r["via"] for r in result["requests"]]
    assert vias == (["fetch"] if beacon == "missing" else ["beacon", "fetch"])
    assert result["requests"][-1]["keepalive"] is True
    assert names(result)[-1] == ("pageview", PAGE)


# -- opt-outs ----------------------------------------------------------------------------------------
def test_localstorage_opt_out_sends_nothing() -> None:
    """localStorage.mallard_ignore === 'true' silences the script; callbacks still get {status: 0}."""
    result = run(ignore="true", steps=[["push", "/a"], ["event", "Signup", {"callback": True}]])
    assert result["requests"] == []
    assert result["callbacks"] == [{"status": 0}]


def test_opt_out_set_later_takes_effect() -> None:
    """Setting the opt-out after load stops the following events."""
    result = run(steps=[["ignore", "true"], ["event", "Signup", {}]])
    assert names(result) == [("pageview", PAGE)]


@pytest.mark.parametrize(("nav", "sent"), [
    ({"dnt": "1"}, False), ({"gpc": True}, False), ({"dnt": "0", "gpc": False}, True), ({}, True),
])
def test_honor_dnt(nav: dict[str, Any], sent: bool) -> None:
    """With data-honor-dnt, Do-Not-Track '1' or Global Privacy Control skip tracking."""
    assert bool(run({"honor-dnt": ""}, **nav)["requests"]) is sent


def test_dnt_is_ignored_without_data_honor_dnt() -> None:
    """Without data-honor-dnt the DNT and GPC signals do not stop the pageview."""
    assert len(run(dnt="1", gpc=True)["requests"]) == 1


@pytest.mark.parametrize("href", ["http://localhost:8000/", "http://127.0.0.1/x", "http://[::1]:3000/",
                                  "file:///home/me/index.html"])
def test_local_pages_are_skipped_unless_included(href: str) -> None:
    """localhost, 127.0.0.1, [::1] and file: pages are skipped unless data-include-local is present."""
    src = "https://cdn.example/mallard.js"
    assert run(href=href, src=src)["requests"] == []
    assert names(run({"include-local": ""}, href=href, src=src)) == [("pageview", href)]


# -- automatic events --------------------------------------------------------------------------------
def test_outbound_link_click() -> None:
    """With data-outbound, left and middle clicks on links to another host send Outbound Link: Click."""
    steps = [["click", "https://partner.example/deal?x=1"], ["auxclick", "https://partner.example/b"],
             ["auxclick", "https://partner.example/c", 2], ["click", "/internal"], ["click", "mailto:a@b.c"]]
    result = run({"outbound": ""}, steps=steps)
    sent = events(result)[1:]
    assert [(raw.name, raw.props) for raw in sent] == [
        ("Outbound Link: Click", '{"url":"https://partner.example/deal?x=1"}'),
        ("Outbound Link: Click", '{"url":"https://partner.example/b"}'),
    ]
    assert names(run(steps=steps)) == [("pageview", PAGE)]


def test_file_download_click() -> None:
    """With data-downloads, clicks on links to files with a listed extension send File Download."""
    steps = [["click", "/files/Report.PDF?token=secret"], ["click", "/about"], ["click", "/a.html"]]
    result = run({"downloads": ""}, steps=steps)
    assert [(raw.name, raw.props) for raw in events(result)[1:]] == [
        ("File Download", '{"url":"https://shop.example/files/Report.PDF"}'),
    ]
    assert names(run(steps=steps)) == [("pageview", PAGE)]


def test_download_extensions_can_be_overridden() -> None:
    """data-download-ext replaces the default extension list."""
    steps = [["click", "/a.pdf"], ["click", "/b.epub"], ["click", "/c.tar.gz"]]
    result = run({"downloads": "", "download-ext": "epub, .gz"}, steps=steps)
    assert [orjson.loads(raw.props)["url"] for raw in events(result)[1:]] == [  # type: ignore[arg-type]
        "https://shop.example/b.epub", "https://shop.example/c.tar.gz"]


def test_404_event_follows_the_pageview_on_marked_pages() -> None:
    """With data-404, a page holding <meta name="mallard-404"> sends its pageview then "404" with {path}."""
    result = run({"404": ""}, meta404=True)
    assert [(raw.name, raw.props) for raw in events(result)] == [
        ("pageview", None), ("404", '{"path":"/pricing"}')]
    assert names(run(meta404=True)) == [("pageview", PAGE)]
    assert names(run({"404": ""}, title="404 Not Found")) == [("pageview", PAGE)]


def test_never_throws_into_the_page() -> None:
    """Unserialisable props and odd click targets raise nothing into the page (run() checks thrown)."""
    result = run({"outbound": "", "downloads": ""}, steps=[["cyclic"], ["oddclick"], ["event", "ok", {}]])
    assert [raw.name for raw in events(result)] == ["pageview", "ok"]
