"""The botocore S3 client of a lake on object storage (what :mod:`mallard._store.objectlog` writes its
commits through, with the conditional header pyarrow cannot send), built from the same settings as
:class:`~mallard._store.s3.Bucket`, and its errors said plainly: the lake, the endpoint, the store's
error code and what to check, never a credential (the store's own message may quote the key id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError, StorageError
from .objectlog import _error_code
from .objectstate import _MEANINGS  # what each error code means: one table for the log and state
from .s3 import CONNECT_TIMEOUT, REQUEST_TIMEOUT

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["client", "storage_error"]

def client(settings: Settings) -> Any:
    """A botocore S3 client for ``settings.lake_url``'s store (unset credentials and region: the
    standard AWS chain, as for pyarrow). Raises :class:`ConfigurationError` without boto3."""
    try:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError("Writing a lake on object storage (lake_url) needs boto3: "
                                 "pip install 'mallard-metrics[s3]'.") from None
    kwargs: dict[str, Any] = {"config": Config(connect_timeout=CONNECT_TIMEOUT,
                                               read_timeout=REQUEST_TIMEOUT,
                                               retries={"max_attempts": 2, "mode": "standard"})}
    if settings.s3_endpoint_url:
        kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        kwargs["region_name"] = settings.s3_region
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        kwargs.update(aws_access_key_id=settings.s3_access_key_id,
                      aws_secret_access_key=settings.s3_secret_access_key)
    return boto3.client("s3", **kwargs)


def storage_error(url: str, doing: str, exc: Exception, endpoint: str) -> StorageError:
    """``exc`` (from botocore, or a StorageError already) as a :class:`StorageError` saying why
    ``doing`` failed on the lake ``url``."""
    if isinstance(exc, StorageError):
        return exc
    code = _error_code(exc)
    if code:
        meaning = _MEANINGS.get(code, f"the store answered {code}")
        return StorageError(f"Cannot {doing} {url}: {meaning} (endpoint {endpoint}, error {code}).")
    return StorageError(f"Cannot {doing} {url}: no answer from the store ({type(exc).__name__}): check "
                        f"s3_endpoint_url ({endpoint}) and that the store is up.")
