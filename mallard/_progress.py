"""Progress of the long operations: the core reports it, the edges draw it.

A long operation of the core (compaction, the sessions backfill, an import) takes a :class:`Progress`:
called once per phase with what the phase does, its total and its unit (``progress("compact", 12,
"partitions")``), it returns a :data:`Step` that the operation calls with the units done as they are.
The core draws nothing. :func:`bars` draws tqdm bars for the edges: the CLI's text bars on stderr, and
for the Python API ``tqdm.auto``'s, a widget in a notebook where ipywidgets is installed and text
otherwise. :func:`chosen` reads the Python API's ``progress=`` argument, :func:`options` and
:func:`for_command` the CLI's ``--progress`` and ``--quiet``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import IO, Any, Protocol

__all__ = ["Progress", "Step", "bars", "chosen", "for_command", "options", "silent", "watched"]

Step = Callable[[int], None]
"""Called with the units of work done since the last call."""


class Progress(Protocol):
    """Called at the start of each phase of a long operation; returns the phase's :data:`Step`."""

    def __call__(self, what: str, total: int | None, unit: str) -> Step: ...


def _ignore(done: int) -> None:
    pass


def silent(what: str, total: int | None, unit: str) -> Step:
    """The :class:`Progress` that reports nowhere."""
    return _ignore


def _in_kernel() -> bool:
    """Whether this is a Jupyter kernel (the notebook shows what it draws)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def watched() -> bool:
    """Whether someone sees a bar: in a Jupyter kernel, or with stderr a terminal."""
    return _in_kernel() or sys.stderr.isatty()


def _tqdm(notebook: bool) -> Any:
    if not notebook:
        from tqdm import tqdm

        return tqdm
    from tqdm import TqdmWarning

    with warnings.catch_warnings():  # without ipywidgets tqdm.auto warns once, then draws text bars
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm as auto

    return auto


@contextmanager
def bars(*, show: bool = True, notebook: bool = False, file: IO[str] | None = None) -> Iterator[Progress]:
    """A :class:`Progress` drawing a tqdm bar per phase (none when ``show`` is false), closed on exit.

    Args:
        show: draw the bars (the CLI: stderr is a terminal or ``--progress`` was given).
        notebook: draw through ``tqdm.auto`` (a widget in a notebook with ipywidgets), not text bars.
        file: where text bars go (default: stderr).
    """
    if not show:
        yield silent
        return
    tqdm = _tqdm(notebook)
    drawn: list[Any] = []

    def start(what: str, total: int | None, unit: str) -> Step:
        for bar in drawn:  # a phase ends where the next begins
            bar.close()
        bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=unit == "rows", dynamic_ncols=True,
                   file=file or sys.stderr)  # thousands of rows as 12.3k; days and partitions as counted
        drawn.append(bar)
        return bar.update  # type: ignore[no-any-return]

    try:
        yield start
    finally:
        for bar in drawn:
            bar.close()


def chosen(progress: bool | Progress | None) -> AbstractContextManager[Progress]:
    """The Python API's ``progress=``: a :class:`Progress` as given, True for bars (tqdm.auto), False
    for none, None for bars when :func:`watched`."""
    if callable(progress):
        return nullcontext(progress)
    return bars(show=watched() if progress is None else progress, notebook=True)


def options(p: argparse.ArgumentParser) -> None:
    """A command's ``--progress`` and ``--quiet``."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true",
                       help="progress bars on stderr even when it is not a terminal")
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def for_command(args: argparse.Namespace) -> AbstractContextManager[Progress]:
    """The CLI's text bars on stderr: with ``--progress``, or when stderr is a terminal and ``--quiet``
    is not given."""
    return bars(show=args.progress or (not args.quiet and sys.stderr.isatty()))
