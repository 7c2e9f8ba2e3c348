"""The botocore S3 client of a lake on object storage (what :mod:`mallard._store.objectlog` writes its
commits through, with the conditional header pyarrow cannot send), built from the same settings as
:class:`~mallard._store.s3.Bucket`, and its errors said plainly: the lake, the endpoint, the store's
error code and what to check, never a credential (the store's own message may quote the key id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._errors import ConfigurationError, StorageError
from .objectlog import _error_code
from .s3 import CONNECT_TIMEOUT, REQUEST_TIMEOUT

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["BUSY", "MEANINGS", "client", "storage_error"]

#: Error codes of a store that is there but cannot serve now (5xx): an outage, not a refusal.
BUSY: Final = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "500", "502", "503", "504"})

#: What an error code of the store means for the one who configured it (the log's and the state's).
MEANINGS: Final = {
    "NoSuchBucket": "the bucket does not exist: check the bucket of lake_url",
    "AccessDenied": "access denied: check s3_access_key_id and s3_secret_access_key, and that they may "
                    "read and write under the prefix",
    "InvalidAccessKeyId": "the store does not know the access key id: check s3_access_key_id",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id: check "
                             "s3_secret_access_key",
    "NotImplemented": "the store does not support conditional writes (If-None-Match, If-Match on "
                      "PutObject): use AWS S3, MinIO, SeaweedFS or Cloudflare R2",
}


def client(settings: Settings, *, what: str = "a lake on object storage", attempts: int = 2) -> Any:
    """A botocore S3 client for ``settings.lake_url``'s store (unset endpoint, credentials and region:
    botocore's chain, the standard AWS variables), of a session of its own (sessions are not
    thread-safe), trying each request ``attempts`` times. Raises :class:`ConfigurationError` naming
    ``what`` needs boto3 when it is not installed."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigurationError(f"lake_url is {settings.lake_url!r}: {what} needs boto3. Install it "
                                 "with pip install 'mallard-metrics[s3]'.") from None
    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
                    retries={"max_attempts": attempts, "mode": "standard"})
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region or None,
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=settings.s3_secret_access_key or None, config=config)


def storage_error(url: str, doing: str, exc: Exception, endpoint: str) -> StorageError:
    """``exc`` (from botocore, or a StorageError already) as a :class:`StorageError` saying why
    ``doing`` failed on the lake ``url``."""
    if isinstance(exc, StorageError):
        return exc
    code = _error_code(exc)
    if code:
        meaning = MEANINGS.get(code, f"the store answered {code}")
        return StorageError(f"Cannot {doing} {url}: {meaning} (endpoint {endpoint}, error {code}).")
    return StorageError(f"Cannot {doing} {url}: no answer from the store ({type(exc).__name__}): check "
                        f"s3_endpoint_url ({endpoint}) and that the store is up.")
