"""``mallard import`` of 1M (and 5M) events from Parquet, CSV and JSON lines: wall time and peak RSS.

For each size, a one-site synthetic lake (``generate.py``, 30 days) is exported once per format with
``mallard export --kind raw --output`` (kept under ``benchmarks/.data/``), then each file is imported into
a fresh data directory by a child process, ``python -m mallard import FILE --quiet``, whose own
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is its peak RSS. ``--mallard DIR`` imports the package from
another checkout (say a worktree of the commit before a change) for a before/after comparison (it
exports the files too, when they are not there yet).

Usage::

    python benchmarks/bench_import.py --events 1m --events 5m
    python benchmarks/bench_import.py --events 1m --mallard /tmp/before    # an older checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate, parse_count  # noqa: E402
from traffic import SITE_IDS, describe_machine  # noqa: E402

SITE = SITE_IDS[0]
FORMATS = ("parquet", "csv", "json")
_CHILD = """
import resource, sys, time
from mallard._cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
elapsed = time.perf_counter() - t0
print(f"BENCH {code} {elapsed:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _env(package_root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(package_root), "CI": ""}


def files(package_root: Path, events: int) -> dict[str, Path]:
    """The lake of ``events`` events and its export in each format (made once)."""
    lake = HERE / ".data" / f"import-{events}"
    generate(lake, events=events, days=30, sites=1, quiet=True)
    out = {}
    for fmt in FORMATS:
        path = HERE / ".data" / f"import-{events}.{fmt}"
        if not path.exists():
            subprocess.run([sys.executable, "-m", "mallard", "export", SITE, "--data-dir", str(lake),
                            "--start-date", "2025-05-01", "--end-date", "2025-06-30", "--kind", "raw",
                            "--output", str(path), "--quiet"],
                           check=True, env=_env(package_root), cwd=package_root)
        out[fmt] = path
    return out


def run_import(package_root: Path, path: Path) -> tuple[float, int, dict[str, object]]:
    """(seconds, peak RSS in KiB, the command's JSON answer) of importing ``path`` into a new dir."""
    with tempfile.TemporaryDirectory(dir=HERE / ".data") as tmp:
        done = subprocess.run([sys.executable, "-c", _CHILD, "import", str(path), "--data-dir",
                               str(Path(tmp) / "data"), "--quiet"],
                              capture_output=True, text=True, env=_env(package_root), cwd=package_root,
                              check=False)
    line = [x for x in done.stderr.splitlines() if x.startswith("BENCH ")]
    if done.returncode or not line or line[-1].split()[1] != "0":
        raise SystemExit(f"import of {path} failed:\n{done.stderr[-2000:]}")
    _, _, seconds, rss = line[-1].split()
    return float(seconds), int(rss), json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=parse_count, action="append", help="1m, 5m… (repeatable)")
    ap.add_argument("--mallard", type=Path, default=HERE.parent,
                    help="checkout whose mallard package imports (default: this one)")
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args(argv)
    print(describe_machine())
    print(f"mallard from {args.mallard}")
    for events in args.events or [1_000_000]:
        made = files(args.mallard, events)
        for fmt in args.formats.split(","):
            size = made[fmt].stat().st_size
            seconds, rss, answer = run_import(args.mallard, made[fmt])
            print(f"{events:>9,} events  {fmt:<8} file {size / 1e6:7.1f} MB  import {seconds:7.1f} s  "
                  f"peak RSS {rss / 1024:7.0f} MiB  stored {answer['stored']:,}", flush=True)
    shutil.rmtree(HERE / ".data" / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
