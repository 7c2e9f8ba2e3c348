"""``visit:channel`` for rows stored without a channel: the rules of enrich/channels.py, in SQL.

The tracker stores each event's channel (lake column ``channel``, schema version 3), computed from the
event's source, UTM tags and click id (``click_id``: which ad click-id parameter the landing URL had,
known only while the URL is, hence at ingestion). Rows stored before (files of schema versions 1 and 2,
or written by other tools) have none: queries read ``coalesce(channel, <rules over the row's stored
columns>)``, so ``visit:channel`` works for every file on disk. Such a row has no ``click_id`` (its
URL's query string was never kept), so its Paid Search is only what its UTM tags say. DuckDB evaluates
the rules only for the rows without a stored channel: measured on a loaded 2-core machine, 2M rows
without UTM tags took 1.4 s, 2M rows of which 15% tagged 3.7-5 s, 2M rows with a stored channel 0.4 s.

The SQL is generated from the vocabulary of enrich/channels.py (the one definition), and a test
checks it against :func:`mallard._enrich.channels.channel` over every combination of a grid of values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

from .._enrich import channels as ch
from .._enrich.referrers import DIRECT, PAID_TAGS, sources_by_medium
from .sql import Sql

_SRC: Final = f"lower(coalesce(nullif(referrer_source, '{DIRECT}'), ''))"
_MED: Final = "lower(coalesce(utm_medium, ''))"
_CAMP: Final = "lower(coalesce(utm_campaign, ''))"
_USRC: Final = "lower(coalesce(utm_source, ''))"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(expr: str, values: Iterable[str]) -> str:
    return f"{expr} IN ({', '.join(_quote(v) for v in sorted(values))})"


def _source_in(medium: str) -> str:
    return _in(_SRC, {name.lower() for name in sources_by_medium().get(medium, ())})


def _expression() -> str:
    paid_medium = (f"(contains({_MED}, {_quote(ch.PAID_MEDIUM_PART)}) OR {_in(_MED, ch.PAID_MEDIUMS)} "
                   f"OR starts_with({_MED}, {_quote(ch.PAID_MEDIUM_PREFIX)}))")
    paid = f"({paid_medium} OR {_in(_USRC, PAID_TAGS)})"
    shopping = (f"({_source_in('shopping')} OR regexp_matches({_CAMP}, "
                f"{_quote(ch.SHOPPING_CAMPAIGN)}))")
    mentions_email = " OR ".join(f"contains({col}, {_quote(t)})" for col in (_USRC, _MED)
                                 for t in ch.EMAIL_TAGS)
    push = " OR ".join([f"suffix({_MED}, {_quote(ch.PUSH_MEDIUM_SUFFIX)})",
                        *(f"contains({_MED}, {_quote(p)})" for p in ch.PUSH_MEDIUM_PARTS),
                        f"{_SRC} = {_quote(ch.PUSH_SOURCE)}"])
    rules = (
        (f"contains({_CAMP}, 'cross-network')", "Cross-network"),
        (f"{shopping} AND {paid_medium}", "Paid Shopping"),
        (f"({_source_in('search')} AND {paid}) OR ({_SRC} = 'google' AND click_id = 'gclid') "
         f"OR ({_SRC} = 'bing' AND click_id = 'msclkid')", "Paid Search"),
        (f"{_source_in('social')} AND {paid}", "Paid Social"),
        (f"{_source_in('video')} AND {paid}", "Paid Video"),
        (_in(_MED, ch.DISPLAY_MEDIUMS), "Display"),
        (paid_medium, "Paid Other"),
        (shopping, "Organic Shopping"),
        (f"{_source_in('social')} OR {_in(_MED, ch.SOCIAL_MEDIUMS)}", "Organic Social"),
        (f"{_source_in('video')} OR contains({_MED}, 'video')", "Organic Video"),
        (_source_in("ai"), "AI Assistants"),
        (_source_in("search"), "Organic Search"),
        (f"{_source_in('email')} OR {mentions_email}", "Email"),
        (f"{_MED} = 'affiliate'", "Affiliates"),
        (f"{_MED} = 'audio'", "Audio"),
        (f"{_USRC} = 'sms' OR {_MED} = 'sms'", "SMS"),
        (push, "Mobile Push Notifications"),
        (f"{_in(_MED, ch.REFERRAL_MEDIUMS)} OR {_SRC} <> ''", "Referral"),
    )
    assert tuple(c for _, c in rules) == ch.CHANNELS[:-1]
    whens = " ".join(f"WHEN {cond} THEN {_quote(name)}" for cond, name in rules)
    # Most rows carry no tag and no click id: for them the rules reduce to the source's category,
    # which costs a quarter of the full list.
    untagged = [("shopping", "Organic Shopping"), ("social", "Organic Social"),
                ("video", "Organic Video"), ("ai", "AI Assistants"), ("search", "Organic Search"),
                ("email", "Email")]
    by_source = " ".join(f"WHEN {_source_in(category)} THEN {_quote(name)}"
                         for category, name in untagged)
    return (f"CASE WHEN utm_medium IS NULL AND utm_campaign IS NULL AND utm_source IS NULL AND "
            f"click_id IS NULL THEN CASE {by_source} WHEN {_SRC} = {_quote(ch.PUSH_SOURCE)} THEN "
            f"'Mobile Push Notifications' WHEN {_SRC} <> '' THEN 'Referral' ELSE 'Direct' END "
            f"ELSE CASE {whens} ELSE {_quote(ch.CHANNELS[-1])} END END")


#: SQL of an event's channel by the rules, over the lake columns (identifiers and constants only).
RULES: Final = _expression()

#: Lake columns that queries complete when a row has none stored: column → SQL of its value.
COMPUTED: Final = {"channel": f"coalesce(channel, {RULES})"}


def with_computed(source: Sql, columns: Collection[str] | None = None) -> Sql:
    """``source`` (a relation with the lake columns) with the :data:`COMPUTED` columns completed
    (DuckDB evaluates them only where a statement reads them; it binds them in every statement, a few
    milliseconds each: with the ``columns`` a statement reads given, ``source`` as it is when it reads
    none of them)."""
    if columns is not None and COMPUTED.keys().isdisjoint(columns):
        return source
    replaced = ", ".join(f"{expr} AS {name}" for name, expr in COMPUTED.items())
    return Sql(f"SELECT * REPLACE ({replaced}) FROM (") + source + ")"
