"""Where the ClickHouse engine reads the lake (mallard/_queries/clickhouse_lake.py): files on disk through
``file()``, a lake on object storage through ``s3()``. On a real S3 server (SeaweedFS), the ClickHouse
engine over a lake in the bucket must answer as DuckDB over the same lake on disk: query shapes of the
differential tests (from events, and with stored derived files), a site id holding ``:``, a damaged or
vanished object left out, a damaged stored file, a host's buffered events; and no error quotes a
credential."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mallard
from mallard import ConfigurationError, Mallard, StorageError
from mallard._queries import Queries, backfill
from mallard._queries.clickhouse import ClickHouseReader, engine_for
from mallard._queries.clickhouse_lake import LakeFiles, lake_files
from mallard._settings import Settings
from mallard._store.objectstore import open_store
from tests.lake_damage import SITE as DAMAGE_SITE
from tests.lake_damage import build_lake, garble

from ..lake_answers import answers, assert_same
from ..s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server, _free_port
from .clickhouse_traffic import GAP_S, SITE, shapes, traffic
from .conftest import spoil
from .dialect_check import same
from .test_clickhouse_differential import NOW, answer, engines, write

SHAPES = shapes()
#: The differential tests' shapes run here on the lake in the bucket: presets, breakdowns of events and
#: of visits, time series, filters (behaviour, goals, segments), v2 queries, funnels, sequences,
#: retention, flow, properties, exports.
CHOSEN = ("main", "sessions", "export daily", "export raw", "properties", "flow previous", "sequence",
          "funnel repeated step", "retention user ids", "realtime", "v2 visit dimensions", "v2 comparison",
          "v2 engagement", "v2 goals", "v2 segment", "v2 places and revenue", "timeseries hour Europe/Berlin",
          "timeseries week UTC", "breakdown pages", "breakdown sources by visit",
          "breakdown entry-pages by visit", "main / has done", "sources / page matches",
          "funnel / source and country", "retention / page", "flow / entry page", "properties / goal",
          "pages / or not", "main Europe/Berlin")
COLON = "s:colon.test"


def _bound(values: list[str]) -> Any:
    def bind(text: str) -> str:
        values.append(text)
        return f"{{v{len(values) - 1}:String}}"
    return bind


# -- URLs, settings and messages (no server) -----------------------------------------------------------
def test_objects_are_read_through_s3_with_encoded_keys() -> None:
    files = lake_files(Settings(lake_url="s3://lake-b/pre/fix", s3_endpoint_url="http://127.0.0.1:8333/",
                                s3_access_key_id="AKID", s3_secret_access_key="SECRET"))
    root = "s3://lake-b/pre/fix/events/site_id=a%3Ab"
    values: list[str] = []
    sql = files.read([f"{root}/date=2024-05-01/1.parquet", f"{root}/date=2024-05-02/x y+z.parquet"],
                     "`n` Int64", _bound(values), "n, _path")
    assert sql == "SELECT n, _path FROM s3({v0:String}, {v1:String}, {v2:String}, 'Parquet', {v3:String})"
    # ClickHouse decodes the URL: a '%' of a key is '%25', '=' and ' ' and '+' encoded too
    assert values == ["http://127.0.0.1:8333/lake-b/pre/fix/events/site_id%3Da%253Ab/"
                      "{date%3D2024-05-01/1.parquet,date%3D2024-05-02/x%20y%2Bz.parquet}",
                      "AKID", "SECRET", "`n` Int64"]
    assert "SET s3_uri_style = 'path'" in files.session_settings()
    values.clear()
    files.read([f"{root}/date=2024-05-01/1.parquet"], None, _bound(values))
    assert values[0] == "http://127.0.0.1:8333/lake-b/pre/fix/events/site_id%3Da%253Ab/date%3D2024-05-01/1.parquet"


def test_aws_s3_and_its_credential_chain() -> None:
    """Without an endpoint: AWS S3's virtual-hosted URL; without keys: ClickHouse's own (the AWS
    variables), no credential argument."""
    values: list[str] = []
    files = lake_files(Settings(lake_url="s3://lake-b", s3_region="eu-west-1"))
    assert files.read(["s3://lake-b/events/site_id=x/date=2024-05-01/1.parquet"], None, _bound(values)) == \
        "SELECT * FROM s3({v0:String}, 'Parquet')"
    assert values == ["https://lake-b.s3.eu-west-1.amazonaws.com/events/site_id%3Dx/date%3D2024-05-01/1.parquet"]
    assert "SET s3_uri_style = 'path'" not in files.session_settings()
    values.clear()
    lake_files(Settings(lake_url="s3://lake-b")).read(["s3://lake-b/k.parquet"], None, _bound(values))
    assert values == ["https://lake-b.s3.amazonaws.com/k.parquet"]


def test_local_files_and_mixed_lists(tmp_path: Path) -> None:
    """A host of a shared lake reads events in the bucket and its derived files on disk."""
    files = lake_files(Settings(lake_url="s3://lake-b/p", s3_endpoint_url="http://127.0.0.1:8333"))
    values: list[str] = []
    sql = files.read(["s3://lake-b/p/events/a.parquet", str(tmp_path / "a.parquet")], None, _bound(values))
    assert sql == ("SELECT * FROM file({v0:String}, 'Parquet') UNION ALL "
                   "SELECT * FROM s3({v1:String}, 'Parquet')")
    assert values == [str(tmp_path / "a.parquet"), "http://127.0.0.1:8333/lake-b/p/events/a.parquet"]
    assert LakeFiles().session_settings() == ()


def test_what_cannot_be_read() -> None:
    files = lake_files(Settings(lake_url="s3://lake-b/p", s3_endpoint_url="http://127.0.0.1:8333"))
    for key in ("a,b.parquet", "st*r.parquet", "x{1}.parquet", "q?.parquet", "[x].parquet"):
        with pytest.raises(StorageError, match="as a wildcard"):
            files.read([f"s3://lake-b/p/events/{key}"], None, _bound([]))
    with pytest.raises(StorageError, match="bucket lake-b only"):
        files.read(["s3://lake-b/p/a.parquet", "s3://elsewhere/a.parquet"], None, _bound([]))
    with pytest.raises(StorageError, match="no object storage"):
        LakeFiles().read(["s3://lake-b/p/a.parquet"], None, _bound([]))
    with pytest.raises(ConfigurationError, match="wildcards"):
        engine_for(Settings(lake_url="s3://lake-b/a{b}", engine="clickhouse"))
    assert engine_for(Settings(lake_url="s3://lake-b/p", engine="clickhouse",
                               data_dir=Path("/no/such/{dir}"))) is not None  # data_dir is not read


def test_scrubbed_messages() -> None:
    files = lake_files(Settings(lake_url="s3://lake-b", s3_access_key_id="AKID-1",
                                s3_secret_access_key="s3cr3t/value"))
    plain = ValueError("nothing to hide")
    assert files.scrub(plain) is plain
    clean = files.scrub(RuntimeError("In scope s3('u', 'AKID-1', 's3cr3t/value')"))
    assert type(clean) is RuntimeError
    assert str(clean) == "In scope s3('u', '[HIDDEN]', '[HIDDEN]')"


# -- on a real S3 server --------------------------------------------------------------------------------
def _clickhouse_on(url: str, s3_server: S3Server, **options: Any) -> Queries:
    """The ClickHouse engine over the lake at ``url`` (read-only, as ``mallard.open``), the differential
    tests' clock; ``options`` override the settings its engine reads the bucket with (the store opens it
    with the server's)."""
    store = open_store(Settings(lake_url=url, **s3_server.options()), read_only=True)
    settings = Settings(lake_url=url, engine="clickhouse", **{**s3_server.options(), **options})
    return Queries(store, settings, clock=lambda: NOW.astimezone())


@pytest.fixture(scope="module", params=["events", "stored"])
def lakes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          s3_server: S3Server) -> Iterator[tuple[Queries, Queries, S3Server]]:
    """(DuckDB over a local lake, ClickHouse over its copy in the bucket): the differential tests'
    traffic, a copy of it under a site id holding ':', the goals and segment; ``stored``: with the
    settled days' derived files."""
    events = traffic(random.Random(13))
    events += [e._replace(site_id=COLON) for e in events[::2]]
    data_dir = write(tmp_path_factory.mktemp("ch-s3-lake"), events, seed=1)
    if request.param == "stored":
        store = mallard.Store(data_dir)
        assert backfill.build_settled(store, GAP_S, today=date(2024, 5, 10), budget_secs=120).built
        store.close()
    duck, setup = engines(data_dir)  # adds the goals and segment to the local state/
    setup.close()
    url = s3_server.upload(data_dir, f"ch-differential-{request.param}")
    ch = _clickhouse_on(url, s3_server)
    yield duck, ch, s3_server
    duck.close()
    ch.close()


@pytest.mark.slow  # chdb, SeaweedFS
def test_the_bucket_is_read_by_clickhouse(lakes: tuple[Queries, Queries, S3Server]) -> None:
    _, ch, server = lakes
    with ch.access.reading(SITE, None, None) as reader:
        assert isinstance(reader, ClickHouseReader)
        assert reader.files and all(f.startswith(f"s3://{BUCKET}/") for f in reader.files)
        src, params = reader.source()
        before = server.requests()
        n = reader.execute(f"SELECT count(*) FROM ({src})", params).column(0)[0].as_py()
        after = server.requests()
    assert n > 0
    assert after.get("GET", 0) > before.get("GET", 0)  # ClickHouse fetched the objects itself
    assert after.get("LIST", 0) == before.get("LIST", 0)  # the files named, not listed


@pytest.mark.slow  # chdb, SeaweedFS
@pytest.mark.parametrize("name", CHOSEN)
def test_same_answers_as_duckdb_on_a_local_lake(lakes: tuple[Queries, Queries, S3Server], name: str) -> None:
    duck, ch, _ = lakes
    expected = answer(duck, SHAPES[name])
    assert not (isinstance(expected, tuple) and expected[0] == "error"), expected
    assert same(answer(ch, SHAPES[name]), expected), f"{name}: DuckDB gave {str(expected)[:2000]}"


@pytest.mark.slow  # chdb, SeaweedFS
def test_a_site_id_with_a_colon(lakes: tuple[Queries, Queries, S3Server]) -> None:
    """Its directory is ``site_id=s%3Acolon.test``: ``%253A`` in the URL, the site read back from it."""
    duck, ch, _ = lakes
    rng = {"start_date": "2024-04-28", "end_date": "2024-05-03"}
    for q in (duck, ch):
        assert COLON in q.sites()
    for ask in (lambda q: q.main(COLON, **rng).to_dict(),
                lambda q: q.breakdown(COLON, "sources", metrics=["visitors", "visits", "bounce_rate"],
                                      **rng).to_dict(),
                lambda q: q.funnel(COLON, ["page:/", "page:/a"], window="1 day", **rng).to_dict()):
        expected = ask(duck)
        assert same(ask(ch), expected)
    assert ch.main(COLON, **rng).total_events > 0


def _damage_lake(root: Path) -> tuple[Path, dict[date, Path]]:
    store = mallard.Store(root)
    try:
        files = build_lake(store, [date(2024, 4, 28), date(2024, 4, 29), date(2024, 4, 30)])
    finally:
        store.close()
    return root, files


@pytest.mark.slow  # chdb, SeaweedFS
def test_a_file_named_by_another_tool(tmp_path: Path, s3_server: S3Server) -> None:
    """A name with characters a URL escapes (space, '+', '&', '=', '%', non-ASCII) is read as it is."""
    data, files = _damage_lake(tmp_path / "data")
    odd = files[date(2024, 4, 29)].with_name("part 0+x=1&y%41é.parquet")
    files[date(2024, 4, 29)].rename(odd)
    url = s3_server.upload(data, f"ch-names-{tmp_path.name}")
    rng = {"start_date": "2024-04-25", "end_date": "2024-05-01"}
    with _clickhouse_on(url, s3_server) as ch, mallard.open(data) as duck:
        with ch.access.reading(DAMAGE_SITE, None, None) as reader:
            assert any(f.endswith("/part 0+x=1&y%41é.parquet") for f in reader.files)
        assert ch.main(DAMAGE_SITE, **rng).to_dict() == duck.main(DAMAGE_SITE, **rng).to_dict()
        assert ch.timeseries(DAMAGE_SITE, interval="day", **rng).to_dict() == \
            duck.timeseries(DAMAGE_SITE, interval="day", **rng).to_dict()


@pytest.mark.slow  # chdb, SeaweedFS
def test_a_damaged_object_is_left_out(tmp_path: Path, s3_server: S3Server) -> None:
    """As DuckDB leaves it out on the same lake in the bucket and on disk (not moved: read-only)."""
    data, files = _damage_lake(tmp_path / "data")
    garble(files[date(2024, 4, 29)])
    url = s3_server.upload(data, f"ch-damaged-{tmp_path.name}")
    rng = {"start_date": "2024-04-25", "end_date": "2024-05-01"}
    with _clickhouse_on(url, s3_server) as ch, mallard.open(url, **s3_server.options()) as duck_s3:
        damaged = ch.main(DAMAGE_SITE, **rng).to_dict()
        assert damaged == duck_s3.main(DAMAGE_SITE, **rng).to_dict()
    files[date(2024, 4, 29)].unlink()
    with mallard.open(data) as duck:
        assert damaged == duck.main(DAMAGE_SITE, **rng).to_dict()
    assert damaged["total_events"] > 0


@pytest.mark.slow  # chdb, SeaweedFS
def test_an_object_gone_after_the_listing_is_left_out(tmp_path: Path, s3_server: S3Server) -> None:
    """A 404 for a listed object (compacted or erased meanwhile): the reading goes on without it."""
    data, files = _damage_lake(tmp_path / "data")
    url = s3_server.upload(data, f"ch-gone-{tmp_path.name}")
    with _clickhouse_on(url, s3_server) as ch, ch.access.reading(DAMAGE_SITE, None, None) as reader:
        assert len(reader.files) == 3
        gone = next(f for f in reader.files if "date=2024-04-29" in f)
        s3_server.filesystem().delete_file(gone.removeprefix("s3://"))
        src, params = reader.source()
        n = reader.execute(f"SELECT count(*) FROM ({src})", params).column(0)[0].as_py()
        assert gone not in reader.files and len(reader.files) == 2
    with mallard.open(data) as duck, duck.access.reading(DAMAGE_SITE, None, None) as local:
        src, params = local.source()
        every = local.execute(f"SELECT count(*) FROM ({src})", params).column(0)[0].as_py()
    assert n == every - _rows(files[date(2024, 4, 29)]) > 0


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


@pytest.mark.slow  # chdb, SeaweedFS
def test_a_damaged_stored_object_is_answered_from_events(tmp_path: Path, s3_server: S3Server) -> None:
    data, _ = _damage_lake(tmp_path / "data")
    store = mallard.Store(data)
    assert backfill.build_settled(store, 1800, today=date(2024, 5, 10), budget_secs=60).built
    store.close()
    rng = {"start_date": "2024-04-25", "end_date": "2024-05-01"}

    def asked(q: Queries) -> dict[str, Any]:
        return {"main": q.main(DAMAGE_SITE, **rng).to_dict(),
                "sources": q.breakdown(DAMAGE_SITE, "sources", metrics=["visitors", "bounce_rate"],
                                       **rng).to_dict(),
                "funnel": q.funnel(DAMAGE_SITE, ["page:/a", "page:/b"], **rng).to_dict()}

    with mallard.open(data) as duck:
        expected = asked(duck)
    for path in (data / "sessions").rglob("*.parquet"):
        spoil(path)
    url = s3_server.upload(data, f"ch-spoiled-{tmp_path.name}")
    with _clickhouse_on(url, s3_server) as ch:
        assert asked(ch) == expected


@pytest.mark.slow  # chdb, SeaweedFS
def test_no_error_quotes_a_credential(tmp_path: Path, s3_server: S3Server) -> None:
    data, _ = _damage_lake(tmp_path / "data")
    url = s3_server.upload(data, f"ch-secrets-{tmp_path.name}")
    rng = {"start_date": "2024-04-25", "end_date": "2024-05-01"}

    def chain(exc: BaseException | None) -> str:
        text = ""
        while exc is not None:
            text += f"{type(exc).__name__}: {exc}\n"
            exc = exc.__cause__ or exc.__context__
        return text

    # refused: another secret for the same key id
    with _clickhouse_on(url, s3_server, s3_secret_access_key="not-the-" + SECRET_KEY) as ch, \
            pytest.raises(StorageError, match=r"ClickHouse cannot read the lake.*403") as refused:
        ch.main(DAMAGE_SITE, **rng)
    # a statement ClickHouse rejects quotes its s3() call (the key id, with the secret '[HIDDEN]')
    with _clickhouse_on(url, s3_server) as ch, ch.access.reading(DAMAGE_SITE, None, None) as reader:
        src, params = reader.source()
        with pytest.raises(Exception, match="HIDDEN") as rejected:
            reader.execute(f"SELECT no_such_column FROM ({src})", params)
    # unreachable
    with _clickhouse_on(url, s3_server, s3_endpoint_url=f"http://127.0.0.1:{_free_port()}") as ch, \
            pytest.raises(StorageError, match="ClickHouse cannot read the lake") as unreachable:
        ch.main(DAMAGE_SITE, **rng)
    for caught in (refused, rejected, unreachable):
        text = chain(caught.value)
        assert SECRET_KEY not in text and ACCESS_KEY not in text, text


@pytest.mark.slow  # chdb, SeaweedFS
def test_the_aws_variables(tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the s3_* keys, ClickHouse signs with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (as
    pyarrow does for the DuckDB engine)."""
    data, _ = _damage_lake(tmp_path / "data")
    url = s3_server.upload(data, f"ch-env-{tmp_path.name}")
    rng = {"start_date": "2024-04-25", "end_date": "2024-05-01"}
    unsigned = {"s3_access_key_id": None, "s3_secret_access_key": None}  # the store's keys are given
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with _clickhouse_on(url, s3_server, **unsigned) as ch, \
            pytest.raises(StorageError, match="403"):
        ch.main(DAMAGE_SITE, **rng)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    with _clickhouse_on(url, s3_server, **unsigned) as ch:
        assert ch.main(DAMAGE_SITE, **rng).total_events > 0
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    with mallard.open(url) as duck, mallard.open(url, engine="clickhouse") as ch:  # as a notebook opens it
        assert ch.main(DAMAGE_SITE, **rng).to_dict() == duck.main(DAMAGE_SITE, **rng).to_dict()


@pytest.mark.slow  # chdb, SeaweedFS
def test_a_host_of_a_shared_lake(tmp_path: Path, s3_server: S3Server) -> None:
    """``Mallard(lake_url=…, engine="clickhouse")``: its buffered events, the shared events in the
    bucket and the derived files it keeps on disk, read as DuckDB reads them."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    url = f"s3://{BUCKET}/ch-shared-{tmp_path.name}"
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    with Mallard(data_dir=tmp_path / "host", lake_url=url, engine="clickhouse", flush_event_count=100_000,
                 flush_interval_secs=3600, compact_after_files=0, **s3_server.options()) as m:
        duck = Queries(m.store, m.settings.replace(engine="duckdb"),
                       buffer=lambda: m._ingestion.current_buffer())

        def track(n: int, offset: int) -> None:
            for i in range(n):
                page = ("/", "/pricing", "/docs", "/signup")[i % 4]
                assert m.track("pageview", site="shared.test", url=f"https://shared.test{page}",
                               ip=f"10.2.{i % 11}.{i % 5}", user_agent=ua,
                               timestamp=end - timedelta(minutes=offset + 9 * i)).accepted

        first, last = (end - timedelta(days=3)).date(), end.date()
        track(120, 0)
        assert m.queries.main("shared.test", start_date=first, end_date=last).total_events == 120
        assert_same(answers(m.queries, "shared.test", first, last), answers(duck, "shared.test", first, last))
        assert m.flush() == 120
        track(60, 3)  # buffered beside the shared files
        m.build_sessions()
        with m.queries.access.reading("shared.test", first, last) as reader:
            assert reader.files and all(f.startswith("s3://") for f in reader.files)
        assert m.queries.main("shared.test", start_date=first, end_date=last).total_events == 180
        assert_same(answers(m.queries, "shared.test", first, last), answers(duck, "shared.test", first, last))
        duck.close()
    shutil.rmtree(tmp_path / "host", ignore_errors=True)
