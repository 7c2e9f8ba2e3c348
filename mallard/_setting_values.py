"""Setting values from any source (text from the environment, TOML types, Python values) as the types
:class:`~mallard._settings.Settings` declares, with an error that names the setting and what it accepts."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Final, Literal, get_args

from ._errors import ConfigurationError

__all__ = ["check_origin", "coerce", "split_lake_url"]

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn a value from any source (string from the environment, TOML type, Python) into `hint`."""
    args = get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigurationError(f"{name} must not be empty.")
    if type(None) in args:  # Optional[X]
        inner = next(a for a in args if a is not type(None))
        if isinstance(value, str) and value.strip() == "" and inner is not str:
            return None
        return coerce(name, value, inner)
    if getattr(hint, "__origin__", None) is Literal:
        text = str(value).strip().lower()
        if text not in args:
            raise ConfigurationError(
                f"{name} must be one of {', '.join(map(str, args))}; got {value!r}."
            )
        return text
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigurationError(
            f"{name} must be a boolean (1/true/yes/on or 0/false/no/off); got {value!r}."
        )
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise ConfigurationError(f"{name} must be a number; got {value!r}.")
        try:
            number = hint(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            kind = "a whole number" if hint is int else "a number"
            raise ConfigurationError(f"{name} must be {kind}; got {value!r}.") from None
        if hint is float and not math.isfinite(number):
            raise ConfigurationError(f"{name} must be a finite number; got {value!r}.")
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ConfigurationError(f"{name} must be a whole number; got {value!r}.")
        return number
    if hint is Path:
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigurationError(f"{name} must be a path; got {value!r}.")
        return Path(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string; got {value!r}.")
        return value
    if getattr(hint, "__origin__", None) is tuple:
        if isinstance(value, str) and value.lstrip().startswith("["):
            # A JSON array of strings, for items that hold commas (regular expressions); anything
            # else (such as the pattern "[0-9]{6}") is comma-separated text.
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
                if isinstance(parsed, list) and all(isinstance(i, str) for i in parsed):
                    value = parsed
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ConfigurationError(
                f"{name} must be a list of strings (or a comma-separated string); got {value!r}."
            )
        return tuple(i.strip() for i in items if i.strip())
    raise ConfigurationError(f"{name}: unsupported value {value!r}.")  # pragma: no cover


def check_origin(origin: str, name: str = "dashboard_origin",
                 example: str = "https://stats.example.com") -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or (
        parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    ):
        raise ConfigurationError(
            f"{name} must be a scheme and host such as '{example}'; "
            f"got {origin!r}."
        )


#: A bucket name as S3 (and SeaweedFS, MinIO, R2) accept it.
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def split_lake_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (without slashes at either end; ``""`` for the bucket's root) of a
    ``lake_url`` such as ``s3://bucket/prefix``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if (not url.startswith("s3://") or not _BUCKET.fullmatch(bucket) or "//" in prefix
            or any(c in prefix for c in "?#\\") or not prefix.isprintable()):
        raise ConfigurationError(
            f"lake_url must be s3://<bucket> or s3://<bucket>/<prefix> (a bucket name of 3-63 lower-case "
            f"letters, digits, dots and hyphens; a prefix without ?, #, \\ or empty segments), or empty "
            f"for the lake in data_dir; got {url!r}."
        )
    return bucket, prefix
