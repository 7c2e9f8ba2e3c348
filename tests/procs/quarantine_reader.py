"""Answer one query over a data directory from inside an already open reading of the lake.

Usage: ``python -m tests.procs.quarantine_reader DATA_DIR SITE START END``. Prints ``reading`` once it
holds the lake lock shared, waits for a line ``go`` on stdin, prints the main figures as JSON, then
leaves the reading (which moves any unreadable file it met to the quarantine) and prints ``done``.
Two of these, both ``reading`` before either gets ``go``, meet the same damaged file at the same time.
"""

from __future__ import annotations

import json
import logging
import sys

from mallard import Mallard


def main() -> None:
    data_dir, site, start, end = sys.argv[1:5]
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    with Mallard(data_dir=data_dir, flush_interval_secs=60) as m:
        with m.store.reading(None, None, None):
            print("reading", flush=True)
            if sys.stdin.readline().strip() != "go":
                return
            stats = m.queries.main(site, start_date=start, end_date=end)
            print(json.dumps(stats.to_dict()), flush=True)
        print("done", flush=True)


if __name__ == "__main__":
    main()
