"""A visit's acquisition channel, and what the landing URL's query string says about it.

Two facts, read before the query string is dropped (the lake keeps the path only):

* the **source tag**: the first non-empty of ``utm_source``, ``source`` and ``ref`` (Plausible's
  order), which names the source when the visit has no referrer (:func:`~.referrers.visit_source`);
* the **click id**: which ad click-id parameter the URL has, ``gclid`` (Google Ads) or ``msclkid``
  (Microsoft Ads). Only the parameter's name is kept, never its value (a per-click identifier): a
  visit from Google with ``gclid`` is Paid Search, not Organic Search (``visit:channel``).

Keys are matched case-insensitively, as UTM keys are (urls.py); values are percent-decoded.

:func:`channel` classifies an event into Plausible's channels from its stored columns; the tracker
stores the result (lake column ``channel``), and queries compute it by the same rules, in SQL, for rows
stored without one (mallard/_queries/acquisition.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple
from urllib.parse import unquote_plus

from .referrers import DIRECT, PAID_TAGS, sources_by_medium
from .urls import MAX_UTM, sanitize

#: Keys of a source tag, by precedence.
TAG_KEYS: Final = ("utm_source", "source", "ref")
#: Click-id parameters whose presence changes the channel, by precedence.
CLICK_IDS: Final = ("gclid", "msclkid")
_KEYS: Final = frozenset((*TAG_KEYS, *CLICK_IDS))


class Landing(NamedTuple):
    tag: str | None  # the source tag's value
    click_id: str | None  # the click-id parameter's name


_NONE: Final = Landing(None, None)


@lru_cache(maxsize=16_384)
def landing(url: str) -> Landing:
    """The source tag and click id of a page URL (absolute or relative); ``(None, None)`` without."""
    query = url.partition("#")[0].partition("?")[2]
    if not query:
        return _NONE
    found: dict[str, str] = {}
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if key not in _KEYS or not sep or not value:
            continue
        if key in CLICK_IDS:
            found.setdefault(key, key)
            continue
        decoded = sanitize(unquote_plus(value, errors="replace"), MAX_UTM).strip()
        if decoded:
            found[key] = decoded  # later duplicates win, as for UTM values
    tag = next((found[k] for k in TAG_KEYS if k in found), None)
    click_id = next((k for k in CLICK_IDS if k in found), None)
    return Landing(tag, click_id) if tag or click_id else _NONE


# -- the channel rules (Plausible's, from its GA4-derived grouping; AI assistants on their own) -----
# One definition of the vocabulary: channel() below and the query-time SQL for rows stored without a
# channel (mallard/_queries/acquisition.py) both read these.
#: The channels, in the order their rules are tried (the first match wins; the last is the default).
CHANNELS: Final = ("Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video",
                   "Display", "Paid Other", "Organic Shopping", "Organic Social", "Organic Video",
                   "AI Assistants", "Organic Search", "Email", "Affiliates", "Audio", "SMS",
                   "Mobile Push Notifications", "Referral", "Direct")
#: A paid medium: one containing ``cp`` (cpc, cpm, cpa…), ``ppc``, ``retargeting``, or ``paid…``.
PAID_MEDIUM_PART: Final = "cp"
PAID_MEDIUMS: Final = frozenset({"ppc", "retargeting"})
PAID_MEDIUM_PREFIX: Final = "paid"
#: A shopping campaign: ``shopping``, or ``shop`` at the start or after a character other than a
#: letter a-d / f-z (``summer-shop``, ``eshop``; not ``workshop``).
SHOPPING_CAMPAIGN: Final = "(^|[^a-df-z])shop|shopping"
DISPLAY_MEDIUMS: Final = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS: Final = frozenset({"social", "social-network", "social-media", "sm",
                                   "social network", "social media"})
EMAIL_TAGS: Final = ("email", "e-mail", "e_mail", "e mail", "newsletter")
REFERRAL_MEDIUMS: Final = frozenset({"referral", "app", "link"})
PUSH_MEDIUM_SUFFIX: Final = "push"
PUSH_MEDIUM_PARTS: Final = ("mobile", "notification")
PUSH_SOURCE: Final = "firebase"

_CATEGORY: Final[dict[str, str]] = {name.lower(): medium for medium, names in
                                    sources_by_medium().items() for name in names}
_SHOPPING_RE: Final = re.compile(SHOPPING_CAMPAIGN)


def _paid_medium(medium: str) -> bool:
    return (PAID_MEDIUM_PART in medium or medium in PAID_MEDIUMS
            or medium.startswith(PAID_MEDIUM_PREFIX))


@lru_cache(maxsize=16_384)
def channel(source: str | None, utm_medium: str | None, utm_campaign: str | None,
            utm_source: str | None, click_id: str | None) -> str:
    """The channel of an event from its stored columns (``referrer_source``, ``utm_medium``,
    ``utm_campaign``, ``utm_source``, ``click_id``); docs/queries.md#sources-and-channels lists the
    rules."""
    src = "" if source is None or source == DIRECT else source.lower()
    med, camp, usrc = (utm_medium or "").lower(), (utm_campaign or "").lower(), (utm_source or "").lower()
    category = _CATEGORY.get(src)
    paid_medium = _paid_medium(med)
    paid = paid_medium or usrc in PAID_TAGS
    shopping = category == "shopping" or _SHOPPING_RE.search(camp) is not None
    if "cross-network" in camp:
        return "Cross-network"
    if shopping and paid_medium:
        return "Paid Shopping"
    if (category == "search" and paid) or (src == "google" and click_id == "gclid") or (
            src == "bing" and click_id == "msclkid"):
        return "Paid Search"
    if category in ("social", "video") and paid:
        return "Paid Social" if category == "social" else "Paid Video"
    if med in DISPLAY_MEDIUMS:
        return "Display"
    if paid_medium:
        return "Paid Other"
    if shopping:
        return "Organic Shopping"
    if category == "social" or med in SOCIAL_MEDIUMS:
        return "Organic Social"
    if category == "video" or "video" in med:
        return "Organic Video"
    if category == "ai":
        return "AI Assistants"
    if category == "search":
        return "Organic Search"
    if category == "email" or any(t in usrc or t in med for t in EMAIL_TAGS):
        return "Email"
    if med == "affiliate":
        return "Affiliates"
    if med == "audio":
        return "Audio"
    if usrc == "sms" or med == "sms":
        return "SMS"
    if (med.endswith(PUSH_MEDIUM_SUFFIX) or any(p in med for p in PUSH_MEDIUM_PARTS)
            or src == PUSH_SOURCE):
        return "Mobile Push Notifications"
    if med in REFERRAL_MEDIUMS or src:
        return "Referral"
    return "Direct"
