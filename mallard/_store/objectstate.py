"""``state/`` on object storage: the small documents every host of a shared lake must agree on (salts,
the admin credential, API keys, goals, erasure records), kept under ``s3://<bucket>/<prefix>/state/``
and changed only by conditional writes, so hosts need no lock between them.

The two primitives of :mod:`mallard._state` and :mod:`mallard._statefile`, with the same contracts:

* :meth:`ObjectState.write_once` creates an object with ``If-None-Match: *`` and returns the content
  that won: of several hosts racing to create a salt, one creates it and every host (the others after a
  412) reads and uses that one, so all derive the same visitor id.
* :class:`ObjectDocument` is a JSON document with compare-and-swap updates. :meth:`~ObjectDocument.read`
  keeps the document and its ETag in a per-process cache, revalidated at most every
  :data:`REVALIDATE_SECS` with a conditional GET (``If-None-Match: <etag>``: 304 and no body when
  nothing changed), so a hot path (an API-key check) costs no request, and sees another host's change
  at most that long after it. :meth:`~ObjectDocument.update` revalidates (``change`` sees the newest
  document, as under :class:`~mallard._statefile.JsonStateFile`'s lock), applies ``change`` and puts
  the result with ``If-Match: <etag>`` (``If-None-Match: *`` when there was no document). A 412 (or
  AWS's 409 ``ConditionalRequestConflict``) means another host's update landed first: read again,
  apply ``change`` again, after a short random pause, at most :data:`MAX_TRIES` times.

:func:`mallard._sharedstate.shared_state` chooses this state when ``lake_url`` is ``s3://…``
(:meth:`ObjectState.from_settings`); the names and the documents are those of a local ``state/``.

The store must support conditional writes (AWS S3 since 2024, MinIO, SeaweedFS, Cloudflare R2).
pyarrow's ``S3FileSystem`` cannot send those headers, so this module, like
:mod:`mallard._store.objectlog`, talks to the store through a botocore S3 client. Every failure is a
:class:`~mallard._errors.StorageError` naming the bucket and key and what to check, never a credential
(the store's own message, which may quote the access key id, is left out).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, TypeVar

from .._errors import StorageError, StoreUnreachableError
from .._setting_values import split_lake_url
from .objectclient import BUSY, MEANINGS, client
from .objectlog import _LOST, _error_code

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["MAX_TRIES", "REVALIDATE_SECS", "ObjectDocument", "ObjectState"]

T = TypeVar("T")
log = logging.getLogger("mallard.state")

#: Seconds a document read from the store is used without asking the store again: another host's
#: change is seen at most this long after it landed. An update always revalidates first.
REVALIDATE_SECS: Final = 1.0
#: Tries of one update (or create) before giving up with a StorageError, each after a lost race.
MAX_TRIES: Final = 50
#: Longest pause, in seconds, before trying again after a lost race (random, doubling from 5 ms).
_MAX_PAUSE: Final = 0.2

def _connect(settings: Settings) -> Any:
    """A botocore S3 client that does not retry by itself: a conditional write whose answer was lost
    would be retried into a 412 and applied twice; a failed request is a StorageError, a lost race is
    retried here."""
    return client(settings, what="state on object storage", attempts=1)


def _pause(attempt: int) -> None:
    """Wait a random pause after the lost race number ``attempt`` (0, 1…), so racers spread out."""
    time.sleep(random.uniform(0, min(_MAX_PAUSE, 0.005 * 2 ** attempt)))


class ObjectState:
    """The state of the lake at ``s3://<bucket>/<prefix>``, under ``<prefix>/state/``, through
    ``client`` (a botocore S3 client). Thread-safe."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", *,
                 connect: Callable[[], Any] | None = None) -> None:
        self._client_of = (os.getpid(), client)
        self._connect = connect
        self.bucket = bucket
        root = prefix.strip("/")
        self.root = f"{root}/state/" if root else "state/"

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectState:
        """The state of the lake at ``settings.lake_url`` (``s3://…``), reached with the ``s3_*``
        settings (unset credentials and region: botocore's own chain, the standard AWS variables)."""
        assert settings.lake_url
        bucket, prefix = split_lake_url(settings.lake_url)
        connect = functools.partial(_connect, settings)
        return cls(connect(), bucket, prefix, connect=connect)

    @property
    def _client(self) -> Any:
        """The botocore client; in a forked child (a pre-forking server's worker), a new one, so that
        no connection of the parent's pool is shared with it."""
        pid, client = self._client_of
        if self._connect is not None and pid != os.getpid():
            client = self._connect()
            self._client_of = (os.getpid(), client)
        return client

    def key(self, name: str) -> str:
        """The key of the object ``name`` (``"goals.json"``, ``"salts/19723"``)."""
        return f"{self.root}{name}"

    def where(self, name: str) -> str:
        """``s3://<bucket>/<key>`` of the object ``name``, for messages."""
        return f"s3://{self.bucket}/{self.key(name)}"

    def fail(self, action: str, name: str, exc: Exception) -> NoReturn:
        """Raise the StorageError saying why ``action`` of ``name`` failed (``exc``: from botocore)."""
        code = _error_code(exc)
        if code in BUSY:  # the store is there but failing (restarting, overloaded): as an outage
            raise StoreUnreachableError(f"Cannot {action} {self.where(name)}: the store answered {code}, "
                                        "try again later.") from None
        if code:
            meaning = MEANINGS.get(code, f"the store answered {code}")
            raise StorageError(f"Cannot {action} {self.where(name)}: {meaning} (error {code}).") from None
        if type(exc).__module__.startswith("botocore"):  # no answer: connection refused, timeout
            endpoint = getattr(getattr(self._client, "meta", None), "endpoint_url", "?")
            raise StoreUnreachableError(
                f"Cannot {action} {self.where(name)}: no answer from the store at {endpoint} "
                f"({type(exc).__name__}): check s3_endpoint_url and that the store is up.") from None
        raise exc

    def get(self, name: str, *, etag: str | None = None) -> tuple[str, bytes] | None:
        """(ETag, content) of the object ``name``; None if there is none. With ``etag``, a conditional
        GET: ``(etag, b"")`` when the object still has that ETag (no body is sent)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name)}
        if etag is not None:
            kwargs["IfNoneMatch"] = etag
        try:
            answer = self._client.get_object(**kwargs)
            body: bytes = answer["Body"].read()
        except Exception as exc:
            code = _error_code(exc)
            if code in ("NoSuchKey", "404"):
                return None
            if code == "304" and etag is not None:
                return etag, b""
            self.fail("read", name, exc)
        return str(answer["ETag"]), body

    def read(self, name: str) -> bytes | None:
        """The content of the object ``name``, or None if there is none."""
        found = self.get(name)
        return None if found is None else found[1]

    def put(self, name: str, data: bytes, *, if_match: str | None = None,
            if_absent: bool = False) -> str | None:
        """Write the object ``name``; its new ETag, or None when the condition did not hold (another
        host wrote first). ``if_match``: only over that ETag; ``if_absent``: only if there is none."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name), "Body": data}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            answer = self._client.put_object(**kwargs)
        except Exception as exc:
            if (if_match is not None or if_absent) and _error_code(exc) in _LOST:
                return None
            self.fail("write", name, exc)
        return str(answer.get("ETag", ""))

    def write(self, name: str, data: bytes) -> None:
        """Replace the object ``name`` by ``data`` (a PUT is atomic: readers see the old or the new)."""
        self.put(name, data)

    def delete(self, name: str) -> None:
        """Delete the object ``name`` (nothing happens if there is none): an old salt is destroyed."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            self.fail("delete", name, exc)

    def names(self, folder: str) -> list[str]:
        """The names of the objects under ``folder`` (``"salts/"``), sorted."""
        found: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                           Prefix=self.key(folder))
            for page in pages:
                found += [item["Key"].removeprefix(self.root) for item in page.get("Contents", ())]
        except Exception as exc:
            self.fail("list", folder, exc)
        return sorted(found)

    def write_once(self, name: str, data: bytes) -> bytes:
        """Create the object ``name`` with ``data`` unless it exists; the content that won."""
        for attempt in range(MAX_TRIES):
            found = self.get(name)
            if found is not None:
                return found[1]
            if self.put(name, data, if_absent=True) is not None:
                return data
            # lost the race: the winner's object is read on the next turn (unless it was deleted
            # meanwhile, or, on AWS, a 409 said the winner's write is still in flight)
            if attempt:
                _pause(attempt)
        raise StorageError(f"Cannot create {self.where(name)}: {MAX_TRIES} tries lost the race to another "
                           "writer that deleted the object again. Check what else writes under "
                           f"s3://{self.bucket}/{self.root}.")

    def document(self, name: str, *, parse: Callable[[bytes], T], dump: Callable[[T], bytes],
                 empty: Callable[[], T], revalidate_secs: float = REVALIDATE_SECS,
                 clock: Callable[[], float] = time.monotonic, max_tries: int = MAX_TRIES
                 ) -> ObjectDocument[T]:
        """The shared document ``name`` (see :class:`ObjectDocument`)."""
        return ObjectDocument(self, name, parse=parse, dump=dump, empty=empty,
                              revalidate_secs=revalidate_secs, clock=clock, max_tries=max_tries)


class ObjectDocument(Generic[T]):
    """One shared document on object storage: ``read()`` (cached, revalidated at most every
    ``revalidate_secs``) and ``update(change)`` (compare-and-swap).

    Args:
        state: where it lives.
        name: the object under ``state/`` (``"goals.json"``).
        parse: bytes of the object → the document (raises :class:`StorageError` for a bad one).
        dump: the document → bytes to store.
        empty: the document when there is no object.
        revalidate_secs: how long a read document is used without asking the store.
        clock: seconds, monotonic (tests pass their own).
        max_tries: tries of one update before it fails with a StorageError.
    """

    def __init__(self, state: ObjectState, name: str, *, parse: Callable[[bytes], T],
                 dump: Callable[[T], bytes], empty: Callable[[], T], revalidate_secs: float = REVALIDATE_SECS,
                 clock: Callable[[], float] = time.monotonic, max_tries: int = MAX_TRIES) -> None:
        self._state = state
        self.name = name
        self._parse = parse
        self._dump = dump
        self._empty = empty
        self._revalidate = revalidate_secs
        self._clock = clock
        self._max_tries = max_tries
        self._lock = threading.RLock()
        #: (ETag or None when there is no object, the document, clock time it was last known current)
        self._cache: tuple[str | None, T, float] | None = None
        #: Updates that lost a race to another writer and were applied again (for tests and metrics).
        self.lost_races = 0
        self._stale = False  # the last read could not reach the store: the cached copy was answered

    def read(self, *, force: bool = False) -> T:
        """The current document (do not mutate it: it is shared by the callers of this process).
        ``force``: ask the store now instead of trusting a cache younger than ``revalidate_secs``.
        When the store does not answer (down, unreachable), the copy read last is answered (a warning
        is logged once), so that an outage does not stop the requests that read state; without a
        copy (or with ``force``), the :class:`StorageError` is raised."""
        with self._lock:
            try:
                done = self._current(force=force)[1]
            except StoreUnreachableError as exc:
                if self._cache is None or force:
                    raise
                if not self._stale:  # once per outage: the requests it serves go on meanwhile
                    log.warning("%s; answering from the copy read %.0f s ago until it answers", exc,
                                self._clock() - self._cache[2])
                self._stale = True
                return self._cache[1]
            self._stale = False
            return done

    def _current(self, *, force: bool) -> tuple[str | None, T]:
        now = self._clock()
        cached = self._cache
        if cached is not None and not force and now - cached[2] < self._revalidate:
            return cached[0], cached[1]
        found = self._state.get(self.name, etag=None if cached is None else cached[0])
        if found is None:
            etag, doc = None, self._empty()
        elif cached is not None and found[0] == cached[0]:
            etag, doc = cached[0], cached[1]  # 304 Not Modified
        else:
            etag, doc = found[0], self._parse(found[1])
        self._cache = (etag, doc, now)
        return etag, doc

    def update(self, change: Callable[[T], T]) -> T:
        """Apply ``change`` to the newest document and store the result; returns it.

        ``change`` must not mutate its argument, and may be called more than once (again after each
        race lost to another writer). When it returns its argument itself, nothing is written.
        Whatever it raises propagates, and nothing is written.
        """
        with self._lock:
            for attempt in range(self._max_tries):
                etag, current = self._current(force=True)
                new = change(current)
                if new is current:
                    return current
                stored = self._state.put(self.name, self._dump(new), if_match=etag, if_absent=etag is None)
                if stored:
                    self._cache = (stored, new, self._clock())
                    return new
                if stored is not None:  # the store gave no ETag: read it back next time
                    self._cache = None
                    return new
                self.lost_races += 1
                _pause(attempt)
        raise StorageError(f"Cannot update {self._state.where(self.name)}: {self._max_tries} tries in a row "
                           "lost the race to other hosts' updates. Check for a host rewriting it in a "
                           "loop; otherwise try again.")
