"""Saved funnels as Python objects over ``state/`` (``mallard/_funnels.py``): validation with the funnel
query's own rules, ids never reused, changes seen by a second instance (as by another worker process), and
a damaged file refused with a StorageError that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from mallard import InvalidQueryError, SavedFunnels, StorageError
from mallard._records import RecordError

SITE = "a.example"


def test_funnels_are_saved_listed_and_removed(tmp_path: Path) -> None:
    """A funnel keeps its steps as labels and its window; a second instance on the same directory
    sees every change; ids are not reused after a deletion."""
    one, two = SavedFunnels(tmp_path), SavedFunnels(tmp_path)
    f = one.add(SITE, "Signup", "page:/pricing, event:Signup", window="2 hours")
    assert (f.steps, f.window) == (("page:/pricing", "event:Signup"), "2 hours")
    assert two.list(SITE) == [f] and two.get(SITE, f.id) == f
    assert two.get("b.example", f.id) is None and two.list("b.example") == []
    g = two.add(SITE, "Docs", ["page:/", "page:/docs,with,commas"], window=600)
    assert g.steps == ("page:/", "page:/docs,with,commas") and g.window == "600 seconds"
    assert not one.remove(f.id, "b.example")  # another site's id
    assert one.remove(f.id, SITE) and not one.remove(f.id, SITE)
    assert [x.name for x in two.list(SITE)] == ["Docs"]
    assert two.add(SITE, "Signup", ["page:/"]).id > g.id


@pytest.mark.parametrize(("name", "steps", "window", "error", "needle"), [
    ("", ["page:/"], "1 day", RecordError, "name"),
    ("x" * 121, ["page:/"], "1 day", RecordError, "name"),
    ("ok", [], "1 day", InvalidQueryError, "steps"),
    ("ok", ["nope:/"], "1 day", InvalidQueryError, "Invalid step"),
    ("ok", ["event:pageview"], "1 day", InvalidQueryError, "page:<path>"),
    ("ok", ["page:/"], "1 fortnight", InvalidQueryError, "window"),
    ("ok", ["page:/"] * 33, "1 day", InvalidQueryError, "32"),
])
def test_bad_funnels_are_refused(tmp_path: Path, name: str, steps: list[str], window: str,
                                 error: type[Exception], needle: str) -> None:
    funnels = SavedFunnels(tmp_path)
    with pytest.raises(error, match=needle):
        funnels.add(SITE, name, steps, window=window)
    assert funnels.list(SITE) == []


def test_funnel_names_are_unique_per_site(tmp_path: Path) -> None:
    funnels = SavedFunnels(tmp_path)
    funnels.add(SITE, "Signup", ["page:/"])
    with pytest.raises(RecordError, match="already has a funnel named"):
        funnels.add(SITE, "Signup", ["page:/a"])
    assert funnels.add("b.example", "Signup", ["page:/"]).site_id == "b.example"


def test_damaged_state_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "funnels.json").write_text('{"next_id": 2, "items": [{"id": 1}]}')
    with pytest.raises(StorageError, match="delete it"):
        SavedFunnels(tmp_path).list(SITE)
