"""The cheaper never-seen User-Agent path gives exactly the answers of the path it replaced.

The reference below is the parser and bot check as they were before (``ua_parser.regex.Resolver`` over
all domains, then lower-casing the string for the markers and one RE2 search for the crawler list),
kept here verbatim in substance. Both run over every instance of the crawler-user-agents package's
patterns, the browsers and bots of ``benchmarks/traffic.py`` with thousands of mutated versions of
them, this suite's sample User-Agents, and hand-picked edge cases (markers in odd case, non-ASCII
text), and must agree on every field: bot or not, browser, version, OS, version, device class.
(ua-parser's own test corpus is not shipped in the installed packages, only its regexes.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from ua_parser import regex as _rs
from ua_parser.core import Domain
from ua_parser.loaders import load_builtins

from mallard._enrich import bots
from mallard._enrich.useragent import UNKNOWN_AGENT, Agent, AgentParser, _agent_of
from tests.strategies import SAMPLE_USER_AGENTS

ROOT = Path(__file__).resolve().parents[2]


def _traffic() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_traffic", ROOT / "benchmarks" / "traffic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _old_is_bot(user_agent: str) -> bool:
    if not user_agent:
        return False
    lowered = user_agent.lower()
    if any(marker in lowered for marker in bots._EXTRA_MARKERS):
        return True
    return bots._regex().search(user_agent) is not None


class _OldParser:
    def __init__(self) -> None:
        self._resolver = _rs.Resolver(load_builtins())

    def parse(self, user_agent: str) -> Agent:
        if not user_agent:
            return UNKNOWN_AGENT
        result = self._resolver(user_agent, Domain.ALL)
        # The mapping of parsed parts to an Agent is unchanged and shared; the parsing (one Resolver
        # over all domains) and the bot check are the old ones.
        return _agent_of(user_agent, result.user_agent, result.os, result.device, _old_is_bot)


EDGE_CASES = (
    "", " ", "Mozilla/5.0", "Python-Requests/2.31", "CURL/8.4.0", "Mozilla/5.0 HeadLessChrome/120.0",
    "WGET/1.21", "Mozilla/5.0 (X11) LIGHTHOUSE", "java/17.0.2", "Java/1.8.0_402", "Axios/1.6",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0)", "okhttp/4.12.0", "GuzzleHttp/7",
    "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36 ſcrapy",  # ſ lower-cases to itself
    "Mozilla/5.0 (Linux; Android 14) \u212a Chrome/120.0 Mobile",  # Kelvin sign: lower() gives k
    "python-\u212a-requests", "\u0130 curl/8", "Mozilla/5.0 (iPhone) Safari/604.1 名前",
    "Ｍozilla/5.0 Googlebot", "WhatsApp/2.23.20.0 A",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 WhatsApp/2.23.20.0",
)


def corpus() -> list[str]:
    data = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text(
        encoding="utf-8")
    crawlers = [ua for entry in json.loads(data) for ua in entry.get("instances", [])]
    traffic = _traffic()
    real = [ua for _, ua in traffic.USER_AGENTS]
    rng = random.Random(20261203)
    mutated = [traffic.mutate_user_agent(real[i % len(real)], rng) for i in range(3000)]
    return [*crawlers, *real, *traffic.BOT_USER_AGENTS, *mutated, *SAMPLE_USER_AGENTS, *EDGE_CASES]


@pytest.fixture(scope="module")
def user_agents() -> list[str]:
    return corpus()


def test_the_corpus_is_large_and_mixed(user_agents: list[str]) -> None:
    assert len(user_agents) > 5000
    old = _OldParser()
    verdicts = [old.parse(ua).is_bot for ua in user_agents]
    assert sum(verdicts) > 2000 and len(verdicts) - sum(verdicts) > 3000  # bots and browsers both


def test_bot_verdicts_are_unchanged(user_agents: list[str]) -> None:
    differ = [ua for ua in user_agents if bots.is_bot(ua) != _old_is_bot(ua)]
    assert differ == []


def test_every_field_is_unchanged(user_agents: list[str]) -> None:
    old, new = _OldParser(), AgentParser(0)
    differ = [(ua, old.parse(ua), new.parse(ua)) for ua in user_agents
              if old.parse(ua) != new.parse(ua)]
    assert differ == []


def test_cached_answers_are_the_same(user_agents: list[str]) -> None:
    parser = AgentParser(100_000)
    first = [parser.parse(ua) for ua in user_agents]
    assert [parser.parse(ua) for ua in user_agents] == first
    assert parser.hits >= len(user_agents)


# Run in a fresh interpreter: forking the test worker itself copies whatever lock another of its threads
# (a server or refresh thread left by an earlier test) held at that moment, and the child can hang on it.
_FORK_CHECK = """
import os, sys
from mallard._enrich import useragent
from mallard._enrich.useragent import AgentParser
ua = sys.argv[1]
first, second = AgentParser(0), AgentParser(0)
assert first._extractors is second._extractors, "built (and warmed up) once per process"
expected = first.parse(ua)
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # the child: report and leave without running the parent's atexit handlers
    try:
        ok = useragent._shared is None and AgentParser(0).parse(ua) == expected
        os.write(write, b"1" if ok else b"0")
    finally:
        os._exit(0)
os.close(write)
with os.fdopen(read, "rb") as pipe:
    answer = pipe.read()
os.waitpid(pid, 0)
assert answer == b"1", f"the fork child answered {answer!r}"
assert useragent._shared is first._extractors, "the parent keeps its extractors"
print("ok")
"""


def test_parsers_of_a_process_share_the_extractors_and_a_fork_child_rebuilds_them() -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _FORK_CHECK, SAMPLE_USER_AGENTS[0]], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
