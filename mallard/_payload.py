"""Wire formats: turn an ingestion body into :class:`RawEvent` values.

Accepted, in one JSON object or a JSON array of them (batch):

* Mallard Metrics' short keys ``{d, n, u, r, w, p, ra, rc}``;
* Plausible's keys ``{domain, name, url, referrer, screen_width, props|meta|m, revenue|$, h|hashMode}``
  (props as an object or a JSON string, revenue as ``{"amount", "currency"}``), so Plausible's own tracker
  scripts post to mallard unchanged; ``domain`` may list several sites separated by commas.

``h: 1`` (also mallard.js's, with ``data-hash``) marks a page using hash-based routing: the URL's
``#fragment`` is then part of the stored path. ``sd`` (scroll depth, percent) and ``e`` (engaged
milliseconds) are the values of an ``engagement`` event; ``i: false`` marks a custom event as
non-interactive. Other keys (Plausible's ``v``) are ignored.

Only the shape is checked here (types, required keys); the meaning is checked by the tracker.

Bounds on the work one request can cause: a ``domain`` lists at most :data:`MAX_SITES` distinct sites,
and a batch (objects × sites) expands to at most :data:`MAX_BATCH` events.

Custom properties obey Plausible's ingestion limits (:func:`check_props`): at most :data:`MAX_PROP_KEYS`
keys, a key of at most :data:`MAX_PROP_KEY_BYTES` and a value of at most :data:`MAX_PROP_VALUE_BYTES`
UTF-8 bytes, and no nested object or array as a value. Plausible drops nested values and keys past the
30th silently; mallard refuses the event, naming the limit, so that the sender can see what was lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from ._errors import InvalidEventError

MAX_BATCH: Final = 1000
MAX_SITES: Final = 10
MAX_PROP_KEYS: Final = 30
MAX_PROP_KEY_BYTES: Final = 300
MAX_PROP_VALUE_BYTES: Final = 2000
_UINT32: Final = 2**32 - 1


@dataclass(slots=True)  # not frozen: built once per event on the hot path (3x cheaper)
class RawEvent:
    """One event as received, before validation and enrichment."""

    site: str
    name: str
    url: str
    referrer: str | None = None
    screen_width: int | None = None
    props: str | Mapping[str, Any] | None = None
    revenue: Any = None
    currency: Any = None
    user_id: str | None = None
    timestamp: datetime | None = None
    hash_mode: bool = False
    scroll_depth: Any = None  # sd: checked by the tracker (engagement events only)
    engagement_ms: Any = None  # e: likewise
    interactive: bool | None = None  # False for ``i: false``


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_props(props: Mapping[str, Any]) -> None:
    """Raise unless ``props`` (a decoded JSON object) is within Plausible's limits on custom properties.

    Raises:
        InvalidEventError: ``too_many_props``, ``prop_key_too_long``, ``prop_value_too_long`` or
            ``nested_prop``, the message naming the key and the limit.
    """
    if len(props) > MAX_PROP_KEYS:
        raise InvalidEventError(f"props has {len(props)} keys; an event may carry at most "
                                f"{MAX_PROP_KEYS}.", code="too_many_props")
    for key, value in props.items():
        if not isinstance(key, str):
            continue  # not JSON: the tracker drops such props with a warning
        named = repr(key[:40]) + ("..." if len(key) > 40 else "")
        if _bytes(key) > MAX_PROP_KEY_BYTES:
            raise InvalidEventError(f"props key {named} is longer than {MAX_PROP_KEY_BYTES} bytes.",
                                    code="prop_key_too_long")
        if isinstance(value, (Mapping, list, tuple)):
            raise InvalidEventError(f"props value of {named} is a nested object or array; a value "
                                    "must be a string, a number, a boolean or null.", code="nested_prop")
        if isinstance(value, str) and _bytes(value) > MAX_PROP_VALUE_BYTES:
            raise InvalidEventError(f"props value of {named} is longer than {MAX_PROP_VALUE_BYTES} "
                                    "bytes.", code="prop_value_too_long")


def _first(obj: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in obj and obj[key] is not None:
            return obj[key]
    return None


def _text(obj: Mapping[str, Any], field: str, *keys: str, required: bool = False) -> str | None:
    value = _first(obj, *keys)
    if value is None:
        if required:
            raise InvalidEventError(f"Missing required field '{field}'.", code="missing_field")
        return None
    if not isinstance(value, str):
        raise InvalidEventError(f"Field '{field}' must be a string.", code="invalid_type")
    if required and value == "":
        raise InvalidEventError(f"{_NAMES[field]} must not be empty", code="empty_field")
    return value


_NAMES: Final = {"d": "site_id", "n": "event name", "u": "url"}


def _width(obj: Mapping[str, Any]) -> int | None:
    value = _first(obj, "w", "screen_width")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEventError("Field 'w' must be a non-negative integer.", code="invalid_type")
    if value != value or value < 0 or value > _UINT32 or int(value) != value:
        raise InvalidEventError("Field 'w' must be a non-negative integer.", code="invalid_type")
    return int(value)


_SHORT_KEYS: Final = frozenset({"d", "n", "u", "r", "w"})


def from_mapping(obj: object) -> list[RawEvent]:
    """The events of one JSON object (several when a Plausible ``domain`` lists several sites)."""
    if not isinstance(obj, Mapping):
        raise InvalidEventError("An event must be a JSON object.", code="invalid_type")
    if type(obj) is dict and obj.keys() <= _SHORT_KEYS:  # the tracker's pageview: the common case
        site, name, url, ref = obj.get("d"), obj.get("n"), obj.get("u"), obj.get("r")
        width = obj.get("w")
        if (type(site) is str and type(name) is str and type(url) is str and site and name and url
                and "," not in site and (ref is None or type(ref) is str)
                and (width is None or (type(width) is int and 0 <= width <= _UINT32))):
            return [RawEvent(site, name, url, ref, width)]
    sites = _text(obj, "d", "d", "domain", required=True)
    name = _text(obj, "n", "n", "name", required=True)
    url = _text(obj, "u", "u", "url", required=True)
    referrer = _text(obj, "r", "r", "referrer")
    props = _first(obj, "p", "props", "m", "meta")
    if props is not None and not isinstance(props, (str, Mapping)):
        raise InvalidEventError("Field 'p' must be a JSON object or a string holding one.",
                                code="invalid_type")
    revenue = _first(obj, "ra")
    currency = _first(obj, "rc")
    plausible_revenue = _first(obj, "$", "revenue")
    if plausible_revenue is not None:
        if isinstance(plausible_revenue, str):
            try:
                plausible_revenue = orjson.loads(plausible_revenue)
            except orjson.JSONDecodeError:
                plausible_revenue = None
        if isinstance(plausible_revenue, Mapping):
            revenue = plausible_revenue.get("amount", revenue)
            currency = plausible_revenue.get("currency", currency)
    width = _width(obj)
    hash_mode = _first(obj, "h", "hashMode") in (1, "1")  # Plausible's hash-based routing (1 or true)
    interactive = False if obj.get("i", obj.get("interactive")) in (False, 0, "false") else None
    assert sites is not None and name is not None and url is not None
    site_list = _split_sites(sites) if "," in sites else (sites,)
    return [RawEvent(site, name, url, referrer, width, props, revenue, currency, hash_mode=hash_mode,
                     scroll_depth=obj.get("sd"), engagement_ms=obj.get("e"), interactive=interactive)
            for site in site_list]


def _split_sites(sites: str) -> tuple[str, ...]:
    """The distinct sites of a comma-separated ``domain``, in order (at most :data:`MAX_SITES`)."""
    names = tuple(dict.fromkeys(s.strip() for s in sites.split(",")))
    if "" in names:
        raise InvalidEventError("The site list in 'domain' has an empty entry (two commas in a row, "
                                "or a comma at either end).", code="invalid_field")
    if len(names) > MAX_SITES:
        raise InvalidEventError(f"'domain' lists {len(names)} sites; one event may name at most "
                                f"{MAX_SITES}.", code="too_many_sites")
    return names


def parse_body(body: bytes | str) -> list[RawEvent]:
    """Events from a request body: one JSON object, or an array of at most 1000 objects."""
    return parse_request(body)[0]


def parse_request(body: bytes | str) -> tuple[list[RawEvent], list[int] | None]:
    """Events from a request body, and for a batch, the array index each event came from.

    A JSON array holds at most :data:`MAX_BATCH` objects and may expand (one event per site of a
    ``domain``) to at most :data:`MAX_BATCH` events. An error in an object names its index.

    Raises:
        InvalidEventError: malformed JSON, a bad object (``event <i>: …`` in a batch), a batch that
            is empty or too large (``batch_too_large``), a ``domain`` naming too many sites.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidEventError("Request body is not valid JSON.", code="malformed_json") from None
    if not isinstance(data, list):
        return from_mapping(data), None
    if not data:
        raise InvalidEventError("The event array is empty.", code="invalid_type")
    if len(data) > MAX_BATCH:
        raise InvalidEventError(f"At most {MAX_BATCH} events may be sent in one batch.",
                                code="batch_too_large")
    raws: list[RawEvent] = []
    origins: list[int] = []
    for index, item in enumerate(data):
        try:
            events = from_mapping(item)
        except InvalidEventError as exc:
            raise InvalidEventError(f"event {index}: {exc.message} (no event of the batch was stored)",
                                    code=exc.code) from None
        raws += events
        origins += [index] * len(events)
        if len(raws) > MAX_BATCH:
            raise InvalidEventError(
                f"At most {MAX_BATCH} events may be sent in one batch, counting an event once per "
                f"site of its 'domain' (event {index} goes past that).", code="batch_too_large")
    return raws, origins


def from_query(query: Mapping[str, Sequence[str]]) -> list[RawEvent]:
    """Events of a pixel request (``GET /api/event?d=…&u=…``); ``n`` defaults to ``pageview``."""
    flat: dict[str, Any] = {k: v[-1] for k, v in query.items() if v}
    flat.setdefault("n", "pageview")
    if "w" in flat:
        width = flat["w"]
        # Plain ASCII digits only: int() would also take "1_000", " +12 " or "١٢".
        if not (isinstance(width, str) and width.isascii() and width.isdigit() and len(width) <= 10):
            raise InvalidEventError("Field 'w' must be a non-negative integer.", code="invalid_param")
        flat["w"] = int(width)
    try:
        return from_mapping(flat)
    except InvalidEventError as exc:
        code = _QUERY_CODES.get(exc.code)
        if code is None:
            raise
        raise InvalidEventError(exc.message, code=code) from None


#: A pixel's fields are query parameters: one left out or malformed is a bad parameter (HTTP 400), not
#: a JSON body of the wrong shape (HTTP 422).
_QUERY_CODES: Final = {"missing_field": "missing_param", "invalid_type": "invalid_param"}
