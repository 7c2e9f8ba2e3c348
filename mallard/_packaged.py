"""Files shipped inside the package, under ``mallard/static/``: the tracking script and the dashboard.

This is the one place that reads them; the HTTP layer serves what :func:`static_file` returns and adds
the content type, ETag and compression.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["static_file"]


def static_file(path: str) -> bytes | None:
    """The bytes of ``mallard/static/<path>`` (``/``-separated, relative), or None when there is no
    such file or ``path`` would leave that folder."""
    if ".." in path.split("/") or path.startswith("/") or "\\" in path or "\0" in path:
        return None
    node = resources.files("mallard").joinpath("static", *path.split("/"))
    try:
        if not node.is_file():
            return None
        return node.read_bytes()
    except OSError:  # e.g. a name longer than the filesystem allows (ENAMETOOLONG): not one of ours
        return None
