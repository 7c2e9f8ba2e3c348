"""The first step of the tracking pipeline: a raw event's fields checked against their types and limits.

Limits are Plausible's where it has them (event name, page URL); an event over a limit is refused with
an :class:`~mallard._errors.InvalidEventError` naming the field and its ``code``, never truncated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from . import _engagement as engagement
from ._enrich.urls import sanitize
from ._errors import InvalidEventError
from ._events import MAX_SITE_ID, validate_site_id
from ._payload import RawEvent

__all__ = ["MAX_NAME", "MAX_PAGE_URL", "MAX_PROPS", "MAX_URL", "MAX_USER_ID", "check_len", "validate"]

MAX_NAME: Final = 120  # characters, Plausible's limit
MAX_PAGE_URL: Final = 2000  # UTF-8 bytes, Plausible's limit
MAX_URL: Final = 2048  # the referrer's, in UTF-8 bytes
MAX_PROPS: Final = 4096
MAX_USER_ID: Final = 512
_FUTURE_SLACK: Final = timedelta(minutes=5)
_MAX_WIDTH: Final = 2**32 - 1
_valid_site_id = lru_cache(maxsize=4096)(validate_site_id)


def _ascii(value: object) -> bool:
    """True for None and ASCII text (the common case: nothing to check for lone surrogates)."""
    return value is None or (isinstance(value, str) and value.isascii())


def check_len(value: str | None, limit: int, what: str) -> None:
    # Limits are in UTF-8 bytes; only text longer than limit/4 characters can exceed one.
    if value is not None and len(value) * 4 > limit and (
        len(value) > limit or len(value.encode("utf-8", "surrogatepass")) > limit
    ):
        raise InvalidEventError(f"{what} must be at most {limit} bytes", code="too_long")


def validate(raw: RawEvent, now: datetime
             ) -> tuple[str, datetime, tuple[int | None, int | None, bool | None]]:
    """The event's site id and UTC timestamp (``now`` when it has none) and its engagement values
    (:func:`mallard._engagement.values`), or :class:`InvalidEventError`."""
    for value, what in ((raw.site, "site_id"), (raw.name, "event name"), (raw.url, "url")):
        if not isinstance(value, str):
            raise InvalidEventError(f"{what} must be a string", code="invalid_type")
    props = raw.props if isinstance(raw.props, str) else None
    if not (raw.name.isascii() and raw.url.isascii() and _ascii(raw.referrer)
            and _ascii(raw.user_id) and _ascii(props)):
        for text, what in ((raw.name, "event name"), (raw.url, "url"),
                           (raw.referrer, "referrer"), (raw.user_id, "user_id"), (props, "props")):
            try:
                if isinstance(text, str):
                    text.encode()
            except UnicodeEncodeError:  # a lone surrogate cannot be stored or journaled
                raise InvalidEventError(f"{what} is not valid Unicode text",
                                        code="invalid_field") from None
    if not raw.name or (not raw.name.isprintable() and not sanitize(raw.name, MAX_NAME)):
        raise InvalidEventError("event name must not be empty", code="empty_field")
    if not raw.url:
        raise InvalidEventError("url must not be empty", code="empty_field")
    check_len(raw.site, MAX_SITE_ID, "site_id")
    if len(raw.name) > MAX_NAME:
        raise InvalidEventError(f"event name must be at most {MAX_NAME} characters",
                                code="too_long")
    check_len(raw.url, MAX_PAGE_URL, "url")
    check_len(raw.referrer, MAX_URL, "referrer")
    if isinstance(raw.props, str):
        check_len(raw.props, MAX_PROPS, "props")
    if raw.user_id is not None and (not raw.user_id or len(raw.user_id) > MAX_USER_ID):
        raise InvalidEventError(f"user_id must be 1 to {MAX_USER_ID} characters",
                                code="invalid_field")
    width = raw.screen_width  # track() callers bypass the payload's check
    if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                              or not 0 <= width <= _MAX_WIDTH):
        raise InvalidEventError(f"screen_width must be a whole number from 0 to {_MAX_WIDTH}",
                                code="invalid_field")
    site = _valid_site_id(raw.site)
    ts = raw.timestamp
    if ts is None:
        ts = now
    elif ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # naive timestamps are taken as UTC
    try:
        if ts > now + _FUTURE_SLACK:
            raise InvalidEventError("timestamp must not be in the future", code="invalid_field")
        stamped = ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at +05:00 is before the first representable UTC time
        raise InvalidEventError("timestamp is out of range", code="invalid_field") from None
    return site, stamped, engagement.values(raw)
