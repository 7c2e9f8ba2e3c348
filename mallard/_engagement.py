"""Engagement events: Plausible's report of how a page view went, read from ``sd`` and ``e``.

Plausible's script (and mallard.js) sends ``{"n": "engagement", "sd": <percent>, "e": <ms>, ...}`` when a
page is left (an SPA navigation, the tab hidden, the page unloaded). Such an event is not an event of its
own: it is stored as a row named ``engagement`` that carries the deepest scroll of the page view
(``scroll_depth``) and the time it was visible and engaged since the previous report (``engagement_ms``),
and every analysis leaves these rows out but the metrics ``scroll_depth`` and ``time_on_page``
(see docs/concepts.md, "Engagement").

The values are read as Plausible reads them: a whole number (or a string of digits); a scroll depth
above 100 counts as 100, a negative one as not reported; an engaged time must be under 30 days (older
scripts sent huge values), else it counts as not reported. An engagement event that reports neither is
refused.
"""

from __future__ import annotations

from typing import Any, Final

from ._errors import InvalidEventError
from ._payload import RawEvent

NAME: Final = "engagement"
MAX_ENGAGEMENT_MS: Final = 30 * 24 * 3600 * 1000


def _whole(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def scroll_depth(value: Any) -> int | None:
    """``sd`` as a percent from 0 to 100, or None when it is missing or not a whole number >= 0."""
    depth = _whole(value)
    if depth is None or depth < 0:
        return None
    return min(depth, 100)


def engagement_ms(value: Any) -> int | None:
    """``e`` in milliseconds, or None when it is missing, not a whole number, negative or 30 days or
    more."""
    ms = _whole(value)
    if ms is None or not 0 <= ms < MAX_ENGAGEMENT_MS:
        return None
    return ms


def values(raw: RawEvent) -> tuple[int | None, int | None, bool | None]:
    """The (scroll_depth, engagement_ms, interactive) ``raw`` stores: the first two are None but for an
    engagement event; ``interactive`` is False for a non-interactive event, else None.

    Raises:
        InvalidEventError: ``invalid_engagement`` for an engagement event with neither value.
    """
    interactive = False if raw.interactive is False else None
    if raw.name != NAME:
        return None, None, interactive
    depth, ms = scroll_depth(raw.scroll_depth), engagement_ms(raw.engagement_ms)
    if depth is None and ms is None:
        raise InvalidEventError(
            "An engagement event must carry a whole number in 'sd' (scroll depth, percent) or in 'e' "
            f"(engaged milliseconds, under {MAX_ENGAGEMENT_MS}).", code="invalid_engagement")
    return depth, ms, interactive
