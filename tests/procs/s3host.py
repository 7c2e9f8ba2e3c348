"""One host of a shared lake on object storage: its own data_dir, the lake in a bucket.

Usage: ``python -m tests.procs.s3host DATA_DIR LAKE_URL ENDPOINT NAME SECONDS [maintain]``. Tracks the
events :func:`call` describes for ``NAME`` (one per loop, numbered from 0), printing ``ack <path>
<epoch>`` once each is acknowledged; with ``maintain``, also compacts every few seconds and, once,
erases :data:`ERASED` (printing ``erasing <epoch>`` just before). Ends with ``closed <bool>``.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import mallard

from ..s3server import ACCESS_KEY, REGION, SECRET_KEY

SITE = "multi.example"
START = datetime(2024, 3, 1, 8, tzinfo=UTC)
#: The UTC day the maintaining host erases.
ERASED = START.date() + timedelta(days=1)
UAS = ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Version/17.4 Mobile/15E148 Safari/604.1")


def call(name: str, i: int) -> dict[str, Any]:
    """track() arguments of host ``name``'s ``i``-th event: its path is ``/<name>/<i>``, its day one of
    three, its visitor one of a few dozen shared by every host."""
    return {"name": "pageview", "site": SITE, "url": f"https://{SITE}/{name}/{i}",
            "ip": f"10.9.{i % 7}.{i % 5}", "user_agent": UAS[i % 2],
            "timestamp": START + timedelta(days=i % 3, seconds=i * 13 % 36_000)}


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    data_dir, url, endpoint, name, seconds = sys.argv[1:6]
    maintain = sys.argv[6:] == ["maintain"]
    m = mallard.Mallard(data_dir=data_dir, lake_url=url, s3_endpoint_url=endpoint, s3_region=REGION,
                        s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY,
                        flush_event_count=40, flush_interval_secs=0.5, min_flush_gap_secs=0,
                        compact_after_files=0)
    deadline = time.monotonic() + float(seconds)
    erase_at = time.monotonic() + float(seconds) / 2
    next_compaction = time.monotonic() + 2
    i = 0
    while time.monotonic() < deadline:
        kwargs = call(name, i)
        if m.track(kwargs.pop("name"), **kwargs).accepted:
            print(f"ack /{name}/{i} {time.time():.6f}", flush=True)
        i += 1
        if maintain and time.monotonic() > next_compaction:
            m.compact()
            next_compaction = time.monotonic() + 2
        if maintain and erase_at and time.monotonic() > erase_at:
            print(f"erasing {time.time():.6f}", flush=True)
            m.erase(SITE, ERASED, ERASED)
            erase_at = 0
        time.sleep(0.004)
    if maintain:
        m.compact()
    print(f"closed {m.close()}", flush=True)


if __name__ == "__main__":
    main()
