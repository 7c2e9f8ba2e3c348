"""PII redaction cost on adversarial input: the slowest 4 KB texts we know of, through the rules.

Every rule must stay linear in its input, since an unauthenticated client chooses it (a batch holds up
to 1000 events of 4 KB props each). Prints ms per (text + props) call for each adversarial shape and
for an ordinary pageview path.

    python benchmarks/bench_redaction.py [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import os
import time

from mallard._enrich.redact import Redactor

CASES = {
    "ordinary path": "/blog/2024/05/how-we-count-visitors",
    "@ x4000": "@" * 4000,
    "a@ x2000": "a@" * 2000,
    "%40 x1333": "%40" * 1333,
    "a x3990 then @": "a" * 3990 + "@",
    "addresses x60": ("a" * 60 + "@b.") * 60,
    "'1 ' x2000": "1 " * 2000,
    "'+1 ' x1333": "+1 " * 1333,
    "'+1(1)' x800": "+1(1)" * 800,
    "a=b& x1000": "a=b&" * 1000,
    "'0 12 34 56 ' x400": "0 12 34 56 " * 400,
    "@ then 'a.' x1999": "@" + "a." * 1999,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per case")
    args = parser.parse_args()
    redactor = Redactor()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    worst = 0.0
    for name, text in CASES.items():
        started, n = time.perf_counter(), 0
        while time.perf_counter() - started < args.seconds:
            unique = f"{text}{n}"  # a new text each time, as an attacker would send
            redactor.text(unique)
            redactor.props(f'{{"a": "{unique}"}}')
            n += 1
        ms = (time.perf_counter() - started) / n * 1000
        worst = max(worst, ms)
        print(f"{name:22s} {ms:8.3f} ms per text+props")
    print(f"worst {worst:.3f} ms")


if __name__ == "__main__":
    main()
