"""The query cache served stale-while-revalidate: the :class:`QueryCache` with an injected clock, the same
through ``Api.handle`` (the ``X-Mallard-Cache`` header), and through a real ``mallard serve``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson
import pytest

import mallard
from mallard._http import Api, Request
from mallard._http.cache import QueryCache

from .conftest import eventually, start, stop

LOCAL = "127.0.0.1"
SITE = "swr.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
WAIT = 30.0  # generous bound on waiting for a background refresh


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(ttl: float = 10, stale: float = 20, **kwargs: object) -> tuple[QueryCache, Ticks]:
    ticks = Ticks()
    return QueryCache(ttl, 100, stale=stale, clock=ticks, **kwargs), ticks  # type: ignore[arg-type]


# -- the cache alone ---------------------------------------------------------------------------------
def test_fresh_then_stale_then_miss_beyond_the_limit() -> None:
    """Within the TTL a hit; past it but within TTL + stale, the same value marked stale; beyond, a miss
    (and the entry is gone)."""
    c, ticks = cache(ttl=10, stale=20)
    c.put("k", SITE, "v1")
    ticks.now += 10
    assert c.lookup("k") == ("hit", "v1")
    ticks.now += 0.5
    assert c.lookup("k") == ("stale", "v1")
    ticks.now += 19.5
    assert c.lookup("k") == ("stale", "v1")
    ticks.now += 0.5
    assert c.lookup("k") == ("miss", None)
    assert len(c) == 0 and (c.hits, c.stale_hits, c.misses) == (1, 2, 1)


def test_stale_zero_disables_serving_stale() -> None:
    """cache_stale_secs = 0: an entry past its TTL is a miss, as before stale-while-revalidate."""
    c, ticks = cache(ttl=10, stale=0)
    c.put("k", SITE, "v1")
    ticks.now += 11
    assert c.lookup("k") == ("miss", None)


def test_one_refresh_for_many_concurrent_stale_hits() -> None:
    """N threads meeting the same stale entry at once start one refresh; once it is done the entry is
    fresh again with the new value."""
    c, ticks = cache()
    c.put("k", SITE, "old")
    ticks.now += 15
    gate, calls, lock = threading.Event(), [], threading.Lock()

    def compute() -> str:
        with lock:
            calls.append(1)
        assert gate.wait(WAIT)
        return "new"

    started: list[bool] = []
    barrier = threading.Barrier(8)

    def hit() -> None:
        barrier.wait(WAIT)
        state, value = c.lookup("k")
        assert (state, value) == ("stale", "old")
        started.append(c.refresh("k", SITE, compute))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert started.count(True) == 1 and len(started) == 8
    assert c.refreshing == 1
    assert c.lookup("k") == ("stale", "old")  # still answered while the refresh runs
    gate.set()
    assert c.wait(WAIT)
    assert calls == [1] and c.refreshes == 1
    assert c.lookup("k") == ("hit", "new")


def test_erasure_drops_stale_entries_and_keeps_a_running_refresh_out() -> None:
    """invalidate_site drops the site's entries, stale ones included, at once; a refresh that started
    before the erasure does not store its (pre-erasure) answer; other sites keep theirs."""
    c, ticks = cache()
    c.put("k", SITE, "old")
    c.put("other", "other.example", "kept")
    ticks.now += 15
    gate = threading.Event()
    assert c.refresh("k", SITE, lambda: "computed before the erasure" if gate.wait(WAIT) else None)
    assert c.invalidate_site(SITE) == 1
    assert c.lookup("k") == ("miss", None)
    gate.set()
    assert c.wait(WAIT)
    assert c.lookup("k") == ("miss", None)
    assert c.lookup("other") == ("stale", "kept")


def test_a_failed_refresh_keeps_the_stale_entry_and_logs_no_data(
        caplog: pytest.LogCaptureFixture) -> None:
    """A refresh that raises leaves the stale answer in place (until too old) and logs only the
    exception's type, never its message (it may quote the request)."""
    c, ticks = cache()
    c.put("k", SITE, "old")
    ticks.now += 15

    def boom() -> str:
        raise ValueError("secret-value-from-the-request")

    with caplog.at_level(logging.WARNING, logger="mallard.http"):
        assert c.refresh("k", SITE, boom)
        assert c.wait(WAIT)
    assert c.refresh_failures == 1
    assert c.lookup("k") == ("stale", "old")
    assert "ValueError" in caplog.text and "secret-value" not in caplog.text
    assert c.refresh("k", SITE, lambda: "new") and c.wait(WAIT)  # a later stale hit retries
    assert c.lookup("k") == ("hit", "new")


def test_no_refresh_after_close() -> None:
    """After close no refresh starts, one still running stores nothing, and stale entries are misses."""
    c, ticks = cache()
    c.put("a", SITE, "old")
    c.put("b", SITE, "old")
    ticks.now += 15
    gate = threading.Event()
    assert c.refresh("a", SITE, lambda: "new" if gate.wait(WAIT) else None)
    closing = threading.Thread(target=c.close, args=(WAIT,))
    closing.start()
    eventually(lambda: c.refresh("b", SITE, lambda: "new") is False)
    gate.set()
    closing.join(WAIT)
    assert c.refreshing == 0 and c.refreshes == 1
    assert c.lookup("a") == ("miss", None) and c.lookup("b") == ("miss", None)


def test_a_forked_child_refreshes_what_a_parent_refresh_was_running_for() -> None:
    """A child of fork() (gunicorn --preload, multiprocessing) gets the entries but not the parent's
    refresh threads: a key whose refresh was running in the parent is refreshed in the child."""
    c, ticks = cache(max_refreshes=1)
    c.put("a", SITE, "old")
    ticks.now += 15
    gate = threading.Event()
    assert c.refresh("a", SITE, lambda: "parent" if gate.wait(WAIT) else None)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = c.lookup("a") == ("stale", "old") and c.refresh("a", SITE, lambda: "child") and c.wait(WAIT)
        os._exit(0 if ok and c.get("a") == "child" else 1)
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        gate.set()
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.wait(WAIT) and c.get("a") == "parent"


# -- through Api.handle ------------------------------------------------------------------------------
@pytest.fixture
def swr(tmp_path: Path) -> Iterator[tuple[Api, Ticks]]:
    ticks = Ticks()
    m = mallard.Mallard(data_dir=tmp_path / "data", cache_ttl_secs=60, cache_stale_secs=240)
    try:
        yield Api(m, clock=ticks), ticks
    finally:
        m.close()


def get(api: Api, query: str = f"site_id={SITE}&period=day") -> tuple[str | None, dict[str, object]]:
    r = api.handle(Request("GET", "/api/stats/main", query, {"host": "127.0.0.1:8000"}, client=LOCAL))
    assert r.status == 200, r.body
    return r.header("X-Mallard-Cache"), orjson.loads(r.body)


def track(m: mallard.Mallard, path: str, ip: str) -> None:
    m.track("pageview", site=SITE, url=f"https://{SITE}{path}", ip=ip, user_agent=UA)


def test_api_answers_stale_at_once_then_fresh_after_the_refresh(swr: tuple[Api, Ticks]) -> None:
    """miss, then hit; past the TTL the cached answer is served marked stale (without this process's newer
    buffered event) while the refresh runs; after it, a hit with the new figure."""
    api, ticks = swr
    track(api.mallard, "/", "192.0.2.1")
    api.mallard.flush()
    assert get(api)[0] == "miss"
    track(api.mallard, "/b", "192.0.2.2")  # buffered, not flushed: the lake fingerprint is unchanged
    assert get(api) == ("hit", get(api)[1]) and get(api)[1]["total_pageviews"] == 1
    ticks.now += 61
    state, body = get(api)
    assert (state, body["total_pageviews"]) == ("stale", 1)
    assert api.cache.wait(WAIT)
    state, body = get(api)
    assert (state, body["total_pageviews"]) == ("hit", 2)
    ticks.now += 60 + 240 + 1  # beyond the staleness limit: computed in the request
    assert get(api)[0] == "miss"


def test_api_erasure_by_another_process_makes_entries_unreachable(swr: tuple[Api, Ticks]) -> None:
    """An erasure recorded by another instance on the same data directory is a miss here at once, even
    when it changed no lake file (the events were only in this process's buffer): otherwise, once this
    process's flush dropped them, the erased figures would stay cached with an unchanged fingerprint."""
    api, _ = swr
    track(api.mallard, "/", "192.0.2.1")
    assert get(api)[1]["total_pageviews"] == 1
    other = mallard.Mallard(data_dir=api.settings.data_dir)
    try:
        other.erase(SITE, date(2000, 1, 1), date(2100, 1, 1))
    finally:
        other.close()
    api.mallard.flush()  # drops the erased event; writes no file
    state, body = get(api)
    assert state == "miss" and body["total_pageviews"] == 0


def test_erasure_through_the_api_drops_this_process_entries(swr: tuple[Api, Ticks]) -> None:
    """DELETE /api/gdpr/erase empties this process's cache for the site, stale entries included."""
    api, ticks = swr
    track(api.mallard, "/", "192.0.2.1")
    assert get(api)[1]["total_pageviews"] == 1
    ticks.now += 61
    assert get(api)[0] == "stale" and api.cache.wait(WAIT)
    ticks.now += 61
    api.mallard.auth.set_password("correct horse battery staple")
    key, _ = api.mallard.auth.create_key("eraser", "Admin")
    headers = {"host": "127.0.0.1:8000", "authorization": f"Bearer {key}"}
    day = api.queries.today("UTC").isoformat()
    r = api.handle(Request("DELETE", "/api/gdpr/erase", f"site_id={SITE}&start_date={day}&end_date={day}",
                           headers, client=LOCAL))
    assert r.status == 200, r.body
    assert len(api.cache) == 0
    r = api.handle(Request("GET", "/api/stats/main", f"site_id={SITE}&period=day", headers, client=LOCAL))
    assert r.header("X-Mallard-Cache") == "miss" and orjson.loads(r.body)["total_pageviews"] == 0


def test_closing_mallard_stops_refreshes(tmp_path: Path) -> None:
    """Mallard.close() closes its Api's cache, even for an instance that never ingested: a stale entry
    met afterwards starts no refresh."""
    m = mallard.Mallard(data_dir=tmp_path / "data")
    served = Api.for_mallard(m)
    m.close()
    assert served.cache.refresh("k", SITE, lambda: "new") is False


# -- through a real server ---------------------------------------------------------------------------
@pytest.mark.slow
def test_real_server_marks_hits_stale_answers_and_refreshes(tmp_path: Path) -> None:
    """`mallard serve` with a 1 s TTL: miss, hit, then (once a second has passed) stale, then, after the
    background refresh, hit again, with the same figures throughout."""
    live = start("serve", tmp_path / "data", env={"MALLARD_CACHE_TTL_SECS": "1",
                                                  "MALLARD_CACHE_STALE_SECS": "600"})
    try:
        with live.client() as c:
            params = {"site_id": SITE, "period": "day"}
            first = c.get("/api/stats/main", params=params)
            assert first.headers["x-mallard-cache"] == "miss"
            assert c.get("/api/stats/main", params=params).headers["x-mallard-cache"] in ("hit", "stale")
            seen: list[str] = []

            def served(state: str) -> bool:
                r = c.get("/api/stats/main", params=params)
                assert r.status_code == 200 and r.json() == first.json()
                seen.append(r.headers["x-mallard-cache"])
                return seen[-1] == state

            eventually(lambda: served("stale"))
            eventually(lambda: served("hit"))
            assert "miss" not in seen
    finally:
        stop(live)
    assert "Traceback" not in live.logs()


def test_cache_header_is_absent_when_the_cache_is_off(tmp_path: Path) -> None:
    """cache_ttl_secs = 0: no cache, no X-Mallard-Cache header."""
    m = mallard.Mallard(data_dir=tmp_path / "data", cache_ttl_secs=0)
    try:
        api = Api.for_mallard(m)
        assert get(api)[0] is None
    finally:
        m.close()


def test_stale_answers_are_counted(swr: tuple[Api, Ticks]) -> None:
    """mallard_cache_stale_total counts answers served stale."""
    api, ticks = swr
    get(api)
    ticks.now += 61
    assert get(api)[0] == "stale" and api.cache.wait(WAIT)
    text = api.handle(Request("GET", "/metrics", client=LOCAL)).body.decode()
    assert "mallard_cache_stale_total 1.0" in text, text
