"""Next-page flow (behavioral-analytics.md §5.5): hand-computed cases, validation, injection safety, and a
differential test against ClickHouse's ``sequenceNextNode`` run by chdb over the same Parquet files."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallard._errors import InvalidQueryError
from mallard._events import Event
from mallard._queries import DateRange, Queries
from mallard._queries.flow import flow
from mallard._settings import Settings
from mallard._store import Store

from .chdb_flow_oracle import (
    PATHS,
    RANGE_ENDS,
    RANGE_STARTS,
    SITES,
    ch_flow,
    clickstreams,
    lake_glob,
    write_shuffled,
)
from .data import OTHER_SITE, SITE, event

MakeQueries = Callable[..., Queries]
DAY1 = date(2024, 4, 1)
RANGE = DateRange(DAY1, date(2024, 4, 2))
LONG = "/" + "x" * 1999  # 2,000 characters


def clicks() -> list[Event]:
    """The hand-made clickstream of the flow tests (see each visitor's comment)."""
    return [
        # v1: / → /pricing → / → /b : the first / counts, so its next page is /pricing
        event("v1", "2024-04-01 10:00:00", path="/"),
        event("v1", "2024-04-01 10:01:00", path="/pricing"),
        event("v1", "2024-04-01 10:02:00", path="/"),
        event("v1", "2024-04-01 10:03:00", path="/b"),
        # v2: three pageviews at one instant, in storage order /b, /a, /: ordered by pathname → / /a /b
        event("v2", "2024-04-01 10:00:00", path="/b"),
        event("v2", "2024-04-01 10:00:00", path="/a"),
        event("v2", "2024-04-01 10:00:00", path="/"),
        # v3: /a stored first, but ties are broken by pathname: / then /a
        event("v3", "2024-04-01 09:00:00", path="/a"),
        event("v3", "2024-04-01 09:00:00", path="/"),
        # v4: a custom event between two pageviews of / is not a node: / → / (reload)
        event("v4", "2024-04-01 11:00:00", path="/"),
        event("v4", "2024-04-01 11:01:00", "signup", "/signup"),
        event("v4", "2024-04-01 11:02:00", path="/"),
        # v5: / then only a custom event: an exit
        event("v5", "2024-04-01 12:00:00", path="/"),
        event("v5", "2024-04-01 12:01:00", "signup", "/checkout"),
        # v6: a user id joins the two days (two daily visitor ids): / → /checkout
        event("d1", "2024-04-01 23:00:00", path="/", user_id="u6"),
        event("d2", "2024-04-02 08:00:00", path="/checkout", user_id="u6"),
        # v7: anonymous across midnight: two daily ids, so e1's / is an exit (and e2 never saw /)
        event("e1", "2024-04-01 23:50:00", path="/"),
        event("e2", "2024-04-02 00:10:00", path="/checkout"),
        # v9: the next pageview is after the range: an exit
        event("v9", "2024-04-02 23:59:59.999999", path="/"),
        event("v9", "2024-04-03 00:00:00", path="/late"),
        # v10: two identical rows of / (interchangeable), then /a: the next page is / again
        event("v10", "2024-04-01 10:00:00", path="/"),
        event("v10", "2024-04-01 10:00:00", path="/"),
        event("v10", "2024-04-01 10:00:01", path="/a"),
        # other site, and before the range: never counted
        event("v8", "2024-04-01 10:00:00", path="/", site=OTHER_SITE),
        event("v8", "2024-04-01 10:00:01", path="/other", site=OTHER_SITE),
        event("v11", "2024-03-31 23:59:59.999999", path="/"),
        event("v11", "2024-04-01 00:00:00", path="/before"),
        # hostile paths, matched exactly
        event("h1", "2024-04-01 15:00:00", path="/it's"),
        event("h1", "2024-04-01 15:00:01", path='/"; DROP TABLE events; --'),
        event("h1", "2024-04-01 15:00:02", path="/ünï/🦆"),
        event("h1", "2024-04-01 15:00:03", path=LONG),
        event("h1", "2024-04-01 15:00:04", path="/it's"),
    ]


@pytest.fixture
def q(make_queries: MakeQueries) -> Queries:
    """Queries over ``clicks()`` written in two batches (the second batch first in each partition)."""
    return make_queries(clicks()[::-1])


def rows(result: dict[str, Any]) -> list[tuple[str, int]]:
    return [(r["next_page"], r["visitors"]) for r in result["next_pages"]]


def test_flow_after_home_page(q: Queries) -> None:
    """First pageview of / per visitor: ties by pathname, custom events skipped, exits counted."""
    result = flow(q.access, SITE, RANGE, "/")
    assert result["visitors_at_page"] == 9  # v1 v2 v3 v4 v5 u6 e1 v9 v10
    assert result["exits"] == 3  # v5 e1 v9
    assert rows(result) == [("/", 2), ("/a", 2), ("/checkout", 1), ("/pricing", 1)]
    assert [r["share"] for r in result["next_pages"]] == [2 / 9, 2 / 9, 1 / 9, 1 / 9]
    assert result["page"] == "/"


def test_previous_pages(q: Queries) -> None:
    """direction="previous": the page viewed just before each identity's first pageview of the page
    (same order and ties as the next pages); none is an entrance."""
    before_a = flow(q.access, SITE, RANGE, "/a", direction="previous").to_dict()
    assert before_a == {"page": "/a", "visitors_at_page": 3, "entrances": 0,  # v2 v3 v10
                        "previous_pages": [{"previous_page": "/", "visitors": 3, "share": 1.0}]}
    checkout = flow(q.access, SITE, RANGE, "/checkout", direction="previous")
    assert (checkout["visitors_at_page"], checkout["entrances"]) == (2, 1)  # u6 after /, e2 entered there
    assert [(r["previous_page"], r["visitors"]) for r in checkout["previous_pages"]] == [("/", 1)]
    home = flow(q.access, SITE, RANGE, "/", direction="previous")
    assert (home["visitors_at_page"], home["entrances"], home["previous_pages"]) == (9, 9, [])
    with pytest.raises(InvalidQueryError, match="direction must be") as info:
        flow(q.access, SITE, RANGE, "/", direction="back")
    assert info.value.code == "invalid_direction"


def test_flow_limit_keeps_totals(q: Queries) -> None:
    """The limit cuts the rows (visitors desc, then page) but not visitors_at_page or exits."""
    result = flow(q.access, SITE, RANGE, "/", limit=2)
    assert rows(result) == [("/", 2), ("/a", 2)]
    assert (result["visitors_at_page"], result["exits"]) == (9, 3)


def test_flow_tie_rule_for_later_pages(q: Queries) -> None:
    """A page that sorts last among tied pageviews is the visitor's last node: /b is an exit for v1, v2."""
    assert flow(q.access, SITE, RANGE, "/b").to_dict() == {"page": "/b", "visitors_at_page": 2, "exits": 2,
                                                          "next_pages": []}
    result = flow(q.access, SITE, RANGE, "/a")  # v2: /a → /b; v3 and v10: /a is last
    assert (result["visitors_at_page"], result["exits"], rows(result)) == (3, 2, [("/b", 1)])


def test_flow_custom_events_are_not_nodes(q: Queries) -> None:
    """A path seen only on custom events has no visitors; a custom event is never a next page."""
    assert flow(q.access, SITE, RANGE, "/signup").to_dict() == {
        "page": "/signup", "visitors_at_page": 0, "exits": 0, "next_pages": []}
    assert "/signup" not in [r["next_page"] for r in flow(q.access, SITE, RANGE, "/")["next_pages"]]


def test_flow_other_site(q: Queries) -> None:
    """Another site's events are a separate flow."""
    result = flow(q.access, OTHER_SITE, RANGE, "/")
    assert (result["visitors_at_page"], result["exits"], rows(result)) == (1, 0, [("/other", 1)])


def test_flow_hostile_paths_match_exactly(q: Queries) -> None:
    """Quotes, SQL, unicode and a 2,000-character path are bound values and match themselves only."""
    assert rows(flow(q.access, SITE, RANGE, "/it's")) == [('/"; DROP TABLE events; --', 1)]
    assert rows(flow(q.access, SITE, RANGE, '/"; DROP TABLE events; --')) == [("/ünï/🦆", 1)]
    assert rows(flow(q.access, SITE, RANGE, "/ünï/🦆")) == [(LONG, 1)]
    assert rows(flow(q.access, SITE, RANGE, LONG)) == [("/it's", 1)]
    assert flow(q.access, SITE, RANGE, "/' OR '1'='1")["visitors_at_page"] == 0
    assert flow(q.access, SITE, RANGE, "/x\x00y")["visitors_at_page"] == 0
    assert flow(q.access, SITE, RANGE, "/")["visitors_at_page"] == 9  # the lake is intact


@pytest.mark.parametrize("page", ["", "pricing", "'", '"; DROP TABLE events', "/" + "x" * 2048, None, 5,
                                  ["/"]])
def test_flow_rejects_bad_pages(q: Queries, page: Any) -> None:
    """A page must be a string of 1..2048 characters starting with '/'."""
    with pytest.raises(InvalidQueryError, match="page must be a path") as info:
        flow(q.access, SITE, RANGE, page)
    assert info.value.code == "invalid_page"


@pytest.mark.parametrize("limit", [0, 101, -1, True, 2.0, "10"])
def test_flow_rejects_bad_limits(q: Queries, limit: Any) -> None:
    """The limit is an integer 1..100."""
    with pytest.raises(InvalidQueryError, match="limit must be an integer between 1 and 100"):
        flow(q.access, SITE, RANGE, "/", limit=limit)


def test_flow_filters_select_visitors(make_queries: MakeQueries) -> None:
    """A filter keeps the visitors with a matching session; their flow uses all their pageviews (a
    visit attribute is the session's first event's)."""
    q = make_queries([event("a", "2024-04-01 10:00:00", path="/", browser="Firefox"),
                      event("a", "2024-04-01 10:01:00", path="/x", browser="Chrome"),
                      event("a", "2024-04-01 10:02:00", path="/y", browser="Firefox"),
                      event("b", "2024-04-01 10:00:00", path="/", browser="Chrome"),
                      event("b", "2024-04-01 10:01:00", path="/z", browser="Chrome")])
    assert rows(flow(q.access, SITE, RANGE, "/")) == [("/x", 1), ("/z", 1)]
    firefox = [["is", "visit:browser", ["Firefox"]]]
    assert rows(flow(q.access, SITE, RANGE, "/", filters=firefox)) == [("/x", 1)]
    entry = flow(q.access, SITE, RANGE, "/", filters=[["is", "visit:exit_page", ["/z"]]])
    assert rows(entry) == [("/z", 1)]
    with pytest.raises(InvalidQueryError):
        flow(q.access, "bad site!", RANGE, "/")


def test_flow_includes_buffered_events(tmp_path: Path) -> None:
    """Events still in the process's buffer are nodes too."""
    import mallard

    with mallard.Mallard(data_dir=tmp_path, flush_interval_secs=3600) as m:
        for when, path in ((datetime(2024, 4, 1, 10, tzinfo=UTC), "/"),
                           (datetime(2024, 4, 1, 11, tzinfo=UTC), "/next")):
            m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip="203.0.113.9",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                    timestamp=when)
        result = flow(m.queries.access, SITE, RANGE, "/")
    assert rows(result) == [("/next", 1)]


# -- differential: ClickHouse sequenceNextNode over the same Parquet files ----------------------------
@contextmanager
def lake_of(events: list[Event], seed: int) -> Iterator[tuple[Queries, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = write_shuffled(Path(tmp), events, seed)
        store = Store(data_dir, read_only=True)
        try:
            yield Queries(store, Settings(data_dir=data_dir)), lake_glob(data_dir)
        finally:
            store.close()


def compare(q: Queries, glob: str, site: str, rng: DateRange, *, timestamps: bool) -> None:
    lower, upper = rng.bounds()
    reference = ch_flow(glob, site, lower, upper, PATHS, timestamps=timestamps)
    for page in PATHS:
        mine = flow(q.access, site, rng, page, limit=100)
        theirs = reference[page]
        assert (mine["visitors_at_page"], mine["exits"], rows(mine)) == (
            theirs.visitors_at_page, theirs.exits, theirs.next_pages[:100]), page


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(events=clickstreams(max_days=12), site=st.sampled_from(SITES), seed=st.integers(0, 2**16),
       start=st.sampled_from(RANGE_STARTS[:2]), end=st.sampled_from(RANGE_ENDS[:1]))
def test_flow_matches_clickhouse(events: list[Event], site: str, seed: int, start: date, end: date) -> None:
    """mallard's flow equals §5.5's sequenceNextNode('forward', 'first_match') over per-visitor ranks."""
    with lake_of(events, seed) as (q, glob):
        compare(q, glob, site, DateRange(start, end), timestamps=False)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(events=clickstreams(max_days=12, whole_seconds=True), site=st.sampled_from(SITES),
       seed=st.integers(0, 2**16))
def test_flow_matches_clickhouse_tie_rule(events: list[Event], site: str, seed: int) -> None:
    """On whole-second timestamps, ClickHouse's own tie rule (ties by value) gives mallard's answer."""
    with lake_of(events, seed) as (q, glob):
        compare(q, glob, site, DateRange(date(2024, 4, 1), date(2024, 4, 12)), timestamps=True)
