"""Export to and import from files (mallard/_transfer.py, through ``mallard export --output`` and
``mallard import``): a lake exported as Parquet, CSV or JSON lines and imported into a fresh data directory
answers every query as the original; importing again stores nothing; bad files are refused whole, naming
the row and column; an erasure holds against an old export; the same round trip through a real S3 server."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import mallard
from mallard import _transfer as transfer
from mallard._cli import main
from mallard._settings import Settings
from mallard._store import Store
from mallard._store import transfer as store_transfer

from .lake_answers import DAYS, SITE, answers, assert_same, traffic
from .s3server import BUCKET, S3Server

END = datetime(2024, 5, 20, 12)
FIRST, LAST = (END - timedelta(days=DAYS - 1)).date(), END.date()
RANGE = ("--start-date", "2024-05-01", "--end-date", "2024-05-31")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("transfer") / "data"
    store = Store(data)
    events = traffic(11, END)
    for part in (events[0::2], events[1::2]):
        store.write_batch(part)()
    store.close()
    return data


def run(*args: str) -> int:
    return main(list(args))


def _export(lake: Path, out: Path | str, *options: str) -> None:
    """``mallard export --kind raw`` of May 2024 (or of ``options``' range) to ``out``."""
    assert run("export", SITE, "--data-dir", str(lake), *(options or RANGE), "--kind", "raw", "--output",
               str(out), "--quiet") == 0


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert run("import", *args, "--quiet") == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


@pytest.fixture(scope="module")
def expected(lake: Path) -> dict[str, Any]:
    """Every query's answer over the original lake (its other site aside)."""
    with mallard.open(lake) as q:
        out = answers(q, SITE, FIRST, LAST)
    out.pop("sites")
    return out


def _same_answers(data: Path, expected: dict[str, Any]) -> None:
    with mallard.open(data) as q:
        got = answers(q, SITE, FIRST, LAST)
    assert got.pop("sites") == [SITE]
    assert_same(got, expected)


@pytest.mark.parametrize("fmt", ["parquet", pytest.param("csv", marks=pytest.mark.slow),
                                 pytest.param("json", marks=pytest.mark.slow)])
def test_an_export_imports_into_a_fresh_directory_with_the_same_answers(
        lake: Path, expected: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        fmt: str) -> None:
    out = tmp_path / f"events.{fmt}"
    _export(lake, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the hidden name is gone
    data = tmp_path / "data"
    first = _import(capsys, str(out), "--data-dir", str(data))
    assert first["stored"] == first["rows"] and first["duplicates"] == 0
    again = _import(capsys, str(out), "--data-dir", str(data))
    assert (again["stored"], again["duplicates"]) == (0, first["rows"])
    _same_answers(data, expected)


def test_overlapping_scheduled_exports_store_each_event_once(lake: Path, expected: dict[str, Any],
                                                             tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    ranges = (("2024-05-11", "2024-05-15"), ("2024-05-13", "2024-05-20"), ("2024-05-11", "2024-05-20"))
    for start, end in ranges:
        out = tmp_path / f"{start}.parquet"
        assert run("export", SITE, "--data-dir", str(lake), "--start-date", start, "--end-date", end,
                   "--kind", "raw", "--output", str(out), "--quiet") == 0
        _import(capsys, str(out), "--data-dir", str(data))
    _same_answers(data, expected)


def test_rows_the_lake_holds_twice_are_imported_twice(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    row = ('{"site_id":"a.example","visitor_id":"v","timestamp":"2024-05-01 10:00:00","event_name":"Click",'
           '"pathname":"/"}\n')
    (tmp_path / "twice.jsonl").write_text(row * 2)
    (tmp_path / "thrice.jsonl").write_text(row * 3)
    data = tmp_path / "data"
    assert _import(capsys, str(tmp_path / "twice.jsonl"), "--data-dir", str(data))["stored"] == 2
    assert _import(capsys, str(tmp_path / "thrice.jsonl"), "--data-dir", str(data))["stored"] == 1
    with mallard.open(data) as q:
        assert q.sql("SELECT count(*) AS n FROM events", site="a.example").to_pylist() == [{"n": 3}]


def test_site_and_dates_select_the_rows_imported(lake: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "all.csv"
    _export(lake, out)
    data = tmp_path / "data"
    done = _import(capsys, str(out), "--data-dir", str(data), "--site", SITE, "--start-date", "2024-05-15",
                   "--end-date", "2024-05-16")
    with mallard.open(data) as q:
        rows = q.sql("SELECT CAST(timestamp AS DATE) AS d FROM events", site=SITE).to_pylist()
    days = {r["d"] for r in rows}
    assert days == {date(2024, 5, 15), date(2024, 5, 16)}
    assert done["skipped"] == done["rows"] - done["stored"]


def test_an_erasure_holds_against_an_older_export(lake: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "events.parquet"
    _export(lake, out)
    data = tmp_path / "data"
    _import(capsys, str(out), "--data-dir", str(data))
    assert run("erase", SITE, "--data-dir", str(data), "--start-date", "2024-05-14", "--end-date",
               "2024-05-15") == 0
    again = _import(capsys, str(out), "--data-dir", str(data))
    assert again["stored"] == 0 and again["erased"] > 0
    with mallard.open(data) as q:
        rows = q.sql("SELECT count(*) AS n FROM events WHERE timestamp >= '2024-05-14' AND timestamp < "
                     "'2024-05-16'", site=SITE).to_pylist()
    assert rows == [{"n": 0}]


def test_csv_keeps_nulls_empty_texts_and_formulas_apart(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "in.jsonl"
    values = ["=1+1", "'quoted", "-x", "", None, "plain"]
    events.write_text("".join(json.dumps({
        "site_id": "a.example", "visitor_id": f"v{i}", "timestamp": f"2024-05-01 10:00:0{i}",
        "event_name": "pageview", "pathname": "/", "utm_term": v}) + "\n" for i, v in enumerate(values)))
    first, second = tmp_path / "first", tmp_path / "second"
    _import(capsys, str(events), "--data-dir", str(first))
    out = tmp_path / "out.csv"
    assert run("export", "a.example", "--data-dir", str(first), "--start-date", "2024-05-01", "--end-date",
               "2024-05-01", "--kind", "raw", "--output", str(out), "--quiet") == 0
    assert '"\'=1+1"' in out.read_text() and '"\'\'quoted"' in out.read_text()
    _import(capsys, str(out), "--data-dir", str(second))
    with mallard.open(second) as q:
        got = q.sql("SELECT utm_term FROM events ORDER BY timestamp", site="a.example").to_pylist()
    assert [r["utm_term"] for r in got] == values


HEADER = "site_id,visitor_id,timestamp,event_name,pathname"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("e.csv", f"{HEADER}\na.example,v,2024-05-01 10:00:00,pageview,/\na.example,v,2024-05-32,pageview,/\n",
     "e.csv: row 2, column 'timestamp': is not a timestamp"),
    ("e.csv", f"{HEADER},colour\na.example,v,2024-05-01,pageview,/,red\n", "e.csv: unknown column 'colour'"),
    ("e.csv", "site_id,timestamp,event_name,pathname\na.example,2024-05-01,pageview,/\n",
     "e.csv: the column 'visitor_id' is missing"),
    ("e.csv", f"{HEADER}\na.example,v,2024-05-01,,/\n", "row 1, column 'event_name': must not be empty"),
    ("e.csv", f"{HEADER}\na b,v,2024-05-01,pageview,/\n",
     "row 1, column 'site_id': site_id may only contain"),
    ("e.csv", f"{HEADER},scroll_depth\na.example,v,2024-05-01,engagement,/,130\n",
     "column 'scroll_depth': must be a percentage from 0 to 100 (got '130')"),
    ("e.csv", f"{HEADER},props\na.example,v,2024-05-01,pageview,/,[1]\n",
     "column 'props': must be a JSON object"),
    ("e.csv", f"{HEADER},revenue_amount\na.example,v,2024-05-01,pageview,/,1.005\n",
     "column 'revenue_amount': is not an amount of at most 10 digits and 2 decimals"),
    ("e.csv", f'{HEADER}\n"a.example,v\n', "e.csv: not a readable CSV file"),
    ("e.json", '{"site_id": "a.example"}\n[1]\n', "e.json: line 2: not a JSON object"),
    ("e.json", '{"site_id": "a.example", "pathname": 3}\n', "line 1: column 'pathname': a JSON int"),
    ("e.parquet", "not parquet", "e.parquet: not a readable Parquet file"),
    ("e.txt", "", "cannot tell the format of"),
], ids=["bad-timestamp", "unknown-column", "missing-column", "empty-name", "bad-site", "scroll-depth",
        "props-not-object", "too-many-decimals", "broken-csv", "json-not-object", "json-type", "not-parquet",
        "unknown-suffix"])
def test_a_bad_file_is_refused_whole_naming_where(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    data = tmp_path / "data"
    assert run("import", str(path), "--data-dir", str(data)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("mallard: ") and err.count("\n") == 1
    assert not list(data.rglob("*.parquet"))


def test_offsets_are_converted_to_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER}\na.example,v,2024-05-01T23:30:00-02:00,pageview,/\n")
    _import(capsys, str(path), "--data-dir", str(tmp_path / "data"))
    with mallard.open(tmp_path / "data") as q:
        assert q.sql("SELECT timestamp FROM events", site="a.example").to_pylist() == [
            {"timestamp": datetime(2024, 5, 2, 1, 30)}]


def test_the_daily_report_goes_to_a_file_too(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "2024" / "daily.parquet"  # directories made as needed
    assert run("export", SITE, "--data-dir", str(lake), "--start-date", str(FIRST), "--end-date", str(LAST),
               "--output", str(out), "--quiet") == 0
    table = pq.read_table(out)
    assert table.column_names == ["date", "visitors", "pageviews", "top_page", "top_source"]
    assert table.num_rows == DAYS


def test_parquet_needs_an_output(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("export", SITE, "--data-dir", str(lake), "--format", "parquet") == 2
    assert "give --output" in capsys.readouterr().err


@pytest.mark.slow
def test_a_round_trip_through_object_storage(lake: Path, expected: dict[str, Any], tmp_path: Path,
                                             s3_server: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "s3.toml"
    config.write_text("".join(f'{k} = "{v}"\n' for k, v in s3_server.options().items()))
    for fmt in ("parquet", "csv", "json"):
        url = f"s3://{BUCKET}/transfer/events.{fmt}"
        assert run("export", SITE, "--data-dir", str(lake), "--config", str(config), *RANGE, "--kind", "raw",
                   "--output", url, "--quiet") == 0
        data = tmp_path / f"data-{fmt}"
        done = _import(capsys, url, "--data-dir", str(data), "--config", str(config))
        assert done["stored"] == done["rows"]
        _same_answers(data, expected)
        assert _import(capsys, url, "--data-dir", str(data), "--config", str(config))["stored"] == 0
    assert run("import", f"s3://{BUCKET}/transfer/missing.csv", "--data-dir", str(tmp_path / "x"), "--config",
               str(config)) == 2
    assert "missing.csv" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["parquet", pytest.param("csv", marks=pytest.mark.slow),
                                 pytest.param("json", marks=pytest.mark.slow)])
def test_a_file_is_read_and_stored_a_batch_at_a_time(lake: Path, expected: dict[str, Any], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """With batches far smaller than the file (100 rows, 32 KB), an import reads it in many
    batches and stores the same rows as in one: the same answers, idempotent; ``--progress`` draws the
    check pass (the file's rows when it says, as Parquet does) and the store pass on stderr."""
    out = tmp_path / f"events.{fmt}"
    _export(lake, out)
    monkeypatch.setattr(transfer, "READ_ROWS", 100)
    monkeypatch.setattr(transfer, "READ_BYTES", 32 << 10)
    monkeypatch.setattr(store_transfer, "BATCH_ROWS", 50)
    batches, _ = transfer.read_batches(str(out), fmt, Settings())
    assert sum(1 for _ in batches) > 5
    data = tmp_path / "data"
    capsys.readouterr()
    assert run("import", str(out), "--data-dir", str(data), "--progress") == 0
    captured = capsys.readouterr()
    first = json.loads(captured.out)
    assert first["stored"] == first["rows"] > 100
    bars = [line.split("\r")[-1] for line in captured.err.split("\n")]
    rows = first["rows"]
    checked = "check: 100%" if fmt == "parquet" else f"check: {rows} rows"  # CSV, JSON: total unknown
    assert bars[0].startswith(checked) and (f"| {rows}/{rows} " in bars[0] or fmt != "parquet")
    assert bars[1].startswith("import: 100%") and f"| {rows}/{rows} " in bars[1]
    assert _import(capsys, str(out), "--data-dir", str(data))["stored"] == 0
    _same_answers(data, expected)


@pytest.mark.parametrize(("name", "good", "bad", "message"), [
    ("e.csv", "a.example,v{i},2024-05-01 10:00:00,pageview,/\n", "a.example,v,2024-05-32,pageview,/\n",
     "e.csv: row 501, column 'timestamp'"),
    ("e.json", '{{"site_id":"a.example","visitor_id":"v{i}","timestamp":"2024-05-01","event_name":"x",'
               '"pathname":"/"}}\n', '{"site_id":"a.example"}\n[1]\n', "e.json: line 502: not a JSON object"),
])
def test_a_bad_row_after_many_batches_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, name: str, good: str,
                                                     bad: str, message: str) -> None:
    """Rows and lines are counted through the whole file, and the rows of the batches before the bad
    one are not stored."""
    monkeypatch.setattr(transfer, "READ_BYTES", 2048)
    path = tmp_path / name
    header = HEADER + "\n" if name.endswith(".csv") else ""
    path.write_text(header + "".join(good.format(i=i) for i in range(500)) + bad)
    data = tmp_path / "data"
    assert run("import", str(path), "--data-dir", str(data), "--quiet") == 2
    assert message in capsys.readouterr().err
    assert not list(data.rglob("*.parquet"))
    assert not list(data.glob(".import-*"))
