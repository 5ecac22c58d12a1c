"""web_search with the real ddgs library, its engine URLs pointed at local pages (tests/fakes/ddgs_engines.py).

ddgs's own primp client, payloads, xpaths and ranking run; only the engines' hosts are 127.0.0.1. Every way an
engine refuses (DuckDuckGo's 202 bot check, 403, 429, a slow answer, a dropped connection, an empty page) ends
in the SearXNG fallback or in `unavailable` with the reason, in the run's trajectory too; nothing such is cached
past the short TTL.
"""

from __future__ import annotations

import random
import sqlite3

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.config import SearchSettings
from deepsearch.agent.research_tools import ResearchTools
from deepsearch.tools.ddgs_engine import DdgsEngine
from deepsearch.tools.rate_limit import RateLimiter
from deepsearch.tools.searxng import SearxngEngine
from deepsearch.tools.web_search import WebSearch
from deepsearch.traces.reader import find_log, load_trajectory

from tests.fakes.ddgs_engines import HITS, EngineServer
from tests.fakes.search import Recorder, searxng_route
from tests.fakes.web_server import LocalWebServer
from tests.graph_support import ScriptedModel, fake_backend, settings_for

SLOW_TIMEOUT_S = 0.3  # for the "slow" behaviour, whose answer comes after 1 s
TIMEOUT_S = 5.0  # everywhere else: a loaded test machine must not turn a prompt answer into a timeout


def timeout_for(behaviour) -> float:
    return SLOW_TIMEOUT_S if behaviour == "slow" else TIMEOUT_S


@pytest.fixture
def engines(monkeypatch):
    with EngineServer(slow_s=1.0) as server:
        server.point(monkeypatch)
        yield server


@pytest.fixture
def searxng():
    with LocalWebServer() as server:
        searxng_route(server)
        yield server


def make_search(tmp_path, backends: list[str], searxng: LocalWebServer | None = None, **extra) -> WebSearch:
    values = {"ddgs_backends": backends, "timeout_s": TIMEOUT_S, "min_interval_s": 0, "max_retries": 1,
              "searxng_url": searxng.url("") if searxng else "", **extra}  # fmt: skip
    settings = SearchSettings(**values)
    engines = [DdgsEngine(settings.ddgs_backends, settings.timeout_s)]  # the real ddgs.DDGS
    if searxng:
        engines.append(SearxngEngine(settings.searxng_url, 5))
    limiters: dict[str, RateLimiter] = {}
    search = WebSearch(
        settings,
        tmp_path,
        engines=engines,
        limiter_for=lambda key, interval: limiters.setdefault(key, RateLimiter(interval)),
        sleep=Recorder(),
        rng=random.Random(5),
    )
    search.limiters = limiters  # type: ignore[attr-defined]
    return search


def stored(search: WebSearch) -> dict[str, int]:
    if not search.cache.path.exists():
        return {}
    with sqlite3.connect(search.cache.path) as conn:
        return dict(conn.execute("SELECT namespace, count(*) FROM entries GROUP BY namespace").fetchall())


@pytest.mark.parametrize(("engine", "method"), [("duckduckgo", "POST"), ("mojeek", "GET"), ("brave", "GET")])
async def test_real_ddgs_parses_each_engines_page_shape(engines, tmp_path, engine, method):
    search = make_search(tmp_path, [engine])
    outcome = await search.search("nile river")
    assert outcome.status == "ok" and outcome.provider == "ddgs" and outcome.message == ""
    assert [(r.title, r.url, r.snippet) for r in outcome.results] == HITS[engine]  # DuckDuckGo's ad is dropped
    assert engines.requests == [(engine, method, "nile river")]
    assert stored(search) == {"web_search": 1}  # a clean answer: kept for cache_ttl_s (a day)


async def test_real_ddgs_merges_two_engines(engines, tmp_path):
    outcome = await make_search(tmp_path, ["duckduckgo", "mojeek"]).search("nile river")
    assert [r.url for r in outcome.results] == [
        "https://en.wikipedia.org/wiki/Nile",  # found by both, ranked first by ddgs
        "https://ddg.example/nile",
        "https://mojeek.example/nile",
    ]
    assert sorted(e for e, _, _ in engines.requests) == ["duckduckgo", "mojeek"]


async def test_one_blocked_backend_is_covered_by_the_other(engines, tmp_path):
    engines.script("duckduckgo", "anomaly")
    outcome = await make_search(tmp_path, ["duckduckgo", "mojeek"]).search("nile river")
    assert outcome.status == "ok" and [r.url for r in outcome.results] == [u for _, u, _ in HITS["mojeek"]]


# (engine behaviour, the reason web_search gives, requests made to the engine with max_retries=1, backed off)
REFUSALS = [
    ("anomaly", "ddgs rate-limited: duckduckgo HTTP 202 (bot check) (gave up after 2 attempts)", 2, True),
    (429, "ddgs rate-limited: duckduckgo HTTP 429 (too many requests) (gave up after 2 attempts)", 2, True),
    (403, "ddgs blocked: duckduckgo HTTP 403 (forbidden)", 1, True),
    ("slow", "ddgs timed out after 0.3s: duckduckgo timed out (gave up after 2 attempts)", 2, True),
    ("drop", "ddgs failed: duckduckgo connection dropped", 1, False),
    (503, "ddgs failed: duckduckgo HTTP 503", 1, False),
    ("empty", "ddgs found nothing (duckduckgo HTTP 200); possibly blocked", 1, True),
]


@pytest.mark.parametrize(("behaviour", "reason", "requests", "backed_off"), REFUSALS)
async def test_each_refusal_falls_back_to_searxng_with_the_reason_kept_briefly(
    engines, searxng, tmp_path, behaviour, reason, requests, backed_off
):
    engines.script("duckduckgo", behaviour)
    search = make_search(tmp_path, ["duckduckgo"], searxng, timeout_s=timeout_for(behaviour))
    outcome = await search.search("nile river")
    assert outcome.status == "ok" and outcome.provider == "searxng" and outcome.results
    assert outcome.message == f"fallback after: {reason}"
    assert len(engines.hits("duckduckgo")) == requests and len(searxng.paths()) == 1
    assert (search.limiters["ddgs"].backed_off_for() > 0) is backed_off
    assert stored(search) == {"web_search_brief": 1}  # only for search.empty_ttl_s (300 s), never the day-long cache


@pytest.mark.parametrize(("behaviour", "reason", "requests", "backed_off"), REFUSALS)
async def test_without_fallback_each_refusal_is_unavailable_with_the_reason(
    engines, tmp_path, behaviour, reason, requests, backed_off
):
    engines.script("duckduckgo", behaviour)
    search = make_search(tmp_path, ["duckduckgo"], timeout_s=timeout_for(behaviour))
    outcome = await search.search("nile river")
    assert outcome.results == [] and len(engines.hits()) == requests
    hint = "no fallback configured (set search.searxng_url)"
    if behaviour == "empty":  # nothing wrong could be seen: no results, flagged as possibly a block, kept briefly
        assert (outcome.status, outcome.message) == ("no_results", f"{reason}; {hint}")
        assert stored(search) == {"web_search_brief": 1}
    else:
        assert (outcome.status, outcome.message) == ("unavailable", f"web search unavailable: {reason}; {hint}")
        assert stored(search) == {}  # unavailable is never cached


async def test_a_rate_limit_that_lifts_is_retried_and_answered(engines, tmp_path):
    engines.script("mojeek", 429, "results")
    search = make_search(tmp_path, ["mojeek"])
    outcome = await search.search("nile river")
    assert outcome.status == "ok" and outcome.attempts == 2 and outcome.message == ""
    assert [r.url for r in outcome.results] == [u for _, u, _ in HITS["mojeek"]]
    waited = search._sleep.waits  # type: ignore[attr-defined]
    assert len(waited) == 1 and 0.5 <= waited[0] <= 1.0  # one jittered back-off (base 1 s) before the retry
    assert search.limiters["ddgs"].backed_off_for() == 0  # the answer cleared the engine's standing


async def test_a_backed_off_ddgs_is_skipped_while_searxng_answers(engines, searxng, tmp_path):
    engines.script("brave", 429)
    search = make_search(tmp_path, ["brave"], searxng, use_cache=False)
    await search.search("nile river")
    asked = len(engines.hits())
    outcome = await search.search("nile delta")
    assert len(engines.hits()) == asked  # brave was not asked again while backed off
    assert outcome.provider == "searxng" and outcome.message.startswith("fallback after: ddgs skipped, backed off")
    assert "brave HTTP 429 (too many requests)" in outcome.message


def web_only_tools(search: WebSearch) -> ResearchTools:
    return ResearchTools({}, search, None, local_k=4, web_pages=0)  # no page fetches: snippets are the evidence


def web_steps(result, settings) -> list:
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    return [s for s in trajectory.steps if s.kind == "tool_call" and s.tool == "web_search"]


MUST_SHOW = [(b, r) for b, r, _, _ in REFUSALS if b in ("anomaly", 403, 429, "slow")]


@pytest.mark.parametrize(("behaviour", "reason"), MUST_SHOW)
async def test_the_trajectory_says_why_the_search_fell_back(engines, searxng, tmp_path, behaviour, reason):
    engines.script("duckduckgo", behaviour)
    settings = settings_for(tmp_path)
    search = make_search(tmp_path / "cache", ["duckduckgo"], searxng, timeout_s=timeout_for(behaviour))
    question = "Which river is the longest in the world?"
    model = ScriptedModel(judge={"rationale": "stated", "labels": [], "answer": "the Nile", "answered": True,
                                 "decision": "done"})  # fmt: skip
    result = await aresearch(question, settings=settings, backend=fake_backend(model), tools=web_only_tools(search))
    steps = web_steps(result, settings)
    assert steps and all(s.success and s.results for s in steps)  # SearXNG's results
    assert steps[0].error == f"fallback after: {reason}"


async def test_the_trajectory_says_why_the_web_went_unavailable(engines, tmp_path):
    engines.script("mojeek", 429)
    settings = settings_for(tmp_path)
    search = make_search(tmp_path / "cache", ["mojeek"])
    result = await aresearch("Which river is the longest in the world?", settings=settings,
                             backend=fake_backend(ScriptedModel()), tools=web_only_tools(search))  # fmt: skip
    steps = web_steps(result, settings)
    assert len(steps) == 1 and not steps[0].success  # then the web is off for the rest of the run
    assert steps[0].error == (
        "web search unavailable: ddgs rate-limited: mojeek HTTP 429 (too many requests) (gave up after 2 attempts); "
        "no fallback configured (set search.searxng_url)"
    )
    assert any("web search unavailable" in note for note in result.notes)
