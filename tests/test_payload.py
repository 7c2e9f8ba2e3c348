"""Wire formats: Mallard Metrics and Plausible bodies, batches, pixel query strings, their errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from mallard._errors import InvalidEventError
from mallard._payload import MAX_BATCH, MAX_SITES, RawEvent, from_query, parse_body, parse_request
from tests.strategies import request_bodies

PAGEVIEW = {"d": "example.com", "n": "pageview", "u": "https://example.com/pricing"}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def rejected(data: bytes | str) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as info:
        parse_body(data)
    return info.value


# -- Mallard Metrics keys ---------------------------------------------------------------------------
def test_short_keys() -> None:
    payload = {**PAGEVIEW, "r": "https://news.ycombinator.com/", "w": 1280, "p": '{"plan":"pro"}',
               "ra": 49.9, "rc": "eur"}
    assert parse_body(body(payload)) == [
        RawEvent(site="example.com", name="pageview", url="https://example.com/pricing",
                 referrer="https://news.ycombinator.com/", screen_width=1280, props='{"plan":"pro"}',
                 revenue=49.9, currency="eur")
    ]


def test_optional_fields_may_be_absent_or_null() -> None:
    (raw,) = parse_body(body({**PAGEVIEW, "r": None, "w": None, "p": None}))
    assert (raw.referrer, raw.screen_width, raw.props, raw.revenue, raw.currency) == (None,) * 5


def test_props_may_be_an_object() -> None:
    (raw,) = parse_body(body({**PAGEVIEW, "p": {"plan": "pro"}}))
    assert raw.props == {"plan": "pro"}


def test_body_may_be_text() -> None:
    assert parse_body(json.dumps(PAGEVIEW)) == parse_body(body(PAGEVIEW))


@pytest.mark.parametrize("width", [0, 1, 1920, 2**32 - 1], ids=str)
def test_width_range(width: int) -> None:
    assert parse_body(body({**PAGEVIEW, "w": width}))[0].screen_width == width


# -- Plausible keys ---------------------------------------------------------------------------------
def test_plausible_keys() -> None:
    payload = {"domain": "example.com", "name": "Signup", "url": "https://example.com/join",
               "referrer": "https://google.com/", "screen_width": 390, "props": {"plan": "pro"}}
    assert parse_body(body(payload)) == [
        RawEvent(site="example.com", name="Signup", url="https://example.com/join",
                 referrer="https://google.com/", screen_width=390, props={"plan": "pro"})
    ]


@pytest.mark.parametrize("key", ["props", "meta", "m"])
def test_plausible_props_as_json_string(key: str) -> None:
    payload = {"domain": "example.com", "name": "Signup", "url": "/", key: '{"plan":"pro"}'}
    assert parse_body(body(payload))[0].props == '{"plan":"pro"}'


@pytest.mark.parametrize(
    "revenue",
    [{"amount": "12.50", "currency": "EUR"}, json.dumps({"amount": "12.50", "currency": "EUR"})],
    ids=["object", "json-string"],
)
@pytest.mark.parametrize("key", ["revenue", "$"])
def test_plausible_revenue(key: str, revenue: object) -> None:
    payload = {"domain": "example.com", "name": "Purchase", "url": "/", key: revenue}
    (raw,) = parse_body(body(payload))
    assert (raw.revenue, raw.currency) == ("12.50", "EUR")


def test_plausible_revenue_that_is_not_an_object_is_ignored() -> None:
    payload = {"domain": "example.com", "name": "Purchase", "url": "/", "revenue": "not json"}
    (raw,) = parse_body(body(payload))
    assert (raw.revenue, raw.currency) == (None, None)


def test_plausible_multiple_domains_make_one_event_each() -> None:
    payload = {"domain": "a.example, b.example ,c.example", "name": "pageview", "url": "/x"}
    raws = parse_body(body(payload))
    assert [r.site for r in raws] == ["a.example", "b.example", "c.example"]
    assert {(r.name, r.url) for r in raws} == {("pageview", "/x")}


def test_domain_names_at_most_ten_distinct_sites() -> None:
    """A domain listing more than MAX_SITES sites is refused (one request once made 13,873 events);
    repeated names count once, so ten distinct sites written twice are accepted."""
    ten = ",".join(f"s{i}.example" for i in range(MAX_SITES))
    raws = parse_body(body({"domain": f"{ten},{ten}", "name": "pageview", "url": "/"}))
    assert [r.site for r in raws] == [f"s{i}.example" for i in range(MAX_SITES)] and MAX_SITES == 10
    error = rejected(body({"domain": f"{ten},s10.example", "name": "pageview", "url": "/"}))
    assert error.code == "too_many_sites" and "at most 10" in str(error)
    with pytest.raises(InvalidEventError, match="at most 10"):
        from_query({"d": [f"{ten},s10.example"], "u": ["/"]})


@pytest.mark.parametrize("domain", ["a.example,,b.example", "a.example,", ",a.example", "a.example, ,b"])
def test_domain_with_an_empty_entry_is_refused(domain: str) -> None:
    error = rejected(body({"domain": domain, "name": "pageview", "url": "/"}))
    assert error.code == "invalid_field" and "empty entry" in str(error)


def test_batch_expansion_is_bounded_by_the_batch_limit() -> None:
    """Objects × sites may reach MAX_BATCH events and no more: 100 objects of 10 sites pass, 101 do
    not, and the error names the object that went past the limit."""
    ten = ",".join(f"s{i}.example" for i in range(10))
    item = {"domain": ten, "name": "pageview", "url": "/"}
    raws, origins = parse_request(body([item] * 100))
    assert len(raws) == MAX_BATCH and origins is not None and origins[-1] == 99
    error = rejected(body([item] * 101))
    assert error.code == "batch_too_large" and "event 100" in str(error)


def test_errors_in_a_batch_name_the_object_index() -> None:
    """A shape error in item 1 of an array says `event 1`, also when item 0 expanded into several
    events; events map back to the object they came from."""
    two = {"domain": "a.example,b.example", "name": "pageview", "url": "/"}
    error = rejected(body([two, {"d": "example.com", "n": "pageview"}]))
    assert str(error).startswith("event 1: Missing required field 'u'.") and error.code == "missing_field"
    assert str(rejected(body([PAGEVIEW, {**PAGEVIEW, "w": "wide"}]))).startswith("event 1: Field 'w'")
    raws, origins = parse_request(body([two, PAGEVIEW]))
    assert [r.site for r in raws] == ["a.example", "b.example", "example.com"] and origins == [0, 0, 1]
    assert parse_request(body(PAGEVIEW))[1] is None


# -- batches ----------------------------------------------------------------------------------------
def test_batch_of_events() -> None:
    raws = parse_body(body([PAGEVIEW, {**PAGEVIEW, "n": "Signup"}]))
    assert [r.name for r in raws] == ["pageview", "Signup"]


def test_batch_of_exactly_the_maximum() -> None:
    assert len(parse_body(body([PAGEVIEW] * MAX_BATCH))) == MAX_BATCH == 1000


def test_batch_over_the_maximum() -> None:
    error = rejected(body([PAGEVIEW] * (MAX_BATCH + 1)))
    assert error.code == "batch_too_large" and "1000" in str(error)


def test_empty_batch() -> None:
    error = rejected(b"[]")
    assert error.code == "invalid_type" and "empty" in str(error)


def test_one_bad_event_rejects_the_batch() -> None:
    assert rejected(body([PAGEVIEW, {"d": "example.com"}])).code == "missing_field"


# -- malformed bodies and wrong types ---------------------------------------------------------------
@pytest.mark.parametrize("data", [b"", b"{", b"[1,]", b"\xff\xfe{}", b"d=example.com", b"{'d': 1}",
                                  b'{"d":"\\ud800","n":"x","u":"/"}'],
                         ids=["empty", "truncated", "trailing-comma", "not-utf8", "form", "single-quotes",
                              "lone-surrogate"])
def test_malformed_json(data: bytes) -> None:
    error = rejected(data)
    assert error.code == "malformed_json" and str(error) == "Request body is not valid JSON."


WRONG_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"d": None}, "missing_field", "d"),
    ({"n": None}, "missing_field", "n"),
    ({"u": None}, "missing_field", "u"),
    ({"d": ""}, "empty_field", "site_id"),
    ({"n": ""}, "empty_field", "event name"),
    ({"u": ""}, "empty_field", "url"),
    ({"d": 5}, "invalid_type", "d"),
    ({"n": ["pageview"]}, "invalid_type", "n"),
    ({"u": {"href": "/"}}, "invalid_type", "u"),
    ({"r": 7}, "invalid_type", "r"),
    ({"w": -1}, "invalid_type", "w"),
    ({"w": 1920.5}, "invalid_type", "w"),
    ({"w": True}, "invalid_type", "w"),
    ({"w": "1920"}, "invalid_type", "w"),
    ({"w": 2**32}, "invalid_type", "w"),
    ({"w": 1e300}, "invalid_type", "w"),
    ({"p": 5}, "invalid_type", "p"),
    ({"p": ["a"]}, "invalid_type", "p"),
    ({"p": True}, "invalid_type", "p"),
]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [pytest.param(*row, id="{}={!r}".format(*next(iter(row[0].items())))) for row in WRONG_FIELDS],
)
def test_wrong_field(change: dict[str, Any], code: str, field: str) -> None:
    error = rejected(body({**PAGEVIEW, **change}))
    assert error.code == code and field in str(error)


@pytest.mark.parametrize("value", ["pageview", 1, None, True, [1], [[PAGEVIEW]]],
                         ids=["string", "number", "null", "bool", "array-of-number", "nested-array"])
def test_event_that_is_not_an_object(value: Any) -> None:
    assert rejected(body(value)).code == "invalid_type"


def test_missing_field_is_named() -> None:
    assert str(rejected(body({"d": "example.com", "u": "/"}))) == "Missing required field 'n'."


@pytest.mark.slow
@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(request_bodies())
def test_parse_body_only_ever_raises_invalid_event_error(data: bytes) -> None:
    try:
        raws = parse_body(data)
    except InvalidEventError as exc:
        assert exc.code in {"malformed_json", "invalid_type", "missing_field", "empty_field",
                            "batch_too_large", "too_many_sites", "invalid_field"}
        return
    assert raws
    for raw in raws:
        assert isinstance(raw.site, str) and isinstance(raw.name, str) and isinstance(raw.url, str)
        assert raw.screen_width is None or 0 <= raw.screen_width < 2**32


# -- pixel query strings ----------------------------------------------------------------------------
def test_pixel_defaults_to_pageview() -> None:
    assert from_query({"d": ["example.com"], "u": ["https://example.com/"]}) == [
        RawEvent(site="example.com", name="pageview", url="https://example.com/")
    ]


def test_pixel_with_every_field() -> None:
    query = {"d": ["example.com"], "n": ["Download"], "u": ["/files"], "r": ["https://bing.com/"],
             "w": ["375"]}
    assert from_query(query) == [RawEvent(site="example.com", name="Download", url="/files",
                                          referrer="https://bing.com/", screen_width=375)]


def test_pixel_last_value_wins() -> None:
    assert from_query({"d": ["a.com", "b.com"], "u": ["/"]})[0].site == "b.com"


@pytest.mark.parametrize("width", ["abc", "-1", "1.5", "1_000", " 12", "١٢", "", "4294967296", "9" * 5000],
                         ids=["letters", "negative", "decimal", "underscore", "space", "arabic-digits",
                              "empty", "over-uint32", "5000-digits"])
def test_pixel_width_must_be_digits(width: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        from_query({"d": ["example.com"], "u": ["/"], "w": [width]})
    assert info.value.code == "invalid_param"


@pytest.mark.parametrize("missing", ["d", "u"])
def test_pixel_required_fields(missing: str) -> None:
    query = {"d": ["example.com"], "u": ["/"]}
    del query[missing]
    with pytest.raises(InvalidEventError, match=f"'{missing}'") as info:
        from_query(query)
    assert info.value.code == "missing_param"
