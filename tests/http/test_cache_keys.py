"""What the query cache keys an answer by, besides the request: the lake files of every range it reads
(a comparison's too), erasures, the site's goals and segments, and today. A change to any of them, by
any process, makes the cached answer unreachable; Stats API v1 and v2 answers are cached under the same
rules (v2 keyed by its body);
the realtime routes are never cached."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import mallard
from mallard._http import Api, Request

from .conftest import Live, eventually, start, stop

LOCAL = "127.0.0.1"
SITE = "keys.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
PASSWORD = "a long enough test password"
GOALS = "/api/stats/breakdown/event:goal"
V1_GOALS = "/api/v1/stats/breakdown"
V1_GOALS_QUERY = f"site_id={SITE}&period=day&property=event:goal&metrics=visitors,conversion_rate"


class Keyed(Api):
    """An Api and the Admin key its requests are made with."""

    key = ""


@contextlib.contextmanager
def keyed(kind: type[Keyed], data_dir: Path) -> Iterator[Keyed]:
    """An Api of ``kind`` with the cache on (the default 60 s), an Admin key, and one visitor who signed
    up and one who only viewed a page, flushed."""
    m = mallard.Mallard(data_dir=data_dir)
    served = kind(m)
    try:
        m.auth.set_password(PASSWORD)
        served.key = m.auth.create_key("test", "Admin")[0]
        m.track("Signup", site=SITE, url=f"https://{SITE}/", ip="192.0.2.1", user_agent=UA)
        m.track("pageview", site=SITE, url=f"https://{SITE}/", ip="192.0.2.2", user_agent=UA)
        m.flush()
        yield served
    finally:
        served.close()
        m.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Keyed]:
    with keyed(Keyed, tmp_path / "data") as served:
        yield served


def call(api: Keyed, method: str, path: str, query: str = "",
         body: object = None) -> tuple[int, Any, str | None]:
    """(status, JSON body, X-Mallard-Cache) of one request with the Admin key."""
    headers = {"host": "127.0.0.1:8000", "authorization": f"Bearer {api.key}"}
    raw = b"" if body is None else orjson.dumps(body)
    if body is not None:
        headers["content-type"] = "application/json"
    r = api.handle(Request(method, path, query, headers, raw, client=LOCAL))
    return r.status, orjson.loads(r.body) if r.body else None, r.header("X-Mallard-Cache")


def get(api: Keyed, path: str, query: str) -> tuple[str | None, Any]:
    status, body, state = call(api, "GET", path, query)
    assert status == 200, body
    return state, body


def counter(api: Keyed, name: str) -> float:
    text = api.handle(Request("GET", "/metrics", client=LOCAL)).body.decode()
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")),
                0.0)


# -- goals and segments --------------------------------------------------------------------------------
def test_a_goal_added_or_deleted_over_http_is_answered_at_once(api: Keyed) -> None:
    """The event:goal breakdown is cached with no goals ([]); PUT /api/v1/sites/goals makes the next one a
    miss that lists the goal; after DELETE the answer is [] again (before, the cached [] and then the
    goal were answered until the TTL ran out). The key holds the goals themselves, so once they are as
    they were, the first answer, right again, is a hit."""
    query = f"site_id={SITE}&period=day"
    assert get(api, GOALS, query) == ("miss", [])
    assert get(api, GOALS, query) == ("hit", [])
    status, goal, _ = call(api, "PUT", "/api/v1/sites/goals",
                           body={"site_id": SITE, "goal_type": "event", "event_name": "Signup"})
    assert status == 200, goal
    state, rows = get(api, GOALS, query)
    assert state == "miss" and [r["value"] for r in rows] == ["Signup"]
    assert get(api, GOALS, query)[0] == "hit"
    status, _, _ = call(api, "DELETE", f"/api/v1/sites/goals/{goal['id']}", f"site_id={SITE}")
    assert status == 200
    assert get(api, GOALS, query) == ("hit", [])


@pytest.mark.slow
def test_a_goal_added_by_another_process_is_answered_at_once(api: Keyed) -> None:
    """`mallard goals add` (another process, on the same data directory) makes this process's cached
    answer unreachable: the key holds what is stored in state/, not an in-process notice."""
    query = f"site_id={SITE}&period=day"
    assert get(api, GOALS, query)[1] == [] and get(api, GOALS, query)[0] == "hit"
    out = subprocess.run([sys.executable, "-m", "mallard", "goals", "add", SITE, "--event", "Signup",
                          "--data-dir", str(api.settings.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    state, rows = get(api, GOALS, query)
    assert state == "miss" and [r["value"] for r in rows] == ["Signup"]


def test_goals_of_another_site_leave_the_entries_reachable(api: Keyed) -> None:
    """The key holds the site's own goals: a goal of another site is still a hit here."""
    query = f"site_id={SITE}&period=day"
    get(api, GOALS, query)
    api.mallard.goals.add("other.example", event_name="Signup")
    assert get(api, GOALS, query)[0] == "hit"


def test_a_segment_change_and_a_currency_change_are_misses(api: Keyed) -> None:
    """Saved segments and the reporting currency are part of the key too."""
    query = f"site_id={SITE}&period=day"
    get(api, GOALS, query)
    status, segment, _ = call(api, "PUT", "/api/v1/sites/segments", body={
        "site_id": SITE, "name": "Firefox", "segment_data": {"filters": [["is", "visit:browser",
                                                                          ["Firefox"]]]}})
    assert status == 200, segment
    assert get(api, GOALS, query)[0] == "miss" and get(api, GOALS, query)[0] == "hit"
    api.mallard.goals.set_currency(SITE, "EUR")
    assert get(api, GOALS, query)[0] == "miss"
    status, _, _ = call(api, "DELETE", f"/api/v1/sites/segments/{segment['id']}", f"site_id={SITE}")
    assert status == 200 and get(api, GOALS, query)[0] == "miss"


def test_an_unreadable_goals_file_fails_goal_queries_and_caches_no_error(api: Keyed) -> None:
    """A damaged goals.json: answers that need no goals are still served (and cached); a goal query is an
    error, never cached; once the file is repaired the goal is answered."""
    api.mallard.goals.add(SITE, event_name="Signup")
    path = api.settings.data_dir / "state" / "goals.json"
    good = path.read_bytes()
    path.write_bytes(b"{not json")
    main = f"site_id={SITE}&period=day"
    assert get(api, "/api/stats/main", main)[0] == "miss"
    assert get(api, "/api/stats/main", main)[0] == "hit"
    status, body, state = call(api, "GET", GOALS, main)
    assert status >= 400 and "error" in body and state in (None, "miss")
    path.write_bytes(good)
    state, rows = get(api, GOALS, main)
    assert state == "miss" and [r["value"] for r in rows] == ["Signup"]


class GoalDuringQuery(Keyed):
    """Adds a goal (really, in state/) once the cache key is made and before the query reads the goals,
    as another worker might at that moment."""

    pending = True

    def _run(self, route: Any, request: Request, params: dict[str, str]) -> Any:
        if self.pending and route.pattern == GOALS.replace("event:goal", "{dimension}"):
            self.pending = False
            self.mallard.goals.add(SITE, event_name="Signup")
        return super()._run(route, request, params)


def test_an_answer_computed_while_the_goals_changed_is_not_kept(tmp_path: Path) -> None:
    """The answer already holds the new goal but its key the old goals: it is not stored, so once the
    goal is deleted again (the goals as the key says) the answer is computed, not the goal served."""
    with keyed(GoalDuringQuery, tmp_path / "data") as api:
        query = f"site_id={SITE}&period=day"
        state, rows = get(api, GOALS, query)
        assert state == "miss" and [r["value"] for r in rows] == ["Signup"]
        (goal,) = api.mallard.goals.list(SITE)
        assert api.mallard.goals.remove(goal.id)
        assert get(api, GOALS, query) == ("miss", [])


# -- Stats API v1 --------------------------------------------------------------------------------------
def test_v1_answers_are_cached_and_a_flush_or_goal_change_is_a_miss(api: Keyed) -> None:
    """A repeated v1 request is a hit (header and Prometheus counter); a flush of a new event is a miss
    with the new figure; a goal added is a miss that answers the goal."""
    aggregate = f"site_id={SITE}&period=day&metrics=visitors,pageviews"
    hits = counter(api, "mallard_cache_hits_total")
    state, first = get(api, "/api/v1/stats/aggregate", aggregate)
    assert state == "miss" and first["results"]["visitors"]["value"] == 2
    assert get(api, "/api/v1/stats/aggregate", aggregate) == ("hit", first)
    assert counter(api, "mallard_cache_hits_total") == hits + 1
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/b", ip="192.0.2.3", user_agent=UA)
    api.mallard.flush()
    state, body = get(api, "/api/v1/stats/aggregate", aggregate)
    assert state == "miss" and body["results"]["visitors"]["value"] == 3
    assert get(api, V1_GOALS, V1_GOALS_QUERY) == ("miss", {"results": []})
    assert get(api, V1_GOALS, V1_GOALS_QUERY)[0] == "hit"
    api.mallard.goals.add(SITE, event_name="Signup")
    state, body = get(api, V1_GOALS, V1_GOALS_QUERY)
    assert state == "miss" and body["results"] == [{"goal": "Signup", "visitors": 1,
                                                    "conversion_rate": 33.33}]


@pytest.mark.parametrize("path", ["/api/v1/stats/aggregate", "/api/v1/stats/timeseries",
                                  "/api/v1/stats/breakdown"])
def test_every_v1_report_is_cached(api: Keyed, path: str) -> None:
    query = f"site_id={SITE}&period=7d&property=visit:browser"
    first = get(api, path, query)
    assert first[0] == "miss" and get(api, path, query) == ("hit", first[1])


def test_v1_key_is_the_normalised_request(api: Keyed) -> None:
    """The same parameters in another order are the same entry; another parameter value is not."""
    assert get(api, "/api/v1/stats/aggregate", f"site_id={SITE}&period=day&metrics=visitors")[0] == "miss"
    assert get(api, "/api/v1/stats/aggregate", f"metrics=visitors&period=day&site_id={SITE}")[0] == "hit"
    assert get(api, "/api/v1/stats/aggregate", f"site_id={SITE}&period=day&metrics=pageviews")[0] == "miss"


def test_a_bad_v1_request_is_a_400_and_not_cached(api: Keyed) -> None:
    for _ in range(2):
        status, body, state = call(api, "GET", "/api/v1/stats/aggregate", f"site_id={SITE}&period=5y")
        assert status == 400 and "error" in body and state is None


@pytest.mark.parametrize("period", ["realtime", "30m"])
def test_v1_periods_counted_from_now_are_not_cached(api: Keyed, period: str) -> None:
    query = f"site_id={SITE}&period={period}"
    for _ in range(2):
        assert get(api, "/api/v1/stats/aggregate", query)[0] is None


def test_realtime_routes_are_never_cached(api: Keyed) -> None:
    """/api/stats/realtime and /api/v1/stats/realtime/visitors are computed on every request, so an event
    accepted a moment ago (flushed or not) is counted by the next one."""
    assert get(api, "/api/v1/stats/realtime/visitors", f"site_id={SITE}") == (None, 2)
    state, body = get(api, "/api/stats/realtime", f"site_id={SITE}")
    assert state is None and body["visitors"] == 2
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/c", ip="192.0.2.4", user_agent=UA)
    assert get(api, "/api/v1/stats/realtime/visitors", f"site_id={SITE}") == (None, 3)
    assert get(api, "/api/stats/realtime", f"site_id={SITE}")[1]["visitors"] == 3


# -- Stats API v2 --------------------------------------------------------------------------------------
V2 = "/api/v2/query"


def v2(api: Keyed, body: object) -> tuple[str | None, Any]:
    status, answer, state = call(api, "POST", V2, body=body)
    assert status == 200, answer
    return state, answer


def test_v2_answers_are_cached_by_body_and_a_flush_or_goal_change_is_a_miss(api: Keyed) -> None:
    """A repeated v2 body is a hit, whatever the order of its keys; another body is a miss; a flush of
    a new event and a goal added are misses with the new figures (the dashboard's goal panel asks this
    route on every view)."""
    body = {"site_id": SITE, "metrics": ["visitors", "events"], "date_range": "day"}
    state, first = v2(api, body)
    assert state == "miss" and first["results"] == [{"metrics": [2, 2], "dimensions": []}]
    assert v2(api, dict(reversed(body.items()))) == ("hit", first)
    assert v2(api, {**body, "metrics": ["visitors"]})[0] == "miss"
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/b", ip="192.0.2.3", user_agent=UA)
    api.mallard.flush()
    state, after = v2(api, body)
    assert state == "miss" and after["results"][0]["metrics"] == [3, 3]
    goals = {"site_id": SITE, "metrics": ["visitors"], "date_range": "day", "dimensions": ["event:goal"]}
    state, none = v2(api, goals)
    assert state == "miss" and none["results"] == []
    assert v2(api, goals) == ("hit", none)
    api.mallard.goals.add(SITE, event_name="Signup")
    state, answer = v2(api, goals)
    assert state == "miss" and answer["results"] == [{"metrics": [1], "dimensions": ["Signup"]}]


def test_a_file_flushed_into_the_compared_period_is_a_v2_miss(api: Keyed) -> None:
    """include.comparisons reads earlier dates: a file flushed into yesterday is a miss."""
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": "day",
            "include": {"comparisons": {"mode": "previous_period"}}}
    state, before = v2(api, body)
    assert state == "miss" and v2(api, body)[0] == "hit"
    yesterday = datetime.now(UTC) - timedelta(days=1)
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/old", ip="192.0.2.9", user_agent=UA,
                      timestamp=yesterday)
    api.mallard.flush()
    state, after = v2(api, body)
    assert state == "miss" and after != before


@pytest.mark.parametrize("date_range", ["24h", "realtime"])
def test_v2_ranges_counted_from_now_are_not_cached(api: Keyed, date_range: str) -> None:
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": date_range}
    for _ in range(2):
        assert v2(api, body)[0] is None


def test_a_bad_v2_query_is_a_400_and_not_cached(api: Keyed) -> None:
    for body in ({"site_id": SITE, "metrics": ["nope"], "date_range": "day"}, [1, 2]):
        for _ in range(2):
            status, answer, state = call(api, "POST", V2, body=body)
            assert status == 400 and "error" in answer and state is None


# -- comparisons ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "query"), [
    ("/api/stats/main", f"site_id={SITE}&period=day&compare=previous_period"),
    ("/api/v1/stats/aggregate", f"site_id={SITE}&period=day&compare=previous_period&metrics=visitors"),
])
def test_a_file_flushed_into_the_compared_period_is_a_miss(api: Keyed, path: str, query: str) -> None:
    """An event of yesterday flushed now (a late server-side track(), a spool recovered after midnight)
    changes the comparison: the compared range's files are part of the key (before, only the current
    range's were, and the old comparison stayed cached)."""
    state, before = get(api, path, query)
    assert state == "miss" and get(api, path, query)[0] == "hit"
    yesterday = datetime.now(UTC) - timedelta(days=1)
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/old", ip="192.0.2.9", user_agent=UA,
                      timestamp=yesterday)
    api.mallard.flush()
    state, after = get(api, path, query)
    assert state == "miss" and after != before


def test_a_file_flushed_into_history_before_the_range_is_a_miss_for_retention(api: Keyed) -> None:
    """Retention's first visit is the earliest event of all history: a late event of a member, ten days
    before the range, makes that member an old visitor, so the cached cohort (read from the range's files
    only, before) must not be answered."""
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/", ip="192.0.2.5", user_agent=UA,
                      user_id="member-1")
    api.mallard.flush()
    query = f"site_id={SITE}&period=day&weeks=1"
    state, before = get(api, "/api/stats/retention", query)
    assert state == "miss" and get(api, "/api/stats/retention", query)[0] == "hit"
    api.mallard.track("pageview", site=SITE, url=f"https://{SITE}/", ip="192.0.2.5", user_agent=UA,
                      user_id="member-1", timestamp=datetime.now(UTC) - timedelta(days=10))
    api.mallard.flush()
    state, after = get(api, "/api/stats/retention", query)
    assert state == "miss"
    sizes = [[c["visitors"] for c in body["cohorts"]] for body in (before, after)]
    assert sizes == [[3], [2]]


# -- several workers -------------------------------------------------------------------------------------
def cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "mallard", *args, "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=120, input=stdin)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, str]]:
    """`mallard serve --workers 2` with an admin password and an Admin key (made by the command)."""
    data = tmp_path_factory.mktemp("cache-keys") / "data"
    live = start("serve", data, workers=2)
    try:
        cli(data, "password", "--password-stdin", stdin=PASSWORD + "\n")
        made = cli(data, "keys", "create", "admin", "--scope", "Admin")
        yield live, str(json.loads(made.split("\n}")[0] + "}")["key"])
    finally:
        stop(live)
    assert "Traceback" not in live.logs(), live.logs()


def answers(live: Live, key: str, path: str, query: str, times: int = 12) -> list[Any]:
    """The bodies of ``times`` requests, each on a new connection (so both workers answer some)."""
    out = []
    for _ in range(times):
        with httpx.Client(base_url=live.base, timeout=30,
                          headers={"Authorization": f"Bearer {key}", "User-Agent": UA}) as c:
            r = c.get(path + "?" + query)
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


@pytest.mark.slow
def test_a_goal_change_in_one_worker_reaches_every_worker(two_workers: tuple[Live, str]) -> None:
    """Both workers cache the goal breakdowns (dashboard and v1) with no goal; a PUT answered by one of
    them is seen by every later request, whichever worker answers it; so is the DELETE."""
    live, key = two_workers
    with httpx.Client(base_url=live.base, timeout=30, headers={"User-Agent": UA}) as c:
        for name in ("Signup", "pageview"):
            r = c.post("/api/event", content=orjson.dumps({"d": SITE, "n": name, "u": f"https://{SITE}/"}),
                       headers={"Content-Type": "text/plain"})
            assert r.status_code == 202
    day = f"site_id={SITE}&period=day"
    eventually(lambda: {b["total_events"] for b in answers(live, key, "/api/stats/main", day)} == {2})
    assert answers(live, key, GOALS, day) == [[]] * 12
    assert answers(live, key, V1_GOALS, V1_GOALS_QUERY) == [{"results": []}] * 12
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    r = httpx.put(live.base + "/api/v1/sites/goals", headers=headers, timeout=30, content=orjson.dumps(
        {"site_id": SITE, "goal_type": "event", "event_name": "Signup"}))
    assert r.status_code == 200, r.text
    goal_id = r.json()["id"]
    assert {tuple(row["value"] for row in b) for b in answers(live, key, GOALS, day)} == {("Signup",)}
    assert {tuple(row["goal"] for row in b["results"])
            for b in answers(live, key, V1_GOALS, V1_GOALS_QUERY)} == {("Signup",)}
    r = httpx.delete(f"{live.base}/api/v1/sites/goals/{goal_id}", params={"site_id": SITE},
                     headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert answers(live, key, GOALS, day) == [[]] * 12
