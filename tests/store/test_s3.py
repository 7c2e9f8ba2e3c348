"""S3 access (mallard/_store/s3.py): the lake's place in a bucket, the connection from the settings, and
the store's errors said plainly, never quoting a credential."""

from __future__ import annotations

import pytest

from mallard import Settings, StorageError
from mallard._store.s3 import Bucket, is_object_url

SECRET = "wJalrXUtnFEMI-not-a-real-secret"
KEY_ID = "AKIAEXAMPLEKEYID"


def _bucket(url: str = "s3://lakes/team/analytics", **options: str) -> Bucket:
    return Bucket.from_settings(Settings(lake_url=url, s3_endpoint_url="http://127.0.0.1:8333",
                                         s3_region="eu-central-1", s3_access_key_id=KEY_ID,
                                         s3_secret_access_key=SECRET, **options))


@pytest.mark.parametrize(("url", "bucket", "prefix", "key"), [
    ("s3://lakes/team/analytics", "lakes", "team/analytics", "lakes/team/analytics/events"),
    ("s3://lakes/team/analytics/", "lakes", "team/analytics", "lakes/team/analytics/events"),
    ("s3://lakes", "lakes", "", "lakes/events"),
], ids=["prefix", "trailing slash", "bucket root"])
def test_paths_of_the_lake(url: str, bucket: str, prefix: str, key: str) -> None:
    b = _bucket(url)
    assert (b.bucket, b.prefix, b.key("events")) == (bucket, prefix, key)
    assert b.url == f"s3://{key.removesuffix('/events')}"
    assert b.fs.region == "eu-central-1"


def test_object_urls_are_told_from_paths() -> None:
    assert is_object_url("s3://bucket/lake")
    assert not is_object_url("var/analytics") and not is_object_url("s3:/bucket")


@pytest.mark.parametrize(("text", "says"), [
    ("When getting information for bucket 'lakes': AWS Error ACCESS_DENIED during HeadBucket operation",
     "access denied: check s3_access_key_id and s3_secret_access_key"),
    ("AWS Error INVALID_ACCESS_KEY_ID during ListObjectsV2 operation: The access key ID you provided",
     "the store does not know the access key id"),
    ("AWS Error SIGNATURE_DOES_NOT_MATCH during ListObjectsV2 operation",
     "the secret access key does not match"),
    ("AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation", "the bucket does not exist"),
    ("AWS Error NETWORK_CONNECTION during HeadBucket operation: curlCode: 7", "cannot reach the endpoint"),
    ("AWS Error SLOW_DOWN during GetObject operation", "the store refused the request"),
], ids=["denied", "unknown key", "bad secret", "no bucket", "unreachable", "other"])
def test_store_errors_are_said_plainly(text: str, says: str) -> None:
    error = _bucket().error(OSError(text))
    assert isinstance(error, StorageError)
    message = str(error)
    assert says in message and "s3://lakes/team/analytics" in message and "http://127.0.0.1:8333" in message
    assert SECRET not in message and KEY_ID not in message


def test_a_missing_object_is_said_so() -> None:
    assert "an object is missing" in str(_bucket().error(FileNotFoundError("lakes/team/x")))
