"""Plausible's vocabulary in the v2 query API: the names it shows and accepts for devices, operating systems,
browsers, versions, sources and missing values, and the location names, on traffic tracked with real
User-Agents (tests/queries/plausible_traffic.py). Mallard Metrics' own presets keep the stored values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mallard._queries import Queries
from mallard._settings import Settings
from mallard._store import Store

from .plausible_traffic import SITE, VISITORS, write_traffic

NOW = datetime(2024, 9, 11, 12, 0, tzinfo=UTC)
RANGE = ["2024-09-01", "2024-09-10"]


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queries]:
    data_dir = tmp_path_factory.mktemp("vocabulary") / "data"
    write_traffic(data_dir, NOW)
    store = Store(data_dir, read_only=True)
    yield Queries(store, Settings(data_dir=data_dir), clock=lambda: NOW)
    store.close()


def v2(queries: Queries, metrics: list[str], dimensions: list[str] = [],  # noqa: B006
       filters: list[Any] = []) -> dict[tuple[Any, ...], list[Any]]:  # noqa: B006
    body = queries.query_json({"site_id": SITE, "metrics": metrics, "date_range": RANGE,
                               "dimensions": dimensions, "filters": filters}).to_dict()
    return {tuple(r["dimensions"]): r["metrics"] for r in body["results"]}


def counted(attribute: str) -> dict[tuple[Any, ...], list[Any]]:
    return {(value,): [n] for value, n in Counter(getattr(v, attribute) for v in VISITORS).items()}


@pytest.mark.parametrize("attribute", ["browser", "os", "os_version", "device"])
def test_dimensions_report_plausible_names(queries: Queries, attribute: str) -> None:
    assert v2(queries, ["visitors"], [f"visit:{attribute}"]) == counted(attribute)


@pytest.mark.parametrize("attribute", ["browser", "os", "os_version", "device"])
def test_is_filter_matches_plausible_names(queries: Queries, attribute: str) -> None:
    for value, n in Counter(getattr(v, attribute) for v in VISITORS).items():
        got = v2(queries, ["visitors"], filters=[["is", f"visit:{attribute}", [value]]])
        assert got == {(): [n]}, value
        got = v2(queries, ["visitors"], filters=[["is_not", f"visit:{attribute}", [value]]])
        assert got == {(): [len(VISITORS) - n]}, value


def test_documentation_example_filter_linux_and_mac(queries: Queries) -> None:
    wanted = sum(v.os in ("GNU/Linux", "Mac") for v in VISITORS)
    assert wanted == 2
    got = v2(queries, ["visitors"], filters=[["is", "visit:os", ["GNU/Linux", "Mac"]]])
    assert got == {(): [wanted]}


@pytest.mark.parametrize(("op", "dim", "value", "attribute", "test"), [
    ("contains", "visit:os", "GNU/", "os", lambda s: "GNU/" in s),
    ("matches", "visit:browser", "^Microsoft", "browser", lambda s: s.startswith("Microsoft")),
    ("contains_not", "visit:browser", "Browser", "browser", lambda s: "Browser" not in s),
    ("matches", "visit:os_version", "^1[0-7]\\.[0-9]+$", "os_version",
     lambda s: s.split(".")[0] in {str(n) for n in range(10, 18)} and s.count(".") == 1),
], ids=["contains-gnu-linux", "matches-microsoft-edge", "contains-not-samsung-browser",
        "matches-major-minor"])
def test_other_operators_see_plausible_names(queries: Queries, op: str, dim: str, value: str,
                                             attribute: str, test: Any) -> None:
    wanted = sum(bool(test(getattr(v, attribute))) for v in VISITORS)
    assert 0 < wanted < len(VISITORS)
    assert v2(queries, ["visitors"], filters=[[op, dim, [value]]]) == {(): [wanted]}


def test_sources_say_direct_none(queries: Queries) -> None:
    google = sum(v.google for v in VISITORS)
    assert v2(queries, ["visitors"], ["visit:source", "visit:referrer"]) == {
        ("Google", "google.com"): [google], ("Direct / None", "Direct / None"): [len(VISITORS) - google]}
    assert v2(queries, ["visitors"], filters=[["is", "visit:source", ["Direct / None"]]]) == {
        (): [len(VISITORS) - google]}


def test_missing_utm_is_not_set(queries: Queries) -> None:
    tagged = sum(v.campaign is not None for v in VISITORS)
    assert v2(queries, ["visitors"], ["visit:utm_campaign"]) == {
        ("Referral",): [tagged], ("(not set)",): [len(VISITORS) - tagged]}
    assert v2(queries, ["visitors"], filters=[["is", "visit:utm_campaign", ["(not set)"]]]) == {
        (): [len(VISITORS) - tagged]}


def test_location_names(queries: Queries) -> None:
    pairs = Counter((v.country_name, v.city) for v in VISITORS)
    assert v2(queries, ["visitors"], ["visit:country_name", "visit:city_name"]) == {
        pair: [n] for pair, n in pairs.items()}
    assert v2(queries, ["visitors"], filters=[["is", "visit:country_name", ["Estonia", "Germany"]]]) == {
        (): [sum(v.country_name in ("Estonia", "Germany") for v in VISITORS)]}


def test_region_filter_takes_iso_codes(queries: Queries) -> None:
    """Plausible stores regions as ISO 3166-2 codes; mallard matches them to the stored English names."""
    wanted = sum(v.region in ("DE-BE", "EE-37") for v in VISITORS)
    assert wanted > 0
    assert v2(queries, ["visitors"], filters=[["is", "visit:region", ["DE-BE", "EE-37"]]]) == {(): [wanted]}
    assert v2(queries, ["visitors"], filters=[["is_not", "visit:region", ["DE-BE", "EE-37"]]]) == {
        (): [len(VISITORS) - wanted]}
    estonia = sum(v.region == "EE-37" for v in VISITORS)  # a stored name still works
    assert v2(queries, ["visitors"], filters=[["is", "visit:region", ["Harjumaa"]]]) == {(): [estonia]}
    assert v2(queries, ["visitors"], filters=[["is", "visit:region", ["FR-IDF"]]]) == {(): [0]}
    written = [["is_not", "visit:region", ["DE-BE", "Harjumaa"]], ["is", "visit:region", ["US-CA"]]]
    body = queries.query_json({"site_id": SITE, "metrics": ["visitors"], "date_range": RANGE,
                               "filters": written}).to_dict()
    assert body["query"]["filters"] == [["and", written]]  # echoed as written


@pytest.mark.slow
def test_regions_are_reported_as_iso_codes(queries: Queries) -> None:
    """Plausible reports ``visit:region`` as ISO 3166-2 codes and ``visit:region_name`` as names; mallard
    looks the code up from the stored English name and the country (Harjumaa is EE-37, Berlin DE-BE)."""
    assert v2(queries, ["visitors"], ["visit:region"]) == {
        (code,): [n] for code, n in Counter(v.region for v in VISITORS).items()}
    by_pair = v2(queries, ["visitors"], ["visit:region", "visit:region_name"])
    assert by_pair[("EE-37", "Harjumaa")] == [sum(v.region == "EE-37" for v in VISITORS)]
    assert v2(queries, ["visitors"], ["visit:region"],
              filters=[["contains", "visit:region", ["DE-"]]]) == {
        (code,): [n] for code, n in Counter(v.region for v in VISITORS).items() if code.startswith("DE-")}
    sessions = v2(queries, ["visits", "bounce_rate", "visit_duration"], ["visit:region"],
                  filters=[["contains", "visit:region", ["E"]]])  # read from the sessions
    assert {k: v[0] for k, v in sessions.items()} == {
        (code,): sum(v.region == code for v in VISITORS)
        for code in {v.region for v in VISITORS} if "E" in code}
    python = queries.query(SITE, metrics=["visitors"], dimensions=["visit:region"], start_date=RANGE[0],
                           end_date=RANGE[1]).rows  # mallard's own vocabulary: the stored names
    assert "Harjumaa" in {r["visit:region"] for r in python}


def test_region_codes_name_iso_and_english_names() -> None:
    from mallard._queries.vocabulary import region_names

    assert region_names("DE-BY") == ("DE", ("Bavaria", "Bayern"))  # MaxMind says Bavaria
    assert region_names("US-CA") == ("US", ("California",))
    assert region_names("Berlin") is None and region_names("XX-YY") is None


def test_location_names_in_python_too(queries: Queries) -> None:
    rows = queries.query(SITE, metrics=["visitors"], dimensions=["visit:country_name"],
                         filters=[["is_not", "visit:country_name", [""]]], start_date=RANGE[0],
                         end_date=RANGE[1]).rows
    assert {r["visit:country_name"]: r["visitors"] for r in rows} == {
        name: n for name, n in Counter(v.country_name for v in VISITORS).items() if name}


def test_mallard_presets_keep_stored_values(queries: Queries) -> None:
    """The reference contract: Mallard Metrics' breakdowns and the Python query API report what is stored."""
    oses = {r["value"] for r in queries.breakdown(SITE, "os", start_date=RANGE[0], end_date=RANGE[1],
                                                    limit=100).rows}
    assert {"macOS", "Linux", "(unknown)"} <= oses and not {"Mac", "GNU/Linux"} & oses
    devices = queries.query(SITE, dimensions=["visit:device"], start_date=RANGE[0], end_date=RANGE[1])
    assert {r["visit:device"] for r in devices.rows} == {"desktop", "mobile", "tablet", "(unknown)"}


def test_event_metrics_by_renamed_dimension_never_read_rollups() -> None:
    """Rollup rows hold stored values: a dimension shown in Plausible's words is computed from events."""
    from mallard._queries.model import parse_query
    from mallard._queries.planner import plan_query
    from mallard._queries.vocabulary import plausible_query

    query = parse_query({"site_id": SITE, "metrics": ["visitors"], "date_range": RANGE,
                         "dimensions": ["visit:os"]}, today=NOW.date(), tz="UTC", first_day=None)
    assert plan_query(query).parts[0].reads == "rollups"
    assert plan_query(plausible_query(query)).parts[0].reads == "events"


# More real User-Agents: what ua-parser says (stored by mallard) and what Plausible shows for them.
MORE_AGENTS = {
    "android-webview": (
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36", "Chrome WebView", "Mobile App"),
    "facebook-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/442.0.0.38.105;FBBV/540187069;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;"
        "FBSV/17.1.2;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", "Facebook", "Mobile App"),
    "opera-mini": ("Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
                   "Opera Mini", "Opera"),
    "duckduckgo-android": (
        "Mozilla/5.0 (Linux; Android 12) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
        "Chrome/110.0.5481.65 Mobile DuckDuckGo/5 Safari/537.36", "DuckDuckGo", "DuckDuckGo Privacy Browser"),
    "ie-11": ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "IE",
              "Internet Explorer"),
    "miui": (
        "Mozilla/5.0 (Linux; U; Android 12; en-us; 2201117TG Build/SKQ1.211103.001) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 Mobile Safari/537.36 "
        "XiaoMi/MiuiBrowser/13.10.1-gn", "MiuiBrowser", "MIUI Browser"),
}


@pytest.mark.parametrize(("user_agent", "stored", "shown"), MORE_AGENTS.values(), ids=MORE_AGENTS.keys())
def test_browser_names_of_more_real_user_agents(user_agent: str, stored: str, shown: str) -> None:
    import duckdb

    from mallard._enrich.useragent import AgentParser
    from mallard._queries.sql import Sql
    from mallard._queries.vocabulary import PLAUSIBLE

    assert AgentParser(cache_size=0).parse(user_agent).browser == stored
    label = PLAUSIBLE["visit:browser"].label(Sql("?", (stored,)))
    assert duckdb.connect().execute("SELECT " + label.text, label.params).fetchone() == (shown,)


def test_funnel_filtered_by_country_name(queries: Queries) -> None:
    """Funnels read visit filters on the session's columns: a named dimension is computed from them."""
    wanted = sum(v.country_name in ("Germany", "Estonia") and "/pricing" in v.pages for v in VISITORS)
    funnel = queries.funnel(SITE, ["page:/docs/start", "page:/pricing"], start_date=RANGE[0],
                            end_date=RANGE[1], filters=[["is", "visit:country_name", ["Germany", "Estonia"]]])
    assert [step["visitors"] for step in funnel["steps"]] == [wanted, wanted]
