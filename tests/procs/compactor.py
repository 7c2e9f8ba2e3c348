"""Compact a data directory each time a line ``go`` arrives on stdin; answer ``done <partitions>``.

Usage: ``python -m tests.procs.compactor DATA_DIR TARGET_BYTES``. Exits at end of input.
"""

from __future__ import annotations

import sys

from mallard._store import Store


def main() -> None:
    data_dir, target = sys.argv[1], int(sys.argv[2])
    store = Store(data_dir)
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                continue
            done = store.compact(min_files=2, target_bytes=target)
            print(f"done {done}", flush=True)
    finally:
        store.close()


if __name__ == "__main__":
    main()
