"""Tracker: the ingestion pipeline, from a raw event and its client context to a stored :class:`Event`.

The pipeline is an ordered tuple of named steps (see :attr:`Tracker.STEPS`)::

    validate → allow_site → honour_opt_out → drop_bot → enrich → anonymise → apply_privacy → redact
    → classify

A step either refines the draft, raises :class:`InvalidEventError` (bad input) or drops the event with a
reason (bot, site not allowed, opt-out). The tracker does no storage I/O, and no raw IP address or
User-Agent survives ``anonymise``. Outcomes are counted per reason, redactions per kind (``redact``
replaces e-mail addresses, card and phone numbers and secrets in the stored text fields, see
:mod:`mallard._enrich.redact`; it is left out of the pipeline when ``redact_pii`` is off).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, NamedTuple

import orjson

from ._enrich.channels import channel, landing
from ._enrich.geo import NO_LOCATION, GeoLookup, Location
from ._enrich.redact import Redactor
from ._enrich.referrers import DIRECT
from ._enrich.referrers import visit_source as _visit_source
from ._enrich.urls import parse_page_url, sanitize, strip_query
from ._enrich.useragent import UNKNOWN_AGENT, Agent, AgentParser, device_type
from ._errors import InvalidEventError
from ._events import Event
from ._intake import MAX_NAME, MAX_PROPS, MAX_URL, check_len, validate
from ._payload import RawEvent, check_props
from ._privacy import Salts, canonical_ip, pseudonymize_user, visitor_id
from ._settings import Settings

# Referrers and site ids repeat across events: cache the pure functions (bounded).
visit_source = lru_cache(maxsize=16_384)(_visit_source)

MAX_REVENUE: Final = Decimal("9999999999.99")
_CENT: Final = Decimal("0.01")


_combine: Final = datetime.combine
_TEMPLATE: Final[dict[str, Any]] = dict.fromkeys(Event._fields)
_UTM_FIELDS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)  # not frozen: built once per event on the hot path
class ClientContext:
    """What is known about the client that sent an event. Never stored as such."""

    ip: str | None = None
    user_agent: str | None = None
    dnt: str | None = None
    gpc: str | None = None
    ch_mobile: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], ip: str | None) -> ClientContext:
        """From lower-cased request headers and the (already resolved) client IP."""
        return cls(ip=ip, user_agent=headers.get("user-agent", ""), dnt=headers.get("dnt"),
                   gpc=headers.get("sec-gpc"), ch_mobile=headers.get("sec-ch-ua-mobile"))


_NO_CLIENT: Final = ClientContext()


class Outcome(NamedTuple):
    """What happened to one event: accepted, or dropped with a reason (and the error if invalid).

    Immutable; true when the event was accepted. (A NamedTuple rather than a frozen dataclass: one is
    built per event, and a frozen dataclass costs four times more to create.)
    """

    accepted: bool
    reason: str | None = None
    event: Event | None = None
    error: InvalidEventError | None = None
    warnings: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.accepted


class Dropped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Draft:
    """The event being built by the pipeline steps."""

    __slots__ = ("agent", "ctx", "now", "raw", "site", "timestamp", "values", "warnings")

    def __init__(self, raw: RawEvent, ctx: ClientContext, now: datetime) -> None:
        self.raw = raw
        self.ctx = ctx
        self.now = now
        self.site = ""
        self.timestamp: datetime | None = None
        self.agent: Agent = UNKNOWN_AGENT
        # Pre-filled in column order: steps only replace values, and the Event is built from the
        # values positionally (a third cheaper than Event(**values) on the hot path).
        self.values: dict[str, Any] = _TEMPLATE.copy()
        self.warnings: list[str] | None = None  # created on the first warning (rare)

    def warn(self, message: str) -> None:
        if self.warnings is None:
            self.warnings = []
        self.warnings.append(message)


class Tracker:
    """Validates and enriches events. Thread-safe; one per :class:`mallard.Mallard`."""

    STEPS: Final = ("validate", "allow_site", "honour_opt_out", "drop_bot", "enrich", "anonymise",
                    "apply_privacy", "redact", "classify")

    def __init__(self, settings: Settings, *, salts: Salts, secret: bytes,
                 geo: GeoLookup | None = None, agents: AgentParser | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 on_redact: Callable[[str, int], None] | None = None) -> None:
        """``on_redact(kind, n)`` is called after each event with redactions (e.g. to count them in
        the Prometheus metrics); :attr:`redactions` counts them per kind either way."""
        self.settings = settings
        self._salts = salts
        self._secret = secret
        self._geo = geo or GeoLookup(None)
        self._agents = agents or AgentParser(settings.ua_cache_size)
        self._clock = clock
        self._allowed = frozenset(settings.site_ids)
        self._gap = timedelta(minutes=settings.session_window_minutes)
        self._redactor = Redactor(extra_params=settings.redact_extra_params,
                                  extra_patterns=settings.redact_extra_patterns) \
            if settings.redact_pii else None
        self._on_redact = on_redact
        self._steps: tuple[Callable[[_Draft], None], ...] = tuple(
            getattr(self, f"_{name}") for name in self.STEPS
            if name != "redact" or self._redactor is not None
        )
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.redactions: Counter[str] = Counter()

    # -- entry points -----------------------------------------------------------------------------
    def process(self, raw: RawEvent, ctx: ClientContext | None = None) -> Outcome:
        """Run the pipeline on one event. Never raises on bad input: returns a dropped Outcome."""
        draft = _Draft(raw, _NO_CLIENT if ctx is None else ctx, self._clock())
        try:
            for step in self._steps:
                step(draft)
            event = Event._make(draft.values.values())
        except Dropped as drop:
            return self._count(Outcome(False, drop.reason))
        except InvalidEventError as exc:
            return self._count(Outcome(False, "invalid", error=exc))
        return self._count(Outcome(True, event=event,
                                   warnings=tuple(draft.warnings) if draft.warnings else ()))

    def count(self, reason: str) -> None:
        with self._lock:
            self.counts[reason] += 1

    def _count(self, outcome: Outcome) -> Outcome:
        self.count("accepted" if outcome.accepted else outcome.reason or "dropped")
        return outcome

    # -- steps ------------------------------------------------------------------------------------
    def _validate(self, d: _Draft) -> None:
        d.site, d.timestamp, engaged = validate(d.raw, d.now)
        d.values["scroll_depth"], d.values["engagement_ms"], d.values["interactive"] = engaged

    def _allow_site(self, d: _Draft) -> None:
        if self._allowed and d.site not in self._allowed:
            raise Dropped("site_not_allowed")

    def _honour_opt_out(self, d: _Draft) -> None:
        if self.settings.honor_dnt and (d.ctx.dnt == "1" or d.ctx.gpc == "1"):
            raise Dropped("do_not_track")

    def _drop_bot(self, d: _Draft) -> None:
        ua = d.ctx.user_agent
        if ua:
            d.agent = self._agents.parse(ua)
            if self.settings.filter_bots and d.agent.is_bot:
                raise Dropped("bot")

    def _enrich(self, d: _Draft) -> None:
        raw, v = d.raw, d.values
        page = parse_page_url(raw.url, raw.hash_mode)
        host = page.hostname
        v["site_id"] = d.site
        v["event_name"] = sanitize(raw.name, MAX_NAME)
        v["pathname"] = page.pathname
        v["hostname"] = host
        referrer = sanitize(raw.referrer, MAX_URL) if raw.referrer else None
        v["referrer"] = referrer or None
        tag, v["click_id"] = landing(raw.url)
        v["referrer_source"] = visit_source(referrer, host or d.site, tag)
        (v["utm_source"], v["utm_medium"], v["utm_campaign"], v["utm_content"],
         v["utm_term"]) = page.utm
        agent = d.agent
        v["browser"], v["browser_version"] = agent.browser, agent.browser_version
        v["os"], v["os_version"] = agent.os, agent.os_version
        width = None if self.settings.suppress_screen_size else raw.screen_width
        v["device_type"] = device_type(agent, width, d.ctx.ch_mobile)
        v["screen_size"] = str(raw.screen_width) if raw.screen_width else None
        loc: Location = self._geo.lookup(d.ctx.ip) if self._geo.locates else NO_LOCATION
        v["country_code"], v["region"], v["city"] = loc.country_code, loc.region, loc.city
        v["props"] = self._props(d)
        v["revenue_amount"], v["revenue_currency"] = self._revenue(d)

    def _anonymise(self, d: _Draft) -> None:
        v = d.values
        if self.settings.suppress_visitor_id:
            v["visitor_id"] = uuid.uuid4().hex
        else:
            ip = canonical_ip(d.ctx.ip)
            ua = d.ctx.user_agent or ""
            salt, previous, period_start = self._salts.salts(d.now)
            v["visitor_id"] = visitor_id(salt, d.site, ip, ua)
            if previous is not None and d.now - period_start <= self._gap:
                v["visitor_id_prev"] = visitor_id(previous, d.site, ip, ua)
        if d.raw.user_id is not None:
            v["user_id"] = pseudonymize_user(self._secret, d.site, d.raw.user_id)
        d.ctx = _NO_CLIENT  # nothing raw survives this step

    def _apply_privacy(self, d: _Draft) -> None:
        s, v = self.settings, d.values
        ts = d.timestamp
        assert ts is not None
        if s.round_timestamps:
            ts = ts.replace(minute=0, second=0, microsecond=0)
        # The lake stores naive UTC. (combine() of the parts: replace(tzinfo=None) costs 5x more.)
        v["timestamp"] = _combine(ts.date(), ts.time())
        if s.strip_referrer_query and v["referrer"]:
            v["referrer"] = strip_query(v["referrer"]) or None
        if s.suppress_browser_version:
            v["browser_version"] = None
        if s.suppress_os_version:
            v["os_version"] = None
        if s.suppress_screen_size:
            v["screen_size"] = None  # device_type was already derived without the width (enrich)

    def _redact(self, d: _Draft) -> None:
        redactor, v = self._redactor, d.values
        assert redactor is not None
        cached = redactor.text_cached  # paths and referrers repeat
        found: tuple[str, ...] = ()
        done = cached(v["pathname"])
        if done is not None:
            v["pathname"], found = done
        if v["referrer"] is not None and (done := cached(v["referrer"])) is not None:
            v["referrer"], found = done[0], found + done[1]
        # a source named by a landing-URL tag (no referrer) is text the visitor's link carried
        if v["referrer_source"] != DIRECT and (done := cached(v["referrer_source"])) is not None:
            v["referrer_source"], found = done[0], found + done[1]
        if v["utm_source"] or v["utm_medium"] or v["utm_campaign"] or v["utm_content"] or v["utm_term"]:
            for name in _UTM_FIELDS:
                if v[name] is not None and (done := redactor.text(v[name])) is not None:
                    v[name], found = done[0], found + done[1]
        if v["props"] is not None and (done := redactor.props_cached(v["props"])) is not None:
            v["props"], found = done[0], found + done[1]
        if found:
            self._count_redactions(found)

    def _classify(self, d: _Draft) -> None:
        # Last: from the values as stored, so that the stored channel is the rules' over stored columns.
        v = d.values
        v["channel"] = channel(v["referrer_source"], v["utm_medium"], v["utm_campaign"], v["utm_source"],
                               v["click_id"])

    def _count_redactions(self, found: tuple[str, ...]) -> None:
        kinds = Counter(found)
        with self._lock:
            self.redactions.update(kinds)
        if self._on_redact is not None:
            for kind, n in kinds.items():
                self._on_redact(kind, n)

    # -- field helpers ----------------------------------------------------------------------------
    def _props(self, d: _Draft) -> str | None:
        props = d.raw.props
        if props is None or props == "":
            return None
        if isinstance(props, str):
            try:
                props = orjson.loads(props)
            except orjson.JSONDecodeError:
                d.warn("props is not valid JSON; dropped")
                return None
        if not isinstance(props, Mapping):
            d.warn("props is not a JSON object; dropped")
            return None
        if not props:
            return None
        check_props(props)
        try:
            # orjson serialises dicts only: copy other Mappings (track() accepts any Mapping).
            text = orjson.dumps(props if isinstance(props, dict) else dict(props),
                                option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            d.warn("props holds values that are not JSON; dropped")
            return None
        check_len(text, MAX_PROPS, "props")
        return text  # orjson escapes control characters, so the text has none

    def _revenue(self, d: _Draft) -> tuple[Decimal | None, str | None]:
        amount, currency = d.raw.revenue, d.raw.currency
        value: Decimal | None = None
        if amount is not None and amount != "":
            try:
                if isinstance(amount, bool):
                    raise TypeError
                if isinstance(amount, float) and not math.isfinite(amount):
                    raise ValueError
                value = Decimal(str(amount).strip()).quantize(_CENT)
                if not value.is_finite() or abs(value) > MAX_REVENUE:
                    raise ValueError
            except (TypeError, ValueError, InvalidOperation):
                d.warn("revenue amount is not a finite number within "
                                  "±9,999,999,999.99; dropped")
                value = None
        code: str | None = None
        if currency is not None and currency != "":
            if (isinstance(currency, str) and len(currency) == 3 and currency.isascii()
                    and currency.isalpha()):
                code = currency.upper()
            else:
                d.warn("currency is not a 3-letter ISO 4217 code; dropped")
        return value, code
