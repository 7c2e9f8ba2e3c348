"""Capture the request bodies Plausible's npm trackers send (tests/npm/recorded.json), driving the same
pages and steps as test_npm_trackers.py in headless Chromium against a recording endpoint. Run once, by
hand, after `npm ci --prefix tests/npm`: ``python -m tests.npm.record``. The replay test
(tests/http/test_ingest_plausible_replay.py) posts these bodies to every adapter.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.chromium import ARGS, CHROMIUM, close
from tests.static.quiet import QuietHandler

from .pages import Site, drive_v3, drive_v4, drive_v4_hash, v3_page, v4_page

OUT = Path(__file__).resolve().parent / "recorded.json"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with recorder.lock:
                    recorder.bodies.append(body)
                self.send(202, headers=(("Access-Control-Allow-Origin", "*"),))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def arrived(self, name: str, n: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            with self.lock:
                if sum(json.loads(b)["n"] == name for b in self.bodies) >= n:
                    return
            assert time.monotonic() < deadline, (name, n, self.bodies)
            time.sleep(0.1)


def main() -> None:
    from playwright.sync_api import sync_playwright

    recorded: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, page_of, drive in (
                ("v4", lambda r: v4_page(r.base + "/api/event"), drive_v4),
                ("v4h", lambda r: v4_page(r.base + "/api/event", hash_routing=True), drive_v4_hash),
                ("v3", lambda r: v3_page(r.base), drive_v3)):
            recorder = Recorder()
            with Site({name: page_of(recorder)}) as site:
                context = browser.new_context(viewport={"width": 1280, "height": 700}, user_agent=UA)
                drive(context.new_page(), site, recorder.arrived)
                close(context)
            recorder.httpd.shutdown()
            recorded[name] = recorder.bodies
        browser.close()
    OUT.write_text(json.dumps(recorded, indent=1) + "\n")


if __name__ == "__main__":
    main()
