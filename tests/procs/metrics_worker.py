"""A host worker process with its own :class:`mallard._telemetry.ProcessCounters`, driven line by line
on stdin.

Usage: ``python -m tests.procs.metrics_worker STATE_DIR``. Prints ``ready <id>``, then answers each
command on one line:

- ``inc N``: add N to ``mallard_events_ingested_total`` → ``ok``
- ``gauge V``: report V as ``mallard_buffered_events`` → ``ok``
- ``snap``: :meth:`~ProcessCounters.flush_snapshot` → ``ok <True|False>``
- ``extra K N``: open K more ProcessCounters on the same directory, add N to each and snapshot them
  → ``ok`` (they die with this process, leaving K more dead snapshots)
- ``render``: → ``total <ingested> workers <live processes> buffered <buffered events>``
- ``fork N``: fork a child that checks it starts at zero, adds N, closes and exits → ``forked <status>``
- ``exit``: close and exit 0 → ``bye``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mallard._telemetry import ProcessCounters

INGESTED = "mallard_events_ingested_total"


def summary(metrics: ProcessCounters) -> str:
    """The values the tests compare, read back from a real render."""
    body, _ = metrics.render()
    values = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    return (f"total {values[INGESTED]:g} workers {values['mallard_worker_processes']:g} "
            f"buffered {values['mallard_buffered_events']:g}")


def fork(metrics: ProcessCounters, amount: int) -> str:
    pid = os.fork()
    if pid == 0:  # the child: never return into the command loop
        code = 0 if metrics.value(INGESTED) == 0 else 3
        metrics.inc(INGESTED, amount)
        metrics.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return f"forked {os.waitstatus_to_exitcode(status)}"


def main() -> None:
    state_dir = Path(sys.argv[1])
    metrics = ProcessCounters(state_dir)
    extras: list[ProcessCounters] = []
    gauge = 0.0
    metrics.set_gauge_source("mallard_buffered_events", lambda: gauge)
    print(f"ready {metrics.id}", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "inc":
            metrics.inc(INGESTED, int(args[0]))
            reply = "ok"
        elif cmd == "gauge":
            gauge = float(args[0])
            reply = "ok"
        elif cmd == "snap":
            reply = f"ok {metrics.flush_snapshot()}"
        elif cmd == "extra":
            for _ in range(int(args[0])):
                extra = ProcessCounters(state_dir)
                extra.inc(INGESTED, int(args[1]))
                extra.flush_snapshot()
                extras.append(extra)
            reply = "ok"
        elif cmd == "render":
            reply = summary(metrics)
        elif cmd == "fork":
            reply = fork(metrics, int(args[0]))
        elif cmd == "exit":
            metrics.close()
            print("bye", flush=True)
            return
        else:
            reply = f"unknown {cmd}"
        print(reply, flush=True)


if __name__ == "__main__":
    main()
