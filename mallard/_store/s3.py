"""S3-compatible object storage through pyarrow's filesystem layer: a bucket and key prefix, the
connection built from the settings, and the errors of the store said plainly.

Credentials left unset are pyarrow's to find (the standard AWS chain: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``~/.aws``, the host's role), and so is the region
(``AWS_REGION``, ``AWS_DEFAULT_REGION``, the AWS config file). No message of this module quotes a
credential: each names the bucket, the prefix and the endpoint, and the store's error code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from .._errors import StorageError
from .._setting_values import split_lake_url

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["SCHEME", "Bucket", "is_object_url"]

SCHEME: Final = "s3://"
#: Seconds to connect to the endpoint, and to wait for a request's answer: an unreachable store fails
#: a query instead of hanging it.
CONNECT_TIMEOUT: Final = 5.0
REQUEST_TIMEOUT: Final = 30.0

_RELATIONS: Final = frozenset({"events", "sessions", "rollups"})
_LOG: Final = "_log"
_CODE: Final = re.compile(r"AWS Error ([A-Z_]+)")
#: What each error code of the store means for the one who configured it.
_MEANINGS: Final = {
    "ACCESS_DENIED": "access denied: check s3_access_key_id and s3_secret_access_key, and that they "
                     "may list and read the bucket",
    "INVALID_ACCESS_KEY_ID": "the store does not know the access key id (s3_access_key_id)",
    "SIGNATURE_DOES_NOT_MATCH": "the secret access key does not match the access key id "
                                "(s3_secret_access_key)",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "NETWORK_CONNECTION": "cannot reach the endpoint (s3_endpoint_url)",
}


def is_object_url(location: object) -> bool:
    """Whether ``location`` (a ``data_dir`` or ``lake_url`` value) names object storage."""
    return isinstance(location, str) and location.startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A lake's place on object storage: ``fs`` (pyarrow's S3 filesystem), the bucket and the key
    prefix (``""``: the bucket's root), and the endpoint for messages."""

    fs: pafs.FileSystem
    bucket: str
    prefix: str
    endpoint: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Bucket:
        """The lake at ``settings.lake_url`` (an ``s3://`` URL), with the ``s3_*`` settings."""
        assert settings.lake_url
        bucket, prefix = split_lake_url(settings.lake_url)
        options: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT,
                                      "request_timeout": REQUEST_TIMEOUT}
        endpoint = settings.s3_endpoint_url
        if endpoint:
            parts = urlsplit(endpoint)
            options.update(endpoint_override=parts.netloc, scheme=parts.scheme)
        if settings.s3_region:
            options["region"] = settings.s3_region
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            options.update(access_key=settings.s3_access_key_id,
                           secret_key=settings.s3_secret_access_key)
        try:
            fs = pafs.S3FileSystem(**options)
        except (OSError, ValueError, TypeError) as exc:  # pyarrow checks the options only
            raise StorageError(f"Cannot set up S3 access for {settings.lake_url}: "
                               f"{type(exc).__name__}.") from None
        return cls(fs, bucket, prefix, endpoint or "AWS S3")

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``: the root every path of the lake starts with."""
        return f"{SCHEME}{self.key('')}"

    def key(self, relative: str) -> str:
        """pyarrow's path (``bucket/prefix/relative``) of a path relative to the lake's root."""
        return "/".join(p for p in (self.bucket, self.prefix, relative) if p)

    def check(self) -> bool:
        """Raise :class:`StorageError` unless the bucket can be read and holds a lake at the prefix
        (``events/``, ``sessions/`` or ``rollups/`` objects, or a commit log). Returns whether the lake
        has a commit log (hosts write it: see mallard/_store/sharedstore.py)."""
        try:  # a LIST: the store says why it refuses one (a HEAD's answer has no body)
            found = self.fs.get_file_info(pafs.FileSelector(self.key(""), allow_not_found=True))
        except OSError as exc:
            raise self.error(exc) from None
        folders = {i.base_name for i in found if i.type == pafs.FileType.Directory}
        if not folders & (_RELATIONS | {_LOG}):
            try:
                bucket = self.fs.get_file_info(self.bucket)
            except OSError as exc:
                raise self.error(exc) from None
            if bucket.type == pafs.FileType.NotFound:
                raise StorageError(f"Cannot open the lake {self.url}: the bucket does not exist "
                                   f"(endpoint {self.endpoint}).")
            raise StorageError(f"{self.url} holds no mallard lake: no events/, sessions/ or rollups/ "
                               f"under that prefix (endpoint {self.endpoint}).")
        return _LOG in folders

    def error(self, exc: OSError, doing: str = "open the lake") -> StorageError:
        """``exc`` from pyarrow, said as a :class:`StorageError` naming the lake, never a credential."""
        if isinstance(exc, FileNotFoundError):
            return StorageError(f"Cannot {doing} {self.url}: an object is missing (endpoint "
                                f"{self.endpoint}).")
        found = _CODE.search(str(exc))
        code = found.group(1) if found else "unknown"
        meaning = _MEANINGS.get(code, "the store refused the request")
        return StorageError(f"Cannot {doing} {self.url}: {meaning} (endpoint {self.endpoint}, "
                            f"error {code}).")
