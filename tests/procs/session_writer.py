"""Write batches of generated traffic into a data directory, as one ingesting worker does.

Usage: ``python -m tests.procs.session_writer DATA_DIR SEED BATCHES``. The people (and so the visitor ids)
are shared by every writer: two writers store events of the same sessions, as two workers of one site
do. Prints ``done <events>`` and exits.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta

from mallard._store import Store
from tests.queries.test_stored_sessions import DAYS, NAMES, PATHS, POOLS, _event


def main() -> None:
    data_dir, seed, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    store = Store(data_dir)
    written = 0
    try:
        for _ in range(batches):
            events = []
            for _ in range(rnd.randint(5, 30)):
                day = rnd.choice(DAYS)
                when = datetime.combine(day, datetime.min.time()) + timedelta(
                    seconds=rnd.choice([-1800, -60, 0, 59, 1790, 1830, 43_200, 86_340]) + rnd.randint(0, 120))
                if not DAYS[0] <= when.date() <= DAYS[-1]:
                    continue
                events.append(_event(f"w{rnd.randint(0, 15)}", when, rnd.choice(NAMES), rnd.choice(PATHS),
                                     {k: rnd.choice(v) for k, v in POOLS.items()}, True))
            if events:
                store.write_batch(events)()
                written += len(events)
    finally:
        store.close()
    print(f"done {written}", flush=True)


if __name__ == "__main__":
    main()
