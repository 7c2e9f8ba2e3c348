"""PII redaction rules (mallard._enrich.redact): what is replaced, by which marker, and what is left alone."""

from __future__ import annotations

import string

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mallard._enrich.redact import KINDS, MARKERS, Redactor, luhn_valid
from mallard._errors import ConfigurationError
from mallard._settings import Settings, export_to_environ
from mallard._telemetry import PROCESS_METRICS

R = Redactor()


def redact(text: str, redactor: Redactor = R) -> str:
    done = redactor.text(text)
    return text if done is None else done[0]


def kinds(text: str, redactor: Redactor = R) -> tuple[str, ...]:
    done = redactor.text(text)
    return () if done is None else done[1]


# -- strategies ------------------------------------------------------------------------------------------
#: Surrounding text that cannot extend or create a match: no digits, '@', '=', '%' or '+'.
_FILLER = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="@=%+0123456789",
                                         exclude_categories=["Nd"]), max_size=30)
_WORDY = st.text(alphabet=string.ascii_letters + " ,;:!?()[]/'\"", max_size=30)


def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def card_numbers(draw: st.DrawFn, *, valid: bool = True) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.sampled_from("23456")) + draw(st.text("0123456789", min_size=length - 2,
                                                          max_size=length - 2))
    number = _luhn_complete(body)
    if not valid:  # the same length, another check digit: never Luhn-valid
        number = number[:-1] + str((int(number[-1]) + draw(st.integers(1, 9))) % 10)
    return number


def _grouped(number: str, sep: str) -> str:
    """Groups of four, a remainder of one or two digits joined to the last group (4-4-5, 4-4-4-6)."""
    groups = [number[i:i + 4] for i in range(0, len(number), 4)]
    if len(groups[-1]) < 3:
        groups[-2:] = [groups[-2] + groups[-1]]
    return sep.join(groups)


# -- e-mail addresses ------------------------------------------------------------------------------------
@pytest.mark.slow
@settings(max_examples=300)
@given(before=_FILLER, email=st.emails(), after=_FILLER)
def test_any_email_in_any_text_is_redacted(before: str, email: str, after: str) -> None:
    text = f"{before} {email} {after}"
    out = redact(text)
    assert email not in out and "[email]" in out
    assert "email" in kinds(text)


@pytest.mark.parametrize("text", [
    "/users/john.doe@example.com/profile", "/u/john%40example.com", "mailto:Ann+news@sub.example.co.uk",
    "contact: jörg@bücher.de", "x@example.xn--p1ai",
])
def test_email_forms_are_redacted(text: str) -> None:
    assert "@" not in redact(text).replace("[email]", "") and "%40" not in redact(text)
    assert kinds(text) == ("email",)


# -- card numbers ------------------------------------------------------------------------------------------
@settings(max_examples=300)
@given(before=_WORDY, number=card_numbers(), sep=st.sampled_from(["", " ", "-"]), after=_WORDY)
def test_a_luhn_valid_card_number_is_redacted(before: str, number: str, sep: str, after: str) -> None:
    written = _grouped(number, sep) if sep else number
    out = redact(f"{before} {written} {after}")
    assert out == f"{before} [card] {after}"


@settings(max_examples=300)
@given(before=_WORDY, number=card_numbers(valid=False), sep=st.sampled_from(["", " ", "-"]),
       after=_WORDY)
def test_a_luhn_invalid_number_of_the_same_length_is_kept(before: str, number: str, sep: str,
                                                          after: str) -> None:
    written = _grouped(number, sep) if sep else number
    # A run of whole leading groups that is itself a valid number would be redacted (a card number
    # followed by, say, a year in the same format): not this property.
    groups = written.split(sep) if sep else [written]
    assume(not any(len("".join(groups[:n])) >= 13 and luhn_valid("".join(groups[:n]))
                   for n in range(1, len(groups))))
    text = f"{before} {written} {after}"
    assert "card" not in kinds(text)  # (a group "0123 45678" inside is a phone number)


@pytest.mark.parametrize(("text", "expected"), [
    ("card 4111 1111 1111 1111 exp 12 2025", "card [card] exp 12 2025"),
    ("4111 1111 1111 1111 2025", "[card] 2025"),  # a trailing group that is not part of the number
    ("3782 822463 10005", "[card]"),  # American Express
    ("/pay/5555555555554444/done", "/pay/[card]/done"),
    ('"n": 4111111111111111', '"n": [card]'),
])
def test_card_forms_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


# -- phone numbers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "+44 (0)20 7946 0958", "+4915112345678", "+1 (555) 123-4567", "+33 6 12 34 56 78", "+1.555.123.4567",
    "555-123-4567", "(555) 123-4567", "555.123.4567", "1-555-123-4567",
    "030 1234567", "06 12 34 56 78", "06.12.34.56.78", "(030) 1234567", "0049 30 12345678", "020-7946-0958",
])
def test_phone_numbers_are_redacted(text: str) -> None:
    assert redact(f"call {text} today") == "call [phone] today"


@pytest.mark.parametrize("text", [
    "/products/123456789", "order 12345678901", "1700000000000", "id 0000000000000000",  # ids
    "price 1299.00", "1,299,000.50", "$ 1 299 999",  # prices
    "2024", "2024-05-12", "05.12.2024 10:30", "12/05/2024", "2024-05-12T10:00:00+02:00",  # dates
    "v10.0.19045.2965", "1.2.3", "192.168.100.200",  # versions, addresses
    "isbn 978-3-16-148410-0", "0-306-40615-2", "+49 30", "zip 12345-6789", "?q=shoes+size+10",
    "4111111111111112",  # not Luhn-valid
])
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert R.text(text) is None


# -- secrets -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("https://x.example/cb?token=abc&utm_source=news", "https://x.example/cb?token=[redacted]&utm_source=news"),
    ("/p?Access-Token=a&REFRESH_TOKEN=b&id=7", "/p?Access-Token=[redacted]&REFRESH_TOKEN=[redacted]&id=7"),
    ("/p#access_token=a&state=s", "/p#access_token=[redacted]&state=s"),
    ("/shop;jsessionid=ABC123?x=1", "/shop;jsessionid=[redacted]?x=1"),
    ("?csrf_token=x&user[password]=y&pwd=z&api_key=k&sig=s",
     "?csrf_token=[redacted]&user[password]=[redacted]&pwd=[redacted]&api_key=[redacted]&sig=[redacted]"),
    ("password=hunter2", "password=[redacted]"),
    ("https://alice:s3cret@example.com/", "https://[redacted]@example.com/"),
    ("?code=SUMMER&keyword=shoes&tokens=3", None),  # not secret names
])
def test_secret_parameters_are_redacted(text: str, expected: str | None) -> None:
    assert R.text(text) == (None if expected is None else (expected, tuple(
        "secret" for _ in range(expected.count("[redacted]")))))


def test_extra_parameter_names_are_redacted() -> None:
    r = Redactor(extra_params=["code", "Promo-Code"])
    assert redact("?code=abc&promo_code=x&q=1", r) == "?code=[redacted]&promo_code=[redacted]&q=1"


def test_redacting_twice_changes_and_counts_nothing() -> None:
    once = redact("/u/a@b.example?token=x 4111111111111111 +4915112345678")
    assert once == "/u/[email]?token=[redacted] [card] [phone]"
    assert R.text(once) is None


# -- the identity ------------------------------------------------------------------------------------------
@settings(max_examples=500)
@given(st.text(max_size=200))
def test_text_no_rule_can_match_is_returned_unchanged(text: str) -> None:
    """Text without '@', '%40', '=' and with fewer than 8 ASCII digits is never changed."""
    if "@" in text or "=" in text or "%40" in text or sum(c in string.digits for c in text) >= 8:
        text = text.translate({ord(c): None for c in "@=" + string.digits})
    assert R.text(text) is None
    assert R.props(orjson.dumps({"note": text, "list": [text]}).decode()) is None


# -- props ---------------------------------------------------------------------------------------------------
def test_props_keys_and_values_are_redacted() -> None:
    props = {"email": "a@b.example", "john@x.example": 1, "n": 4111111111111111, "password": "x",
             "api_key": 123, "nested": {"Session-Id": ["a", 7], "auth": {"user": "u"}, "ok": "fine"},
             "plan": "pro"}
    done = R.props(orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode())
    assert done is not None
    assert orjson.loads(done[0]) == {
        "email": "[email]", "[email]": 1, "n": "[card]", "password": "[redacted]",
        "api_key": "[redacted]", "nested": {"Session-Id": ["[redacted]", "[redacted]"],
                                            "auth": {"user": "u"}, "ok": "fine"}, "plan": "pro"}
    assert sorted(done[1]) == sorted(["email", "email", "card", "secret", "secret", "secret", "secret"])


def test_props_without_pii_are_left_as_they_are() -> None:
    assert R.props('{"plan":"pro","seats":3,"when":"2024-05-12"}') is None


# -- configuration -----------------------------------------------------------------------------------------
def test_extra_patterns_are_redacted_after_the_built_in_rules() -> None:
    r = Redactor(extra_patterns=[r"\b\d{3}-\d{2}-\d{4}\b", r"(user)-(\d+)"])
    assert r.text("ssn 123-45-6789 of user-42, a@b.example") == (
        "ssn [redacted] of [redacted], [email]", ("email", "custom", "custom"))


def test_extra_patterns_run_in_linear_time() -> None:
    """A pattern that backtracks catastrophically under Python's re is compiled with RE2."""
    r = Redactor(extra_patterns=[r"(a+)+$"])
    assert r.text("a" * 5000 + "!") is None  # Python's re would take longer than the universe's age


@pytest.mark.parametrize(("options", "words"), [
    ({"extra_patterns": [r"(a)\1"]}, "not a valid RE2"),
    ({"extra_patterns": ["(unclosed"]}, "not a valid RE2"),
    ({"extra_params": ["to ken"]}, "not a parameter name"),
    ({"extra_params": ["a=b"]}, "not a parameter name"),
])
def test_bad_configuration_is_refused(options: dict[str, list[str]], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Redactor(**options)  # type: ignore[arg-type]
    setting = {"extra_patterns": "redact_extra_patterns", "extra_params": "redact_extra_params"}
    with pytest.raises(ConfigurationError, match=words):
        Settings(**{setting[k]: v for k, v in options.items()})


@pytest.mark.parametrize(("value", "expected"), [
    ('["\\\\d{2,3}-x", "[0-9]{6}"]', (r"\d{2,3}-x", "[0-9]{6}")),  # a JSON array: items with commas
    ("[0-9]{6}", ("[0-9]{6}",)),  # not JSON: comma-separated text
    ("foo, bar", ("foo", "bar")),
])
def test_patterns_from_the_environment(value: str, expected: tuple[str, ...]) -> None:
    settings_ = Settings.load(environ={"MALLARD_REDACT_EXTRA_PATTERNS": value})
    assert settings_.redact_extra_patterns == expected


def test_patterns_with_commas_reach_server_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mallard serve` hands settings to its workers through the environment: commas survive."""
    patterns = [r"\d{2,3}-x", "[0-9]{6}"]
    for name in ("MALLARD_REDACT_EXTRA_PATTERNS", "MALLARD_SITE_IDS"):
        monkeypatch.setenv(name, "")  # restored (removed) after the test
    export_to_environ({"redact_extra_patterns": patterns, "site_ids": ["a.example", "b.example"]})
    loaded = Settings.load()
    assert loaded.redact_extra_patterns == tuple(patterns)
    assert loaded.site_ids == ("a.example", "b.example")


def test_every_kind_has_a_marker_and_a_metric_label() -> None:
    assert set(MARKERS) == set(KINDS)
    assert PROCESS_METRICS["mallard_pii_redactions_total"].values == frozenset(KINDS)
