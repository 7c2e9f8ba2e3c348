"""The state every process (and, on object storage, every host) shares, and the one place that chooses
where it lives: :func:`shared_state`.

Salts and the pseudonym secret (:mod:`mallard._privacy`), the admin credential, API keys, logouts and
failed logins (:mod:`mallard._auth`), goals (:mod:`mallard._goals`), saved funnels and shared links
(:mod:`mallard._records`) take a :class:`SharedState` and never build a path themselves:

* with a local ``data_dir`` (the default), a :class:`LocalState`: files under ``<data_dir>/state/``,
  written through :class:`~mallard._state.StateDir` (atomic renames, create-once links, ``flock``s),
  documents as :class:`~mallard._statefile.JsonStateFile`;
* with ``lake_url = "s3://bucket/prefix"``, an :class:`~mallard._store.objectstate.ObjectState`: objects
  under ``s3://bucket/prefix/state/`` with the same names, changed only by conditional writes, documents
  as :class:`~mallard._store.objectstate.ObjectDocument` (compare-and-swap, a cache of at most a second).

Both give the operations below with the same contracts, so no caller knows which one it has.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from ._errors import StorageError, StoreUnreachableError
from ._state import StateDir
from ._statefile import JsonStateFile, SharedDocument

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ["LocalState", "OrLocal", "SharedState", "StateLike", "as_state", "shared_state"]

T = TypeVar("T")
log = logging.getLogger("mallard.state")

#: The lock file of each document of a :class:`LocalState` that does not use ``<stem>.lock`` (the
#: admin credential and the API keys have always shared one).
_LOCKS: Final = {"admin.json": "auth.lock", "api_keys.json": "auth.lock"}


class SharedState(Protocol):
    """Named pieces of shared state (``"secret"``, ``"salts/2026-12-04.salt"``, ``"goals.json"``)."""

    def where(self, name: str) -> str:
        """Where ``name`` is, for messages: a path, or ``s3://bucket/key``."""
        ...

    def read(self, name: str) -> bytes | None:
        """The content of ``name``, or None if there is none."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Replace ``name`` by ``data`` (readers see the old or the new, never a mix)."""
        ...

    def write_once(self, name: str, data: bytes) -> bytes:
        """Create ``name`` with ``data`` unless it exists; the content that won the race."""
        ...

    def delete(self, name: str) -> None:
        """Delete ``name`` (nothing happens if there is none)."""
        ...

    def names(self, folder: str) -> list[str]:
        """The names under ``folder`` (``"salts/"``), sorted, each starting with ``folder``."""
        ...

    def document(self, name: str, *, parse: Callable[[bytes], T], dump: Callable[[T], bytes],
                 empty: Callable[[], T]) -> SharedDocument[T]:
        """The JSON document ``name``: ``read()`` and ``update(change)``."""
        ...


class LocalState(StateDir):
    """:class:`SharedState` in a local ``state/`` directory (shared by the processes of one host)."""

    def where(self, name: str) -> str:
        return str(self.path(name))

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed("read", name, exc) from None

    def delete(self, name: str) -> None:
        try:
            self.path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise self._failed("delete", name, exc) from None

    def names(self, folder: str) -> list[str]:
        try:
            entries = os.listdir(self.path(folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._failed("list", folder, exc) from None
        # temporary files of writes in progress are hidden (``.<name>.<pid>.<hex>.tmp``)
        return sorted(f"{folder}{entry}" for entry in entries
                      if not entry.startswith(".") and self.path(folder + entry).is_file())

    def document(self, name: str, *, parse: Callable[[bytes], T], dump: Callable[[T], bytes],
                 empty: Callable[[], T]) -> JsonStateFile[T]:
        lock = _LOCKS.get(name, f"{Path(name).stem}.lock")
        return JsonStateFile(self.path(name), self.path(lock), parse=parse, dump=dump, empty=empty)

    def _failed(self, action: str, name: str, exc: OSError) -> StorageError:
        return StorageError(f"Cannot {action} {self.path(name)}: {exc.strerror or exc}. Check the "
                            "permissions of the state directory.")


class OrLocal:
    """:class:`SharedState` on object storage that does not stop ingestion while the store does not
    answer (:class:`StoreUnreachableError`; a refusal is raised): a piece created once (a salt, the
    pseudonym secret) that cannot be read or created there
    is created in the local ``state/`` directory instead, provisionally (:attr:`fell_back` says so,
    and a warning is logged); the next successful creation there deletes the local one. Everything
    else is the object store's (its documents answer their last copy during an outage)."""

    def __init__(self, shared: SharedState, local: LocalState) -> None:
        self.shared = shared
        self.local = local
        #: The last :meth:`write_once` could not reach the store and gave a local piece.
        self.fell_back = False

    def where(self, name: str) -> str:
        return self.shared.where(name)

    def read(self, name: str) -> bytes | None:
        try:
            return self.shared.read(name)
        except StoreUnreachableError:
            return self.local.read(name)

    def write(self, name: str, data: bytes) -> None:
        self.shared.write(name, data)

    def write_once(self, name: str, data: bytes) -> bytes:
        try:
            won = self.shared.write_once(name, data)
        except StoreUnreachableError as exc:
            log.warning("%s; using a piece of this host's own until it answers (visitor ids of this host "
                        "may differ from other hosts' meanwhile)", exc)
            self.fell_back = True
            return self.local.write_once(name, data)
        self.fell_back = False
        self.local.delete(name)
        return won

    def delete(self, name: str) -> None:
        self.local.delete(name)
        try:
            self.shared.delete(name)
        except StoreUnreachableError as exc:  # an old salt: the next rotation deletes it (it lists them)
            log.warning("%s; deleting it again later", exc)

    def names(self, folder: str) -> list[str]:
        try:
            return self.shared.names(folder)
        except StoreUnreachableError:
            return self.local.names(folder)

    def document(self, name: str, *, parse: Callable[[bytes], T], dump: Callable[[T], bytes],
                 empty: Callable[[], T]) -> SharedDocument[T]:
        return self.shared.document(name, parse=parse, dump=dump, empty=empty)


#: What the public classes that keep state (``Auth``, ``Goals``, ``Salts``, ``SavedFunnels``,
#: ``SharedLinks``) take: a shared state, or the path of a local ``state/`` directory.
StateLike = SharedState | str | os.PathLike[str]


def as_state(state: StateLike) -> SharedState:
    """``state`` itself, or the :class:`LocalState` at the path ``state``."""
    return LocalState(Path(state)) if isinstance(state, (str, os.PathLike)) else state


def shared_state(settings: Settings, local: Path) -> SharedState:
    """The shared state of ``settings``: on object storage (an ``s3://`` ``lake_url``) under
    ``<prefix>/state/`` of its bucket, else the local ``state/`` directory ``local``."""
    if settings.lake_url:
        from ._store.objectstate import ObjectState  # botocore: only for object storage

        return OrLocal(ObjectState.from_settings(settings), LocalState(local))
    return LocalState(local)
