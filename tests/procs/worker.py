"""One of several host worker processes ingesting into a shared data directory.

Usage: ``python -m tests.procs.worker DATA_DIR WORKER_ID SECONDS``. Prints ``ack <pathname>`` per
acknowledged event, ``own <n> pending=<p>`` after checking that its own unflushed events are visible,
``mismatch ...`` (and exits 3) when its queries ever miss or double-count one of its events, and
``closed <bool>`` at the end.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import mallard

UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.4 Safari/605.1.15")
START = datetime(2024, 3, 1, 8, tzinfo=UTC)


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    data_dir, wid, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    m = mallard.Mallard(data_dir=data_dir, flush_event_count=25, flush_interval_secs=2.0,
                        compact_after_files=2)
    own_site = f"own{wid}.example"
    for i in range(5):
        m.track("pageview", site=own_site, url=f"https://{own_site}/{i}", ip=f"10.0.{wid}.{i}",
                user_agent=UA, timestamp=START)
    pending = m.stats().buffer.pending
    seen = m.queries.query(own_site, metrics=["pageviews"], start_date="2024-03-01",
                           end_date="2024-03-01").rows[0]["pageviews"]
    print(f"own {seen} pending={pending}", flush=True)

    prefix = f"/w{wid}/"
    acked = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        path = f"{prefix}{i}"
        ts = START + timedelta(days=i % 2, microseconds=i)
        if m.track("pageview", site="multi.example", url=f"https://multi.example{path}",
                   ip=f"10.{wid}.{i % 250}.{i % 199}", user_agent=UA, timestamp=ts):
            acked += 1
            print(f"ack {path}", flush=True)
        i += 1
        if i % 40 == 0:
            row = m.queries.sql("SELECT count(*) AS n, count(DISTINCT pathname) AS d FROM events "
                                "WHERE site_id = 'multi.example' AND starts_with(pathname, ?)",
                                [prefix]).to_pylist()[0]
            if row["n"] != acked or row["d"] != acked:
                print(f"mismatch acked={acked} seen={row}", flush=True)
                m.close()
                sys.exit(3)
        if i % 150 == 0:
            m.compact()
        time.sleep(0.0005)
    print(f"closed {m.close()}", flush=True)


if __name__ == "__main__":
    main()
