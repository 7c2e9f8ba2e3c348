"""A lake on S3-compatible object storage (mallard/_store/objectstore.py), read through
``mallard.open("s3://…")``: a local lake (traffic, stored sessions and rollups, provisional partitions of
the open days, a goal) is uploaded to a real S3 server (SeaweedFS) and every query must answer as over
the local directory."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

import mallard
from mallard import Mallard, Settings, StorageError
from mallard._queries import rollups, sessions
from mallard._queries.freshness import unchanged
from mallard._store import Store
from mallard._store.objectstore import LISTING_SECS, ObjectStore
from mallard._store.s3 import Bucket

from ..lake_answers import DAYS, SITE, answers, assert_same, traffic
from ..s3server import BUCKET, S3Server

GAP = 30 * 60


def _write(data_dir: Path, end: datetime, seed: int = 7) -> Path:
    """A local lake of ``traffic(seed, end)`` in three flushes, its sessions and rollups stored (settled
    and provisional), with a goal."""
    events = traffic(seed, end)
    store = Store(data_dir)
    try:
        for part in (events[0::3], events[1::3], events[2::3]):
            store.write_batch(part)()
    finally:
        store.close()
    m = Mallard(data_dir=data_dir)
    try:
        assert m.build_sessions(budget_secs=600) >= DAYS - 2
        m.queries.goals.add(SITE, event_name="Signup")
    finally:
        m.close()
    return data_dir


@pytest.fixture(scope="module")
def lakes(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The local lake and the URL of its copy in the bucket."""
    end = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=2)
    local = _write(tmp_path_factory.mktemp("objectstore") / "data", end)
    return local, s3_server.upload(local, "answers")


@pytest.fixture
def object_store(lakes: tuple[Path, str], s3_server: S3Server) -> Iterator[ObjectStore]:
    store = ObjectStore(Bucket.from_settings(Settings(lake_url=lakes[1], **s3_server.options())))
    try:
        yield store
    finally:
        store.close()


def _range(local: Path) -> tuple[date, date]:
    days = Store(local, read_only=True).lake.dates(SITE)
    return days[0], days[-1]


@pytest.mark.slow
def test_every_query_answers_as_over_the_local_lake(lakes: tuple[Path, str], s3_server: S3Server) -> None:
    local, url = lakes
    first, last = _range(local)
    with mallard.open(local) as q:
        expected = answers(q, SITE, first, last)
    with mallard.open(url, **s3_server.options()) as q:
        got = answers(q, SITE, first, last)
        again = answers(q, SITE, first, last)  # what the first asking kept in memory changes nothing
    assert expected["goal"]["results"], "the goal (state/goals.json) must be read"
    assert_same(got, expected)
    assert_same(again, expected)


@pytest.mark.slow
def test_the_stored_sessions_and_rollups_are_read_from_the_bucket(lakes: tuple[Path, str],
                                                                  object_store: ObjectStore) -> None:
    """The bucket's stored partitions are fresh there (their fingerprints hash the same file names), so
    queries read them instead of computing every day from events."""
    local = Store(lakes[0], read_only=True)
    for derived, version in ((object_store.session_files, sessions.version(GAP)),
                             (object_store.rollup_files, rollups.VERSION)):
        mine = derived.listing(SITE)
        theirs = (local.session_files if derived is object_store.session_files else local.rollup_files
                  ).listing(SITE)
        assert sorted(mine) == sorted(theirs) and len(mine) >= DAYS - 2
        for day, part in mine.items():
            assert part.path == f"{lakes[1]}/{theirs[day].path.removeprefix(str(lakes[0]) + '/')}"
            if part.horizon is None:
                assert unchanged(object_store, SITE, part, version), day
    assert any(p.horizon is not None for p in object_store.session_files.listing(SITE).values())


@pytest.mark.slow
def test_the_listing_is_the_local_one(lakes: tuple[Path, str], object_store: ObjectStore) -> None:
    local = Store(lakes[0], read_only=True)
    as_url = lambda paths: [f"{lakes[1]}/{p.removeprefix(str(lakes[0]) + '/')}" for p in paths]  # noqa: E731
    assert object_store.sites() == local.sites() == sorted([SITE, "other.example"])
    assert object_store.lake.dates(SITE) == local.lake.dates(SITE)
    assert object_store.lake.files(None, None, None) == as_url(local.lake.files(None, None, None))
    first, last = local.lake.dates(SITE)[2], local.lake.dates(SITE)[4]
    assert object_store.lake.files(SITE, first, last) == as_url(local.lake.files(SITE, first, last))
    assert object_store.first_date(SITE) == local.first_date(SITE)
    day = local.lake.dates(SITE)[0]
    names = object_store.lake.names(SITE, day)
    assert [n for n, _ in names] == [n for n, _ in local.lake.names(SITE, day)]
    for _, path in names:
        assert abs(object_store.lake.mtime(path) - time.time()) < 3600  # uploaded just now
    with pytest.raises(FileNotFoundError):
        object_store.lake.mtime(f"{lakes[1]}/events/site_id={SITE}/date={day}/gone.parquet")


@pytest.mark.slow
def test_objects_added_and_deleted_are_seen_once_the_listing_expires(
        lakes: tuple[Path, str], s3_server: S3Server, tmp_path: Path) -> None:
    local = shutil.copytree(lakes[0], tmp_path / "data")
    url = s3_server.upload(local, "growing")
    with mallard.open(url, **s3_server.options()) as q:
        first, last = _range(local)
        before = q.main(SITE, start_date=first, end_date=last)["total_events"]
        late = traffic(8, datetime.combine(last, datetime.min.time()) + timedelta(hours=1), visitors=5)
        store = Store(local)
        store.write_batch([e for e in late if e.site_id == SITE and e.timestamp.date() >= first])()
        store.close()
        s3_server.upload(local / "events", "growing/events")
        time.sleep(LISTING_SECS + 0.1)
        with mallard.open(local) as fresh:
            expected = fresh.main(SITE, start_date=first, end_date=last)["total_events"]
        assert q.main(SITE, start_date=first, end_date=last)["total_events"] == expected > before
        gone = Store(local, read_only=True).lake.files(SITE, last, last)[0]
        Path(gone).unlink()
        s3_server.filesystem().delete_file(f"{BUCKET}/growing/{Path(gone).relative_to(local)}")
        time.sleep(LISTING_SECS + 0.1)
        with mallard.open(local) as fresh:
            expected = fresh.main(SITE, start_date=first, end_date=last)["total_events"]
        assert q.main(SITE, start_date=first, end_date=last)["total_events"] == expected


@pytest.mark.slow
def test_damaged_files_are_left_out_as_locally(lakes: tuple[Path, str], s3_server: S3Server,
                                               tmp_path: Path) -> None:
    """An unreadable event file and an unreadable stored sessions file: a read-only local open leaves the
    first out and computes the second's days from events; over the bucket the answers are the same."""
    local = shutil.copytree(lakes[0], tmp_path / "data")
    store = Store(local, read_only=True)
    day = store.lake.dates(SITE)[3]
    Path(store.lake.files(SITE, day, day)[0]).write_bytes(b"PAR1 not parquet PAR1")
    Path(store.session_files.listing(SITE)[store.lake.dates(SITE)[1]].path).write_bytes(b"PAR1 x PAR1")
    url = s3_server.upload(local, "damaged")
    first, last = _range(local)
    with mallard.open(local) as q:
        expected = answers(q, SITE, first, last)
    with mallard.open(url, **s3_server.options()) as q:
        got = answers(q, SITE, first, last)
    assert_same(got, expected)


@pytest.mark.slow
def test_the_standard_aws_variables_are_honoured(lakes: tuple[Path, str], s3_server: S3Server,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without s3_* settings: the endpoint from AWS_ENDPOINT_URL, the credentials and the region as
    pyarrow finds them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)."""
    options = s3_server.options()
    for var, value in (("AWS_ENDPOINT_URL", options["s3_endpoint_url"]),
                       ("AWS_ACCESS_KEY_ID", options["s3_access_key_id"]),
                       ("AWS_SECRET_ACCESS_KEY", options["s3_secret_access_key"]),
                       ("AWS_REGION", options["s3_region"])):
        monkeypatch.setenv(var, value)
    first, last = _range(lakes[0])
    with mallard.open(lakes[0]) as local, mallard.open(lakes[1]) as remote:
        assert_same(remote.main(SITE, start_date=first, end_date=last).to_dict(),
                    local.main(SITE, start_date=first, end_date=last).to_dict())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all")
    with pytest.raises(StorageError, match="s3_secret_access_key"):
        mallard.open(lakes[1])


# -- errors ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("change", "says"), [
    ({"s3_secret_access_key": "not-the-secret-at-all"}, "s3_secret_access_key"),
    ({"s3_access_key_id": "no-such-key-id"}, "access key id"),
    ({"s3_endpoint_url": "http://127.0.0.1:9"}, "cannot reach the endpoint"),
], ids=["wrong secret", "unknown key id", "unreachable endpoint"])
def test_bad_access_is_a_precise_storage_error(lakes: tuple[Path, str], s3_server: S3Server,
                                               caplog: pytest.LogCaptureFixture, change: dict[str, str],
                                               says: str) -> None:
    options = {**s3_server.options(), **change}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as raised:
        mallard.open(lakes[1], **options)
    message = str(raised.value)
    assert says in message and lakes[1] in message
    for secret in (options["s3_secret_access_key"], options["s3_access_key_id"]):
        assert secret not in message and secret not in caplog.text and secret not in repr(raised.value)


@pytest.mark.slow
@pytest.mark.parametrize(("url", "says"), [
    (f"s3://{BUCKET}/no-lake-here", "holds no mallard lake"),
    ("s3://no-such-bucket-here/lake", "the bucket does not exist"),
], ids=["missing prefix", "missing bucket"])
def test_a_missing_lake_is_a_precise_storage_error(s3_server: S3Server, url: str, says: str) -> None:
    with pytest.raises(StorageError, match=says) as raised:
        mallard.open(url, **s3_server.options())
    assert url in str(raised.value) and s3_server.endpoint in str(raised.value)


@pytest.mark.slow
def test_the_bucket_is_never_written(lakes: tuple[Path, str], s3_server: S3Server) -> None:
    fs = s3_server.filesystem()
    before = {i.path: i.mtime_ns for i in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/answers",
                                                                             recursive=True))}
    with mallard.open(lakes[1], **s3_server.options()) as q:
        first, last = _range(lakes[0])
        answers(q, SITE, first, last)
    after = {i.path: i.mtime_ns for i in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/answers",
                                                                            recursive=True))}
    assert after == before
