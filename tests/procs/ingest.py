"""A host process that tracks events and prints ``ack <pathname>`` for each one acknowledged.

Usage: ``python -m tests.procs.ingest DATA_DIR [options]`` (see ``--help``). The parent test kills it at
some point and then checks that every acknowledged pathname is in the lake exactly once.

``--fault`` injects a crash (SIGKILL of this very process) at a precise point of the storage code:

* ``after-publish``: the first flush renamed its files into the lake but has not deleted its spool segment;
* ``mid-publish``: the first flush renamed one of its Parquet files (of several partitions) and not the rest.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mallard
from mallard._store.lake import Lake
from mallard._store.spool import Spool

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
START = datetime(2024, 3, 1, 12, tzinfo=UTC)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def inject(fault: str) -> None:
    if fault == "after-publish":
        def release(self: Spool, tokens: Sequence[object]) -> None:
            die()

        Spool.release = release  # type: ignore[method-assign]
    elif fault == "mid-publish":
        def publish(written: Sequence[tuple[Path, Path]]) -> None:
            assert len(written) > 1, "the batch should span several partitions"
            tmp, final = written[0]
            os.rename(tmp, final)
            die()

        Lake.publish = staticmethod(publish)  # type: ignore[method-assign]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("--count", type=int, default=10**9)
    p.add_argument("--prefix", default="/e/")
    p.add_argument("--site", default="durable.example")
    p.add_argument("--flush-count", type=int, default=10**9)
    p.add_argument("--flush-interval", type=float, default=3600.0)
    p.add_argument("--days", type=int, default=1, help="spread events over this many days")
    p.add_argument("--pause-every", type=int, default=0)
    p.add_argument("--fault", choices=["none", "after-publish", "mid-publish"], default="none")
    p.add_argument("--erase-after", type=int, default=0,
                   help="after this many events, erase the first day of --site (then keep going)")
    p.add_argument("--then", choices=["hang", "close"], default="hang")
    p.add_argument("--close-when", type=Path, default=None,
                   help="with --then close: wait until this file exists before closing")
    args = p.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent asks for stacks on a timeout
    inject(args.fault)

    m = mallard.Mallard(data_dir=args.data_dir, flush_interval_secs=args.flush_interval,
                        flush_event_count=args.flush_count, compact_after_files=0)
    m.start()
    print("ready", flush=True)
    for i in range(args.count):
        path = f"{args.prefix}{i}"
        ts = START + timedelta(days=i % args.days, microseconds=i)
        outcome = m.track("pageview", site=args.site, url=f"https://{args.site}{path}",
                          ip=f"198.51.{i % 200}.{i % 250 + 1}", user_agent=UA, timestamp=ts)
        if outcome.accepted:
            print(f"ack {path}", flush=True)
        if args.erase_after and i + 1 == args.erase_after:
            m.erase(args.site, START.date(), START.date())
            print("erased", flush=True)
        if args.pause_every and i % args.pause_every == 0:
            time.sleep(0.001)
    print("done", flush=True)
    if args.then == "close":
        while args.close_when is not None and not args.close_when.exists():
            time.sleep(0.01)
        print("closed" if m.close() else "close-failed", flush=True)
        return
    time.sleep(600)  # wait to be killed


if __name__ == "__main__":
    main()
