"""mallard._drops: the drop rules in force, said at start-up, and the reasons explained."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import mallard
from mallard._drops import EXPLANATIONS, explain, rules
from mallard._settings import Settings


def test_rules_follow_the_settings(tmp_path: Path) -> None:
    assert rules(Settings(data_dir=tmp_path, filter_bots=False)) == []
    both = rules(Settings(data_dir=tmp_path, site_ids=("a.example",), honor_dnt=True))
    assert len(both) == 3 and "a.example" in both[1] and "(honor_dnt)" in both[2]


def test_every_reason_the_tracker_gives_is_explained() -> None:
    import inspect

    from mallard import _tracker as tracker

    reasons = set(__import__("re").findall(r'Dropped\("([a-z_]+)"\)', inspect.getsource(tracker)))
    assert reasons and reasons <= set(EXPLANATIONS)
    assert explain("something_else") == "something_else"


def test_start_logs_the_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mallard"), mallard.Mallard(data_dir=tmp_path / "d") as m:
        m.start()
    said = [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()]
    assert len(said) == 1 and "curl included (filter_bots)" in said[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mallard"), \
            mallard.Mallard(data_dir=tmp_path / "e", filter_bots=False) as m:
        m.start()
    assert not [r for r in caplog.records if "not stored" in r.getMessage()]
