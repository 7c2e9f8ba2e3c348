"""The goal and segment store (state/goals.json): find-or-create, validation, agreement between
processes, and wildcard page goals against a reference matcher (Hypothesis, through DuckDB's RE2 as
queries run them). The `mallard goals` / `mallard segments` commands: test_goal_commands.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallard._errors import InvalidQueryError, StorageError
from mallard._goals import Goal, GoalError, Goals, page_regex
from mallard._queries.goals import check_segment_filters
from mallard._sharedstate import LocalState

SITE = "shop.example"


@pytest.fixture()
def goals(tmp_path: Path) -> Goals:
    return Goals(LocalState(tmp_path / "state"), check_filters=check_segment_filters)


# -- the store -----------------------------------------------------------------------------------
def test_add_finds_or_creates_and_names_goals_as_plausible_does(goals: Goals) -> None:
    signup = goals.add(SITE, event_name="Signup", currency="EUR")
    page = goals.add(SITE, page_path="/blog/*")
    assert signup == Goal(1, SITE, "event", "Signup", "Signup", None, "EUR")
    assert page.display_name == "Visit /blog/*" and page.goal_type == "page"
    assert goals.add(SITE, event_name="Signup") == signup  # found, not created again
    assert goals.add("other.example", event_name="Signup").id == 3  # ids are unique per instance
    assert [g.id for g in goals.list(SITE)] == [1, 2]
    assert signup.to_json() == {"id": "1", "domain": SITE, "goal_type": "event", "display_name": "Signup",
                                "event_name": "Signup", "page_path": None, "custom_props": {},
                                "currency": "EUR"}


@pytest.mark.parametrize(("kwargs", "code"), [
    ({}, "invalid_goal"),
    ({"event_name": "a", "page_path": "/a"}, "invalid_goal"),
    ({"event_name": " "}, "invalid_goal"),
    ({"event_name": "x" * 121}, "invalid_goal"),
    ({"event_name": "a\nb"}, "invalid_goal"),
    ({"page_path": "blog"}, "invalid_goal"),
    ({"event_name": "Buy", "currency": "eur"}, "invalid_currency"),
    ({"page_path": "/buy", "currency": "EUR"}, "invalid_currency"),
    ({"event_name": "Other", "display_name": "Signup"}, "goal_exists"),
], ids=["neither", "both", "blank", "too-long", "control-char", "relative-path", "lower-currency",
        "page-currency", "duplicate-display-name"])
def test_bad_goals_are_refused_with_a_precise_error(goals: Goals, kwargs: dict[str, str],
                                                    code: str) -> None:
    goals.add(SITE, event_name="Signup")
    with pytest.raises(GoalError) as info:
        goals.add(SITE, **kwargs)
    assert info.value.code == code
    assert [g.display_name for g in goals.list(SITE)] == ["Signup"]


def test_remove_only_deletes_the_sites_own_goal(goals: Goals) -> None:
    goal = goals.add(SITE, event_name="Signup")
    assert not goals.remove(goal.id, "other.example")
    assert not goals.remove(99)
    assert goals.remove(goal.id, SITE)
    assert goals.list(SITE) == []


def test_segments_are_checked_by_the_query_parser(goals: Goals) -> None:
    seg = goals.add_segment(SITE, "Germany", [["is", "visit:country", ["DE"]]])
    assert goals.segment(SITE, seg.id) == seg and goals.segment("other.example", seg.id) is None
    with pytest.raises(InvalidQueryError):
        goals.add_segment(SITE, "bad", [["is", "visit:nowhere", ["x"]]])
    with pytest.raises(InvalidQueryError):
        goals.add_segment(SITE, "nested", [["is", "segment", [seg.id]]])
    with pytest.raises(GoalError):
        goals.add_segment(SITE, "empty", [])
    assert goals.remove_segment(seg.id, SITE) and goals.segments(SITE) == []


def test_reporting_currency_is_set_and_cleared(goals: Goals) -> None:
    assert goals.currency(SITE) is None
    goals.set_currency(SITE, "USD")
    assert goals.currency(SITE) == "USD"
    with pytest.raises(GoalError):
        goals.set_currency(SITE, "dollars")
    goals.set_currency(SITE, None)
    assert goals.currency(SITE) is None


def test_a_damaged_goals_file_is_a_storage_error(goals: Goals, tmp_path: Path) -> None:
    goals.add(SITE, event_name="Signup")
    (tmp_path / "state" / "goals.json").write_text('{"next_id": 2, "goals": [{"id": "x"}]}')
    with pytest.raises(StorageError) as info:
        goals.list(SITE)
    assert info.value.code == "invalid_goals"


# -- several processes -----------------------------------------------------------------------------
_ADDER = """
import sys
from pathlib import Path
from mallard._goals import Goals
from mallard._sharedstate import LocalState
goals = Goals(LocalState(Path(sys.argv[1])))
for i in range(int(sys.argv[3])):
    goals.add("shop.example", event_name=f"{sys.argv[2]}-{i}")
"""


def test_processes_adding_at_once_lose_nothing_and_agree(goals: Goals, tmp_path: Path) -> None:
    """Two processes add 25 goals each at the same time; an instance created earlier in this process
    sees all 50, with distinct ids (the file changed under its cache)."""
    assert goals.list(SITE) == []  # cached: the file does not exist yet
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER, str(tmp_path / "state"), name, "25"])
             for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    listed = goals.list(SITE)
    assert len(listed) == 50 and len({g.id for g in listed}) == 50
    assert {g.event_name for g in listed} == {f"{n}-{i}" for n in "ab" for i in range(25)}


# -- wildcard page goals ----------------------------------------------------------------------------
def reference_match(pattern: str, path: str) -> bool:
    """Glob matching without regular expressions: ``*`` is any run of characters (``/`` included)."""
    if not pattern:
        return not path
    if pattern[0] == "*":
        return any(reference_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and path[0] == pattern[0] and reference_match(pattern[1:], path[1:])


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


_PATH_CHARS = st.sampled_from(list("/ab.-_()[]{}+?^$\\%é "))
_PATTERNS = st.lists(st.one_of(_PATH_CHARS, st.just("*"), st.just("**")), max_size=8).map(
    lambda parts: "/" + "".join(parts))
_PATHS = st.lists(_PATH_CHARS, max_size=10).map(lambda parts: "/" + "".join(parts))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(pattern=_PATTERNS, paths=st.lists(_PATHS, min_size=1, max_size=5))
def test_wildcard_page_goals_match_like_the_reference(con: duckdb.DuckDBPyConnection, pattern: str,
                                                      paths: list[str]) -> None:
    """page_regex as DuckDB runs it (regexp_matches) agrees with the glob reference on every path,
    whatever RE2 metacharacters the path holds."""
    regex = page_regex(pattern)
    for path in [*paths, pattern.replace("*", "")]:
        got = con.execute("SELECT regexp_matches(?, ?)", [path, regex]).fetchone()
        assert got is not None and got[0] == reference_match(pattern, path), (pattern, path, regex)
