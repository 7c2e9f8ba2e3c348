"""Where the ClickHouse engine reads the lake's files from: ``file()`` on disk, ``s3()`` on object storage.

A reading's files are paths on disk (``data_dir``) or ``s3://bucket/key`` objects (``lake_url``; a host
writing a shared lake keeps its derived files on disk). Either way one table function reads a list of
them: its path pattern names exactly those files, ``dir/{a,b,c}`` (ClickHouse expands the braces into
the keys: no LIST of the bucket). On object storage:

* the URL is path-style on the endpoint of ``s3_endpoint_url`` (SeaweedFS, MinIO, R2…), else AWS S3's
  virtual-hosted one (``https://bucket.s3.<s3_region>.amazonaws.com``);
* every key is percent-encoded (ClickHouse decodes the URL: a site's ``:`` is ``%3A`` in its directory
  name, so ``%253A`` in the URL); ``_path`` is ``bucket/key``, decoded;
* the credentials are the ``s3_*`` settings, bound as query parameters (never in the statement's text;
  ClickHouse writes a secret as ``[HIDDEN]`` when it quotes a call); without them ClickHouse takes the
  standard AWS variables (``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``);
  :meth:`LakeFiles.scrub` takes both values out of any error text all the same;
* requests give up as pyarrow's do (:data:`~mallard._store.s3.CONNECT_TIMEOUT`, a few retries): an
  unreachable store fails a query instead of retrying for minutes (ClickHouse's default: 500 attempts).

ClickHouse reads any of :data:`~mallard._queries.dialect_params.WILDCARDS` in a key as a wildcard, encoded
or not (it decodes the URL first), and has no escape for them: a file named so is refused, as on disk.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from .._errors import ConfigurationError, StorageError
from .._setting_values import split_lake_url
from .._store.s3 import CONNECT_TIMEOUT, REQUEST_TIMEOUT, SCHEME
from .dialect_params import WILDCARDS, file_pattern

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["LakeFiles", "lake_files"]

#: Attempts of one S3 request (ClickHouse's default is 500, minutes against an unreachable store).
RETRY_ATTEMPTS: Final = 3
#: ``bind(text)``: a new String query parameter holding ``text``; returns its placeholder.
Bind = Callable[[str], str]


def _refuse_wildcards(keys: Sequence[str]) -> None:
    bad = next((k for k in keys if any(c in k for c in WILDCARDS)), None)
    if bad is not None:
        raise StorageError(f"The ClickHouse engine cannot read {SCHEME}{bad}: ClickHouse reads any of "
                           f"{WILDCARDS} in a key as a wildcard.")


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The bucket's URL (up to the key) and how to sign for it."""

    bucket: str
    base: str
    path_style: bool
    access_key_id: str | None
    secret_access_key: str | None

    def pattern(self, keys: Sequence[str]) -> str:
        """The URL naming exactly ``keys`` (``bucket/key``), the keys percent-encoded."""
        _refuse_wildcards(keys)
        inside = [k.split("/", 1)[1] if k.startswith(f"{self.bucket}/") else "" for k in keys]
        if not all(inside):
            other = next(k for k, i in zip(keys, inside, strict=True) if not i)
            raise StorageError(f"The ClickHouse engine reads the lake's bucket {self.bucket} only, not "
                               f"{SCHEME}{other}.")
        if len(inside) == 1:
            return f"{self.base}/{quote(inside[0])}"
        common = posixpath.commonpath(inside)
        head = f"{quote(common)}/" if common else ""
        tails = ",".join(quote(posixpath.relpath(k, common) if common else k) for k in inside)
        return f"{self.base}/{head}{{{tails}}}"


class LakeFiles:
    """Reads lists of lake files in ClickHouse: on disk through ``file()``, ``s3://`` objects through
    ``s3()`` (``bucket``: the lake's, None when the lake is on disk)."""

    def __init__(self, bucket: _Bucket | None = None) -> None:
        self._bucket = bucket

    def read(self, paths: Sequence[str], structure: str | None, bind: Bind, columns: str = "*") -> str:
        """A SELECT of ``columns`` (expressions that may read ``_path``) of the Parquet files ``paths``,
        read with ``structure`` (a ClickHouse column list as text; None: the files' own), its values
        bound through ``bind``.

        Raises:
            StorageError: a path holds a character ClickHouse reads as a wildcard, or is an object
                outside the lake's bucket (or the lake is not on object storage).
        """
        objects = [p.removeprefix(SCHEME) for p in paths if p.startswith(SCHEME)]
        local = [p for p in paths if not p.startswith(SCHEME)]
        parts = []
        if local:
            where = bind(file_pattern(local))
            parts.append(f"SELECT {columns} FROM file({where}, 'Parquet'{_shape(structure, bind)})")
        if objects:
            bucket = self._bucket
            if bucket is None:
                raise StorageError(f"The ClickHouse engine reads no object storage here ({paths[0]}): "
                                   "set lake_url and the s3_* settings.")
            where = bind(bucket.pattern(objects))
            if bucket.access_key_id is not None and bucket.secret_access_key is not None:
                where += f", {bind(bucket.access_key_id)}, {bind(bucket.secret_access_key)}"
            parts.append(f"SELECT {columns} FROM s3({where}, 'Parquet'{_shape(structure, bind)})")
        return " UNION ALL ".join(parts)

    def session_settings(self) -> tuple[str, ...]:
        """The ``SET`` statements a connection reading these files starts with."""
        if self._bucket is None:
            return ()
        style = ("SET s3_uri_style = 'path'",) if self._bucket.path_style else ()
        return (f"SET s3_retry_attempts = {RETRY_ATTEMPTS}",
                f"SET s3_connect_timeout_ms = {int(CONNECT_TIMEOUT * 1000)}",
                f"SET s3_request_timeout_ms = {int(REQUEST_TIMEOUT * 1000)}", *style)

    def scrub(self, exc: Exception) -> Exception:
        """``exc``, or when its text quotes a credential, an exception of its type whose text says
        ``[HIDDEN]`` instead (raise it outside the ``except`` block: the original must not be its
        context)."""
        bucket = self._bucket
        text = str(exc)
        secrets = [] if bucket is None else [s for s in (bucket.secret_access_key, bucket.access_key_id)
                                             if s and s in text]
        if not secrets:
            return exc
        for secret in secrets:
            text = text.replace(secret, "[HIDDEN]")
        try:
            return type(exc)(text)
        except Exception:  # a type whose constructor takes other arguments
            return RuntimeError(text)


def _shape(structure: str | None, bind: Bind) -> str:
    return "" if structure is None else f", {bind(structure)}"


def lake_files(settings: Settings) -> LakeFiles:
    """How the engine of ``settings`` reads the lake: ``data_dir``'s files, or ``lake_url``'s objects.

    Raises:
        ConfigurationError: a path or key prefix the files' names start with holds a character
            ClickHouse reads as a wildcard.
    """
    if not settings.lake_url:
        where = str(settings.data_dir.resolve())
        if any(c in where for c in WILDCARDS):
            raise ConfigurationError(f"engine = clickhouse cannot read a data_dir whose path holds any of "
                                     f"{WILDCARDS} (ClickHouse reads them as wildcards): {where!r}.")
        return LakeFiles()
    bucket, prefix = split_lake_url(settings.lake_url)
    if any(c in prefix for c in WILDCARDS):
        raise ConfigurationError(f"engine = clickhouse cannot read a lake_url whose prefix holds any of "
                                 f"{WILDCARDS} (ClickHouse reads them as wildcards): {settings.lake_url!r}.")
    endpoint = settings.s3_endpoint_url
    if endpoint:
        base, path_style = f"{endpoint.rstrip('/')}/{bucket}", True
    else:
        region = f".{settings.s3_region}" if settings.s3_region else ""
        base, path_style = f"https://{bucket}.s3{region}.amazonaws.com", False
    return LakeFiles(_Bucket(bucket, base, path_style, settings.s3_access_key_id,
                             settings.s3_secret_access_key))

