"""mallard's framework-neutral HTTP layer: :class:`Api` maps :class:`Request` to :class:`Response`.

The adapters in :mod:`mallard.adapters` only translate their framework's requests into these.
"""

from .api import Api as Api
from .messages import HTTPError as HTTPError
from .messages import Request as Request
from .messages import Response as Response

__all__ = ["Api", "HTTPError", "Request", "Response"]
