"""Plausible's CSV export imported (mallard/_plausible.py, through ``mallard import --from plausible``): a
small export written in Plausible's exact format (file names, quoting, columns, extra columns mallard
ignores), whose daily figures every query must then show."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

import mallard
from mallard._cli import main
from mallard._store import Store

from .factories import make_event

SITE = "docs.example"
HEADERS = {
    "imported_visitors": '"date","visitors","pageviews","bounces","visits","visit_duration"',
    "imported_sources": '"date","source","referrer","utm_source","utm_medium","utm_campaign","utm_content",'
                        '"utm_term","pageviews","visitors","visits","visit_duration","bounces"',
    "imported_pages": '"date","hostname","page","visits","visitors","pageviews","total_scroll_depth",'
                      '"total_scroll_depth_visits","total_time_on_page","total_time_on_page_visits"',
    "imported_entry_pages": '"date","entry_page","visitors","entrances","visit_duration","bounces",'
                            '"pageviews"',
    "imported_custom_events": '"date","name","link_url","path","visitors","events"',
    "imported_locations": '"date","country","region","city","visitors","visits","visit_duration",'
                          '"bounces","pageviews"',
    "imported_devices": '"date","device","visitors","visits","visit_duration","bounces","pageviews"',
    "imported_browsers": '"date","browser","browser_version","visitors","visits","visit_duration",'
                         '"bounces","pageviews"',
}
ROWS = {
    "imported_visitors": ['"2023-02-09",7,21,4,9,1200', '"2023-02-10",3,3,3,3,0',
                          '"2023-02-11",2,9,0,2,90'],
    "imported_sources": ['"2023-02-09","Google","google.com","","","","","",12,4,5,700,2',
                         '"2023-02-09","","","","","","","",9,3,4,500,2',
                         '"2023-02-10","GitHub","github.com","","","","","",3,3,3,0,3'],
    "imported_pages": ['"2023-02-09","docs.example","/docs",6,5,11,300,4,120,4',
                       '"2023-02-09","docs.example","/",5,4,10,,,,',
                       '"2023-02-10","docs.example","/",3,3,3,,,,'],
    "imported_entry_pages": ['"2023-02-09","/docs",4,5,800,2,12', '"2023-02-09","/",3,4,400,2,9'],
    "imported_custom_events": ['"2023-02-09","Signup","","",2,3',
                               '"2023-02-09","Outbound Link: Click","https://example.org/","",1,1'],
    "imported_locations": ['"2023-02-09","FR","FR-PAC",3027647,3,5,600,3,9',
                           '"2023-02-09","DE","DE-BE",2950159,4,4,600,1,12'],
    "imported_devices": ['"2023-02-09","Desktop",5,6,1000,2,15', '"2023-02-09","Mobile",2,3,200,2,6'],
    "imported_browsers": ['"2023-02-09","Firefox","109.0",7,9,1200,4,21'],
}


def write_export(directory: Path) -> Path:
    directory.mkdir()
    for table, header in HEADERS.items():
        (directory / f"{table}_20230209_20230211.csv").write_text(
            "\n".join([header, *ROWS[table]]) + "\n")
    return directory


def run(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp_path / "data"
    assert run("import", "--from", "plausible", str(write_export(tmp_path / "export")), "--site", SITE,
               "--data-dir", str(data), "--quiet") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stored"] == summary["rows"] == 21 + 3 + 9 + 4
    return data


@pytest.mark.parametrize(("day", "visitors", "visits", "pageviews", "bounces", "duration"), [
    ("2023-02-09", 7, 9, 21, 4, 1200), ("2023-02-10", 3, 3, 3, 3, 0), ("2023-02-11", 2, 2, 9, 0, 90)])
def test_each_day_shows_plausibles_figures(imported: Path, day: str, visitors: int, visits: int,
                                           pageviews: int, bounces: int, duration: int) -> None:
    with mallard.open(imported) as q:
        row = q.query(SITE, metrics=["visitors", "visits", "pageviews", "bounce_rate", "visit_duration",
                                     "views_per_visit"], start_date=day, end_date=day).rows[0]
    assert (row["visitors"], row["visits"], row["pageviews"]) == (visitors, visits, pageviews)
    assert row["bounce_rate"] == pytest.approx(bounces / visits)
    assert row["visit_duration"] == pytest.approx(duration / visits)
    assert row["views_per_visit"] == pytest.approx(pageviews / visits, abs=0.01)


def test_a_range_adds_the_days_as_plausible_does(imported: Path) -> None:
    with mallard.open(imported) as q:
        main_ = q.main(SITE, start_date="2023-02-09", end_date="2023-02-11")
    assert (main_["unique_visitors"], main_["total_sessions"], main_["total_pageviews"]) == (12, 14, 33)


def _breakdown(data: Path, dimension: str, metrics: list[str]) -> dict[object, list[object]]:
    with mallard.open(data) as q:
        rows = q.query(SITE, metrics=metrics, dimensions=[dimension], start_date="2023-02-09",
                       end_date="2023-02-09").rows
    return {r[dimension]: [r[m] for m in metrics] for r in rows}


def test_visits_and_bounces_per_value_of_a_session_table_are_exact(imported: Path) -> None:
    assert _breakdown(imported, "visit:source", ["visits", "bounce_rate"]) == {
        "Google": [5, 0.4], "(direct)": [4, 0.5]}
    assert _breakdown(imported, "visit:entry_page", ["visits"]) == {"/docs": [5], "/": [4]}
    assert _breakdown(imported, "visit:country", ["visits", "bounce_rate"]) == {
        "FR": [5, 0.6], "DE": [4, 0.25]}
    assert _breakdown(imported, "visit:device", ["visits"]) == {"desktop": [6], "mobile": [3]}
    assert _breakdown(imported, "visit:browser", ["visits"]) == {"Firefox": [9]}


def test_pageviews_per_page_and_custom_events_are_exact(imported: Path) -> None:
    assert _breakdown(imported, "event:page", ["pageviews"]) == {"/docs": [11], "/": [10]}
    events = _breakdown(imported, "event:name", ["visitors", "events"])
    assert events["Signup"] == [2, 3] and events["Outbound Link: Click"] == [1, 1]


def test_importing_the_export_again_stores_nothing(imported: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "plausible_export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tmp_path / "export").iterdir():
            z.write(f, f"export/{f.name}")
    assert run("import", "--from", "plausible", str(archive), "--site", SITE, "--data-dir",
               str(imported), "--quiet") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["stored"], summary["duplicates"]) == (0, summary["rows"])


@pytest.mark.parametrize(("name", "content", "message"), [
    ("imported_visitors_20230209_20230211.csv", '"date","visitors"\n"2023-02-09",1\n',
     "imported_visitors_20230209_20230211.csv: the column 'pageviews' is missing"),
    ("imported_visitors_20230209_20230211.csv", HEADERS["imported_visitors"] + '\n"2023-02-09",x,1,0,1,0\n',
     "line 2, column 'visitors': 'x' is not a count"),
    ("imported_visitors_20230209_20230211.csv", HEADERS["imported_visitors"] + '\n"2023-02-09",5,1,0,1,0\n',
     "2023-02-09: 5 visitors, 1 visits and 1 pageviews cannot be reproduced"),
    ("visits.csv", "x\n", "visits.csv: not a table of Plausible's CSV export"),
], ids=["missing-column", "not-a-count", "impossible-day", "unknown-file"])
def test_a_bad_export_is_refused_naming_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           name: str, content: str, message: str) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / name).write_text(content)
    data = tmp_path / "data"
    assert run("import", "--from", "plausible", str(export), "--site", SITE, "--data-dir", str(data)) == 2
    assert message in capsys.readouterr().err
    assert not list((data / "events").rglob("*.parquet")) if (data / "events").exists() else True


def test_too_few_pageviews_for_the_non_bounces_is_said(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "visitors_20230209_20230209.csv").write_text(
        HEADERS["imported_visitors"] + '\n"2023-02-09",2,3,0,2,60\n')
    data = tmp_path / "data"
    assert run("import", "--from", "plausible", str(export), "--site", SITE, "--data-dir", str(data),
               "--quiet") == 0
    assert "not exact: 2023-02-09: bounce rate 50% instead of 0%" in capsys.readouterr().err
    with mallard.open(data) as q:
        row = q.query(SITE, metrics=["visitors", "visits", "pageviews"], start_date="2023-02-09",
                      end_date="2023-02-09").rows[0]
    assert (row["visitors"], row["visits"], row["pageviews"]) == (2, 2, 3)


def _track(data: Path, *days: str) -> None:
    """Events mallard tracked for SITE: a visitor's two pageviews at noon (UTC) of each day."""
    store = Store(data)
    store.write_batch([make_event(site_id=SITE, visitor_id=f"tracked-{d}", event_name="pageview",
                                  pathname=f"/{i}", timestamp=datetime.fromisoformat(f"{d} 12:00:0{i}"))
                       for d in days for i in range(2)])()
    store.close()


def _figures(data: Path, day: str) -> tuple[int, int]:
    with mallard.open(data) as q:
        row = q.query(SITE, metrics=["visitors", "pageviews"], start_date=day, end_date=day).rows[0]
    return row["visitors"], row["pageviews"]


def test_days_mallard_tracked_are_not_imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Days holding tracked events of the site are skipped (Plausible's importer, too, stops where native
    data begins), and said so; the other days are imported; --include-tracked-days imports them too."""
    data = tmp_path / "data"
    _track(data, "2023-02-10", "2023-02-11")
    export = str(write_export(tmp_path / "export"))
    assert run("import", "--from", "plausible", export, "--site", SITE, "--data-dir", str(data),
               "--quiet") == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["tracked_days_skipped"] == [["2023-02-10", "2023-02-11"]]
    assert summary["stored"] == summary["rows"] == 21 + 4  # pageviews and custom events of 2023-02-09
    assert ("skipped 2 day(s) holding events mallard tracked for docs.example (2023-02-10 to "
            "2023-02-11)") in err
    assert _figures(data, "2023-02-09") == (7, 21)
    assert _figures(data, "2023-02-10") == _figures(data, "2023-02-11") == (1, 2)

    assert run("import", "--from", "plausible", export, "--site", SITE, "--data-dir", str(data),
               "--quiet") == 0  # 2023-02-09 holds imported events only: not a tracked day
    summary = json.loads(capsys.readouterr().out)
    assert (summary["tracked_days_skipped"], summary["stored"], summary["duplicates"]) == (
        [["2023-02-10", "2023-02-11"]], 0, 21 + 4)

    assert run("import", "--from", "plausible", export, "--site", SITE, "--data-dir", str(data),
               "--include-tracked-days", "--quiet") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["tracked_days_skipped"], summary["stored"]) == ([], 3 + 9)
    assert _figures(data, "2023-02-10") == (1 + 3, 2 + 3)


def test_a_day_imported_then_tracked_is_skipped(imported: Path, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    """A day that an earlier import filled and on which mallard then tracked events counts as tracked;
    another site's events do not count."""
    _track(imported, "2023-02-11")
    store = Store(imported)
    store.write_batch([make_event(site_id="other.example", timestamp=datetime(2023, 2, 9, 12))])()
    store.close()
    assert run("import", "--from", "plausible", str(tmp_path / "export"), "--site", SITE, "--data-dir",
               str(imported), "--quiet") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tracked_days_skipped"] == [["2023-02-11", "2023-02-11"]]
    assert (summary["rows"], summary["stored"]) == (21 + 4 + 3, 0)
