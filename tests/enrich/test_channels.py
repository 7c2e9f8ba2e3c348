"""enrich/channels.py: the landing URL's source tag and click id, and the channel rules, which the
query-time SQL for rows stored without a channel (queries/acquisition.py) must equal."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa
import pytest

from mallard._enrich.channels import CHANNELS, Landing, channel, landing
from mallard._queries.acquisition import RULES


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.example/", Landing(None, None)),
    ("https://a.example/?utm_source=Google&ref=x", Landing("Google", None)),
    ("https://a.example/?ref=hn&source=news", Landing("news", None)),  # utm_source, source, ref
    ("/pricing?REF=producthunt", Landing("producthunt", None)),  # keys in any case, relative URLs
    ("https://a.example/?ref=a+b%20c", Landing("a b c", None)),
    ("https://a.example/?ref=&utm_source=", Landing(None, None)),  # empty values are no tag
    ("https://a.example/?gclid=Cj0KCQ&msclkid=1", Landing(None, "gclid")),
    ("https://a.example/?msclkid=abc&ref=x", Landing("x", "msclkid")),
    ("https://a.example/?gclid=", Landing(None, None)),
    ("https://a.example/#?ref=fragment", Landing(None, None)),  # the fragment is not the query
    ("https://a.example/?ref=" + "x" * 300, Landing("x" * 256, None)),  # bounded like UTM values
])
def test_landing(url: str, expected: Landing) -> None:
    assert landing(url) == expected


SOURCES = [None, "(direct)", "Google", "GOOGLE", "Bing", "Reddit", "YouTube", "Amazon", "ChatGPT",
           "Gmail", "firebase", "news.example", "newsletter"]
MEDIUMS = [None, "cpc", "PPC", "paid_social", "retargeting", "display", "cpm", "social", "sm",
           "video", "email", "E-Mail", "affiliate", "audio", "sms", "web-push", "mobile", "referral",
           "organic"]
CAMPAIGNS = [None, "Cross-Network", "summer-shop", "eshop", "workshop", "shopping", "spring"]
TAGS = [None, "adwords", "fb-ads", "newsletter", "sms", "x"]
CLICKS = [None, "gclid", "msclkid"]


def test_query_time_rules_equal_the_tracker_rules() -> None:
    """The SQL that completes rows stored without a channel gives, on every combination of a grid of
    values (each rule's edges), the channel the tracker stores."""
    grid = list(itertools.product(SOURCES, MEDIUMS, CAMPAIGNS, TAGS, CLICKS))
    con = duckdb.connect()
    try:
        names = ["referrer_source", "utm_medium", "utm_campaign", "utm_source", "click_id"]
        table = pa.table({"i": range(len(grid)), **{n: pa.array(col, pa.string())
                                                     for n, col in zip(names, zip(*grid, strict=True),
                                                                       strict=True)}})
        con.register("t", table)
        got = dict(con.execute(f"SELECT i, {RULES} FROM t").fetchall())
    finally:
        con.close()
    expected = {i: channel(*row) for i, row in enumerate(grid)}
    assert got == expected
    assert set(expected.values()) == set(CHANNELS)  # the grid reaches every rule
