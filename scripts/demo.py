"""Track a few hundred generated events through the full pipeline and print the reports.

Run by the README's first command until `mallard serve` exists.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mallard

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.130 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
]
PAGES = ["/", "/pricing", "/docs", "/blog/hello", "/signup"]
REFERRERS = [None, "https://www.google.com/", "https://news.ycombinator.com/", "https://chatgpt.com/"]


def main(data_dir: str = "mallard-data") -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    with mallard.Mallard(data_dir=data_dir) as m:
        for v in range(200):
            ip = f"203.0.113.{v % 250}"
            ua = rng.choice(AGENTS)
            start = now - timedelta(days=rng.randrange(7), minutes=rng.randrange(600))
            for step in range(rng.randint(1, 4)):
                m.track("pageview", site="demo.example", url="https://demo.example" + rng.choice(PAGES),
                        ip=ip, user_agent=ua, referrer=rng.choice(REFERRERS) if step == 0 else None,
                        screen_width=rng.choice([390, 1440, 1920]),
                        timestamp=start + timedelta(minutes=3 * step))
            if rng.random() < 0.2:
                m.track("signup", site="demo.example", url="https://demo.example/signup", ip=ip,
                        user_agent=ua, props={"plan": rng.choice(["free", "pro"])}, revenue=19,
                        currency="EUR", timestamp=start + timedelta(minutes=15))
        q = m.queries
        print("main:", q.main("demo.example", period="7d").to_dict())
        for name in ("pages", "sources", "browsers", "devices"):
            print(f"{name}:", q.breakdown("demo.example", name, period="7d", limit=5).rows)
        print("timeseries:", q.timeseries("demo.example", period="7d").rows)
    print(f"Parquet lake written under {Path(data_dir).resolve() / 'events'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
