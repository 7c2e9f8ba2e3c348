"""What a never-seen User-Agent costs: the bot check and the uncached parse, with warm and cold CPU caches.

In a tight loop the regex automata stay in the CPU caches and a never-seen User-Agent costs ~20 µs; in
``track()`` the rest of the pipeline and the Parquet flushes run between two never-seen User-Agents
(one event in 20 in ``bench_ingest.py``), so each one meets cold caches and costs several times more.
This script measures both: for each of ``--n`` fresh User-Agents (real ones from ``traffic.py`` with
mutated versions), it first reads a buffer larger than the CPU caches, then times the call on that
User-Agent ("cold"), then on a variant of it with one byte appended ("warm"). Process CPU time is not
used: the calls are too short; pin the process (``taskset -c 1``) and compare runs of the same minute.

Usage::

    taskset -c 1 python benchmarks/bench_useragent.py [--n 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

import traffic

from mallard._enrich import bots
from mallard._enrich.useragent import AgentParser

_JUNK = bytearray(32 << 20)  # larger than the L2 and L3 caches of the machines this runs on


def trash_caches() -> int:
    return sum(_JUNK[::64])


def timed(fn: Callable[[str], object], user_agent: str) -> float:
    t = time.perf_counter()
    fn(user_agent)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="fresh User-Agents per measurement")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    print(traffic.describe_machine())
    rng = random.Random(args.seed)
    real = [ua for _, ua in traffic.USER_AGENTS]

    def fresh(n: int) -> list[str]:
        return [traffic.mutate_user_agent(rng.choice(real), rng) for _ in range(n)]

    t = time.perf_counter()
    parser = AgentParser(0)
    print(f"AgentParser() in a fresh process: {(time.perf_counter() - t) * 1000:.0f} ms")
    first = fresh(10)
    t = time.perf_counter()
    for ua in first:
        parser.parse(ua)
    each = (time.perf_counter() - t) / len(first)
    print(f"first 10 never-seen User-Agents of the process: {each * 1e6:.1f} µs each")
    for ua in fresh(3000):  # the automata's states for common traffic are built
        parser.parse(ua)
    for label, fn in (("bots.is_bot", bots.is_bot), ("AgentParser.parse (uncached)", parser.parse)):
        cold, warm = [], []
        for ua in fresh(args.n):
            trash_caches()
            cold.append(timed(fn, ua))
            warm.append(timed(fn, ua + " "))
        print(f"{label:30} cold caches: median {statistics.median(cold) * 1e6:6.1f} µs, mean "
              f"{statistics.fmean(cold) * 1e6:6.1f}; warm: median {statistics.median(warm) * 1e6:5.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
