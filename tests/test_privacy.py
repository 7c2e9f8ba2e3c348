"""Privacy: visitor ids under random daily salts, pseudonyms, IP handling, and no raw IP anywhere."""

from __future__ import annotations

import ipaddress
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mallard._enrich.useragent import AgentParser
from mallard._payload import RawEvent
from mallard._privacy import Salts, canonical_ip, load_secret, pseudonymize_user, redact_ip
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from mallard._state import write_file_once
from mallard._tracker import ClientContext, Outcome, Tracker
from tests.conftest import FrozenClock
from tests.strategies import ips

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.2 Mobile/15E148 Safari/604.1")
IP = "198.51.100.23"
VISITOR = ClientContext(ip=IP, user_agent=FIREFOX)
DAY1 = datetime(2024, 5, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


@pytest.fixture(scope="module")
def agents() -> AgentParser:
    return AgentParser()


@pytest.fixture
def salts_dir(tmp_data_dir: Path) -> Path:
    return tmp_data_dir / "state" / "salts"


def new_tracker(salts_dir: Path, clock: FrozenClock, agents: AgentParser, *, secret: bytes = b"k" * 32,
                **options: Any) -> Tracker:
    return Tracker(Settings(**options), salts=Salts(LocalState(salts_dir.parent)), secret=secret, clock=clock,
                   agents=agents)


@pytest.fixture
def tracker(salts_dir: Path, clock: FrozenClock, agents: AgentParser) -> Tracker:
    return new_tracker(salts_dir, clock, agents)


def track(tracker: Tracker, ctx: ClientContext = VISITOR, site: str = "example.com",
          user_id: str | None = None) -> Any:
    outcome = tracker.process(RawEvent(site=site, name="pageview", url="/", user_id=user_id), ctx)
    assert outcome.event is not None, outcome
    return outcome.event


# -- visitor ids ------------------------------------------------------------------------------------
def test_visitor_id_is_stable_within_a_day(tracker: Tracker, clock: FrozenClock) -> None:
    clock.set(DAY1.replace(hour=0, minute=0, second=1))
    first = track(tracker).visitor_id
    clock.set(DAY1.replace(hour=23, minute=59, second=59))
    assert track(tracker).visitor_id == first


@pytest.mark.parametrize(
    ("ctx", "site"),
    [(VISITOR, "other.example"), (ClientContext(ip="198.51.100.24", user_agent=FIREFOX), "example.com"),
     (ClientContext(ip=IP, user_agent=SAFARI), "example.com"),
     (ClientContext(user_agent=FIREFOX), "example.com")],
    ids=["other-site", "other-ip", "other-user-agent", "no-ip"],
)
def test_visitor_id_differs(tracker: Tracker, ctx: ClientContext, site: str) -> None:
    assert track(tracker, ctx, site).visitor_id != track(tracker).visitor_id


@pytest.mark.parametrize(
    ("ip", "same_as"),
    [("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("2001:db8::0:1", "2001:db8::1"),
     ("::ffff:198.51.100.23", IP), ("::FFFF:c633:6417", IP), (f" {IP} ", IP)],
    ids=["ipv6-exploded-upper", "ipv6-zero-group", "ipv4-mapped", "ipv4-mapped-hex", "padded"],
)
def test_visitor_id_ignores_ip_spelling(tracker: Tracker, ip: str, same_as: str) -> None:
    assert (track(tracker, ClientContext(ip=ip, user_agent=FIREFOX)).visitor_id
            == track(tracker, ClientContext(ip=same_as, user_agent=FIREFOX)).visitor_id)


def test_visitor_id_changes_the_next_day(tracker: Tracker, clock: FrozenClock) -> None:
    clock.set(DAY1.replace(hour=12))
    first = track(tracker).visitor_id
    clock.advance(days=1)
    event = track(tracker)
    assert event.visitor_id != first and event.visitor_id_prev is None  # past the first session window


def test_previous_id_joins_a_session_across_midnight(tracker: Tracker, clock: FrozenClock) -> None:
    clock.set(DAY1.replace(hour=23, minute=50))
    yesterday = track(tracker)
    assert yesterday.visitor_id_prev is None  # no salt existed before this one
    clock.set(DAY2 + timedelta(minutes=10))
    today = track(tracker)
    assert today.visitor_id != yesterday.visitor_id
    assert today.visitor_id_prev == yesterday.visitor_id


@pytest.mark.parametrize(
    ("after_midnight", "window_minutes", "has_previous"),
    [(timedelta(0), 30, True), (timedelta(minutes=29, seconds=59), 30, True),
     (timedelta(minutes=30), 30, True), (timedelta(minutes=30, microseconds=1), 30, False),
     (timedelta(hours=5), 30, False), (timedelta(minutes=45), 60, True)],
    ids=["midnight", "just-inside", "window-end", "just-after", "morning", "longer-window"],
)
def test_previous_id_only_in_the_first_session_window(salts_dir: Path, clock: FrozenClock,
                                                      agents: AgentParser, after_midnight: timedelta,
                                                      window_minutes: int, has_previous: bool) -> None:
    tracker = new_tracker(salts_dir, clock, agents, session_window_minutes=window_minutes)
    clock.set(DAY1.replace(hour=20))
    yesterday = track(tracker).visitor_id
    clock.set(DAY2 + after_midnight)
    event = track(tracker)
    assert event.visitor_id_prev == (yesterday if has_previous else None)


def test_suppressed_visitor_id_has_no_previous_id(salts_dir: Path, clock: FrozenClock,
                                                  agents: AgentParser) -> None:
    tracker = new_tracker(salts_dir, clock, agents, suppress_visitor_id=True)
    clock.set(DAY1.replace(hour=20))
    track(tracker)
    clock.set(DAY2 + timedelta(minutes=1))
    assert track(tracker).visitor_id_prev is None


# -- salts ------------------------------------------------------------------------------------------
def test_salt_is_a_random_private_file_per_day(tracker: Tracker, salts_dir: Path, clock: FrozenClock) -> None:
    clock.set(DAY1.replace(hour=9))
    track(tracker)
    (salt,) = salts_dir.iterdir()
    assert salt.name == "2024-05-01.salt" and len(salt.read_bytes()) == 32
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600


def test_salts_are_random_not_derived(tmp_path: Path, clock: FrozenClock, agents: AgentParser) -> None:
    one = new_tracker(tmp_path / "a" / "salts", clock, agents)
    two = new_tracker(tmp_path / "b" / "salts", clock, agents)
    assert track(one).visitor_id != track(two).visitor_id
    (salt_a,), (salt_b,) = (tmp_path / "a" / "salts").iterdir(), (tmp_path / "b" / "salts").iterdir()
    assert salt_a.name == salt_b.name and salt_a.read_bytes() != salt_b.read_bytes()


def test_two_processes_share_the_salt(salts_dir: Path, clock: FrozenClock, agents: AgentParser) -> None:
    worker_a = new_tracker(salts_dir, clock, agents)
    worker_b = new_tracker(salts_dir, clock, agents)  # its own Salts instance on the same directory
    clock.set(DAY1.replace(hour=23, minute=55))
    assert track(worker_a).visitor_id == track(worker_b).visitor_id
    clock.set(DAY2 + timedelta(minutes=5))
    a, b = track(worker_b), track(worker_a)  # B rotates first this time
    assert (a.visitor_id, a.visitor_id_prev) == (b.visitor_id, b.visitor_id_prev)
    assert len(list(salts_dir.glob("*.salt"))) == 2


def test_salts_rotate_and_older_ones_are_deleted(salts_dir: Path) -> None:
    salts_dir.mkdir(parents=True)
    (salts_dir / "2020-01-01.salt").write_bytes(b"x" * 32)  # left over from long ago
    (salts_dir / "README").write_text("not a salt")
    one, two = (Salts(LocalState(salts_dir.parent)) for _ in range(2))
    first, previous, start = one.salts(DAY1 + timedelta(hours=3))
    assert previous is None and start == DAY1
    second, previous, start = two.salts(DAY2 + timedelta(hours=1))
    assert previous == first and second != first and start == DAY2
    third, previous, _ = one.salts(DAY2 + timedelta(days=1))
    assert previous == second and third not in (first, second)
    assert sorted(p.name for p in salts_dir.iterdir()) == ["2024-05-02.salt", "2024-05-03.salt", "README"]


def test_salt_rotation_period_of_several_days(salts_dir: Path) -> None:
    salts = Salts(LocalState(salts_dir.parent), rotation_days=7)
    days = [DAY1 + timedelta(days=n) for n in range(15)]
    by_period: dict[int, set[bytes]] = {}
    for day in days:
        by_period.setdefault(salts.period_of(day), set()).add(salts.salts(day)[0])
    assert len(by_period) >= 2 and all(len(values) == 1 for values in by_period.values())
    assert len({next(iter(values)) for values in by_period.values()}) == len(by_period)


def test_write_file_once_keeps_the_first_content(tmp_path: Path) -> None:
    path = tmp_path / "state" / "once"
    assert write_file_once(path, b"first") == b"first"
    assert write_file_once(path, b"second") == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["once"]  # no temporary file left behind


# -- IP addresses -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ip", "canonical"),
    [("203.0.113.7", "203.0.113.7"), (" 203.0.113.7\n", "203.0.113.7"), ("::1", "::1"),
     ("0:0:0:0:0:0:0:1", "::1"), ("0000:0000::0001", "::1"), ("2001:DB8::1", "2001:db8::1"),
     ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("::ffff:203.0.113.7", "203.0.113.7"),
     ("::FFFF:cb00:7107", "203.0.113.7"), ("fe80::1%eth0", "fe80::1"),
     (None, "unknown"), ("", "unknown"), ("unknown", "unknown"), ("203.0.113.7:8080", "unknown"),
     ("[::1]", "unknown"), ("256.1.1.1", "unknown"), ("01.2.3.4", "unknown"), ("1.2.3.4\x00", "unknown"),
     ("::1\x00", "unknown"), ("١.٢.٣.٤", "unknown")],
    ids=["ipv4", "ipv4-padded", "loopback6", "loopback6-long", "loopback6-zeros", "upper", "middle-zeros",
         "mapped", "mapped-hex", "zone", "none", "empty", "unknown", "with-port", "bracketed", "out-of-range",
         "leading-zero", "nul-v4", "nul-v6", "arabic-digits"],
)
def test_canonical_ip(ip: str | None, canonical: str) -> None:
    assert canonical_ip(ip) == canonical


@pytest.mark.parametrize(
    ("ip", "redacted"),
    [("203.0.113.57", "203.0.113.x"), ("2001:db8:abcd:12::1", "2001:db8:abcd::x"),
     ("2001:0db8:0000:0012::1", "2001:db8:0::x"), ("fe80::1%eth0", "fe80:0:0::x"),
     ("garbage", "(unparseable)"), (None, "(unparseable)"), ("", "(unparseable)")],
    ids=["ipv4", "ipv6", "ipv6-zeros", "ipv6-zone", "garbage", "none", "empty"],
)
def test_redact_ip(ip: str | None, redacted: str) -> None:
    assert redact_ip(ip) == redacted


# -- user pseudonyms and the secret -----------------------------------------------------------------
def test_user_pseudonym_is_stable_across_days(tracker: Tracker, clock: FrozenClock) -> None:
    first = track(tracker, user_id="user-42")
    clock.advance(days=3)
    later = track(tracker, user_id="user-42")
    assert later.user_id == first.user_id and later.visitor_id != first.visitor_id


def test_user_pseudonym_differs_per_site_user_and_secret(tracker: Tracker, salts_dir: Path,
                                                         clock: FrozenClock, agents: AgentParser) -> None:
    base = track(tracker, user_id="user-42").user_id
    assert track(tracker, site="other.example", user_id="user-42").user_id != base
    assert track(tracker, user_id="user-43").user_id != base
    other_secret = new_tracker(salts_dir, clock, agents, secret=b"s" * 32)
    assert track(other_secret, user_id="user-42").user_id != base
    assert base == pseudonymize_user(b"k" * 32, "example.com", "user-42") and "user-42" not in base


def test_configured_secret_is_used(tmp_path: Path) -> None:
    assert load_secret(LocalState(tmp_path), "from-settings") == b"from-settings"
    assert not (tmp_path / "secret").exists()


def test_generated_secret_persists(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state")
    secret = load_secret(state, None)
    assert len(secret) == 32 and load_secret(state, None) == secret
    assert stat.S_IMODE((tmp_path / "state" / "secret").stat().st_mode) == 0o600
    assert load_secret(state, "") == secret  # an empty setting means "not configured"


# -- no raw IP anywhere -----------------------------------------------------------------------------
def ip_texts(ip: str) -> set[str]:
    """The ways an IP could show up: as given, canonical, and (for IPv6) in long form."""
    forms = {ip.strip(), canonical_ip(ip)}
    if ":" in canonical_ip(ip):
        forms.add(ipaddress.ip_address(canonical_ip(ip)).exploded)
    return forms - {"unknown", ""}


SCENARIOS: dict[str, tuple[dict[str, Any], RawEvent, str]] = {
    "accepted": ({}, RawEvent("example.com", "pageview", "https://example.com/", user_id="u1"), FIREFOX),
    "gdpr": ({"gdpr_mode": True}, RawEvent("example.com", "pageview", "/", "https://ref.example/"), SAFARI),
    "invalid": ({}, RawEvent("bad site", "pageview", "/"), FIREFOX),
    "too-long": ({}, RawEvent("example.com", "x" * 300, "/"), FIREFOX),
    "bot": ({}, RawEvent("example.com", "pageview", "/"), "curl/8.4.0"),
    "not-allowed": ({"site_ids": ["example.com"]}, RawEvent("other.example", "pageview", "/"), FIREFOX),
    "opt-out": ({"honor_dnt": True}, RawEvent("example.com", "pageview", "/"), FIREFOX),
}


@pytest.fixture
def scenario_trackers(salts_dir: Path, clock: FrozenClock, agents: AgentParser) -> dict[str, Tracker]:
    return {name: new_tracker(salts_dir, clock, agents, **options)
            for name, (options, _, _) in SCENARIOS.items()}


@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ip=ips(), scenario=st.sampled_from(sorted(SCENARIOS)))
def test_no_raw_ip_in_events_outcomes_errors_or_logs(scenario_trackers: dict[str, Tracker],
                                                     caplog: pytest.LogCaptureFixture, ip: str,
                                                     scenario: str) -> None:
    caplog.clear()
    _, raw, user_agent = SCENARIOS[scenario]
    ctx = ClientContext(ip=ip, user_agent=user_agent, dnt="1")
    with caplog.at_level(logging.DEBUG):
        outcome: Outcome = scenario_trackers[scenario].process(raw, ctx)
    texts = [repr(outcome), *(str(value) for value in (outcome.event or ()))]
    if outcome.error is not None:
        texts += [str(outcome.error), repr(outcome.error), outcome.error.message]
    texts += [record.getMessage() for record in caplog.records]
    for form in ip_texts(ip):
        assert not any(form in text for text in texts), (form, scenario)


@given(key=st.binary(min_size=0, max_size=100), site=st.text(max_size=20), ip=st.text(max_size=40),
       ua=st.text(max_size=200))
def test_visitor_id_is_exactly_hmac_sha256(key: bytes, site: str, ip: str, ua: str) -> None:
    """The pre-keyed fast path computes the same digest as the standard library's HMAC."""
    import hmac

    from mallard._privacy import visitor_id

    expected = hmac.digest(key, f"{site}|{ip}|{ua}".encode(), "sha256").hex()
    assert visitor_id(key, site, ip, ua) == expected
