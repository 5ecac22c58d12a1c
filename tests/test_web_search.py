"""web_search's own logic: normalisation, key drift, retries and backoff, empty answers, cache lives, the tool.

Engine failures come from ScriptedEngine (our engine contract) or from what ddgs's DDGS.text really returns and
raises; the real ddgs against local engine pages is tests/test_web_ddgs_real.py.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time

import pytest
from ddgs.exceptions import DDGSException
from deepsearch.agent.config import SearchSettings
from deepsearch.agent.errors import ConfigError, UsageError
from deepsearch.tools import rate_limit
from deepsearch.tools.ddgs_engine import DdgsEngine
from deepsearch.tools.rate_limit import RateLimiter
from deepsearch.tools.search_engine import Blocked, EmptyAnswer, EngineTimeout, RateLimited
from deepsearch.tools.search_models import SearchOutcome
from deepsearch.tools.web_search import WebSearch, build_web_search_tool
from langchain_core.messages import ToolMessage

from tests.fakes.search import FakeDDGS, Recorder, ScriptedEngine

DDGS9 = [
    {"title": "Nile - Wikipedia", "href": "https://en.wikipedia.org/wiki/Nile", "body": "The Nile is a major river."},
    {
        "title": "Nile facts",
        "href": "https://www.example.org/nile?utm_source=x",
        "body": "Facts  about\nthe Nile.",
    },
    {"title": "dup", "href": "http://example.org/nile/", "body": "same page, other spelling"},
    {"title": "no url", "body": "dropped"},
]


def make_search(tmp_path, fake, sleep=None, **settings) -> WebSearch:
    """A WebSearch over one engine: a FakeDDGS wrapped in the real DdgsEngine, or a list of engines as they are."""
    s = SearchSettings(**{"min_interval_s": 0, "backoff_base_s": 1, **settings})
    engines = fake if isinstance(fake, list) else [DdgsEngine(s.ddgs_backends, s.timeout_s, ddgs_factory=fake)]
    limiters: dict[str, RateLimiter] = {}
    search = WebSearch(
        s,
        tmp_path,
        engines=engines,
        limiter_for=lambda key, interval: limiters.setdefault(key, RateLimiter(interval)),
        sleep=sleep or Recorder(),
        rng=random.Random(7),
    )
    search.limiters = limiters  # type: ignore[attr-defined] - for tests that look at an engine's standing
    return search


def stored(search: WebSearch) -> dict[str, int]:
    """Rows per cache namespace in the search cache's SQLite file."""
    with sqlite3.connect(search.cache.path) as conn:
        return dict(conn.execute("SELECT namespace, count(*) FROM entries GROUP BY namespace").fetchall())


async def test_results_are_normalised_deduplicated_and_ranked(tmp_path):
    fake = FakeDDGS(DDGS9)
    outcome = await make_search(tmp_path, fake).search("river  nile\n")
    assert outcome.status == "ok" and outcome.provider == "ddgs" and outcome.attempts == 1
    assert [(r.rank, r.title, r.url) for r in outcome.results] == [
        (1, "Nile - Wikipedia", "https://en.wikipedia.org/wiki/Nile"),
        (2, "Nile facts", "https://www.example.org/nile?utm_source=x"),
    ]
    assert outcome.results[1].snippet == "Facts about the Nile." and outcome.results[0].backend == "ddgs"
    assert outcome.results[0].retrieved_at.tzinfo is not None
    assert fake.calls == [
        (
            "river nile",
            {"region": "us-en", "safesearch": "moderate", "timelimit": None, "max_results": 10, "backend": "auto"},
        )
    ]
    assert fake.constructed == [{"timeout": 10.0}]


@pytest.mark.parametrize(
    "raw",
    [
        {"title": "T", "url": "https://a.example/x", "snippet": "S", "engine": "brave"},
        {"name": "T", "link": "https://a.example/x", "description": "S", "provider": "brave"},
        {"title": "T", "href": "https://a.example/x", "content": "S", "source": "brave"},
    ],
)
async def test_changing_result_keys_map_to_one_shape(tmp_path, raw):
    outcome = await make_search(tmp_path, FakeDDGS([raw])).search("q")
    result = outcome.results[0]
    assert (result.title, result.url, result.snippet, result.backend) == ("T", "https://a.example/x", "S", "ddgs:brave")


async def test_settings_reach_ddgs(tmp_path):
    fake = FakeDDGS(DDGS9)
    search = make_search(
        tmp_path, fake, ddgs_backends=["duckduckgo", "mojeek"], region="de-de", safe_search="off", timeout_s=0.2
    )
    await search.search("q", max_results=3, time_range="w")
    assert fake.calls[0][1] == {
        "region": "de-de", "safesearch": "off", "timelimit": "w", "max_results": 3, "backend": "duckduckgo,mojeek",
    }  # fmt: skip
    assert fake.constructed == [{"timeout": 0.2}]  # primp takes float seconds: not rounded to 0 (= none)


async def test_rate_limits_and_timeouts_are_retried_with_growing_jittered_backoff(tmp_path):
    engine = ScriptedEngine(RateLimited("429"), EngineTimeout("slow"), RateLimited("429"), DDGS9)
    sleep = Recorder()
    search = make_search(tmp_path, [engine], sleep, max_retries=3, backoff_base_s=1, backoff_max_s=30)
    outcome = await search.search("q")
    assert outcome.status == "ok" and outcome.attempts == 4
    assert len(sleep.waits) == 3
    for attempt, wait in enumerate(sleep.waits):
        ceiling = 2**attempt
        assert ceiling / 2 - 0.05 <= wait <= ceiling  # equal jitter: half fixed, half random
    assert search.limiters["ddgs:scripted"].backed_off_for() == 0  # the success cleared the engine's standing


async def test_exhausted_retries_give_an_explicit_unavailable_outcome(tmp_path):
    engine = ScriptedEngine(*[RateLimited("ddgs rate-limited: duckduckgo HTTP 202 (bot check)")] * 3)
    outcome = await make_search(tmp_path, [engine], max_retries=2).search("q")
    assert outcome.status == "unavailable" and outcome.results == [] and outcome.attempts == 3
    assert outcome.message.startswith("web search unavailable: ddgs rate-limited: duckduckgo HTTP 202 (bot check)")
    assert "gave up after 3 attempts" in outcome.message and "searxng_url" in outcome.message
    assert outcome.to_llm_text() == outcome.message


async def test_ddgs_errors_are_not_retried_and_an_empty_answer_is_not_taken_for_final(tmp_path):
    fake = FakeDDGS(DDGSException("DNSError: no records found"), DDGSException("No results found."))
    search = make_search(tmp_path, fake)
    failed = await search.search("q1")
    assert (failed.status, failed.attempts) == ("unavailable", 1) and "ddgs failed: DNSError" in failed.message
    empty = await search.search("q2")
    assert (empty.status, empty.results, empty.attempts) == ("no_results", [], 1)
    assert empty.message.startswith("ddgs found nothing (no engine answer observed); possibly blocked")
    assert empty.to_llm_text() == f"no results for: q2 ({empty.message})"
    assert search.limiters["ddgs"].backed_off_for() > 0  # and the engine is backed off


@pytest.mark.parametrize("failure", [EmptyAnswer("ddgs found nothing"), Blocked("ddgs blocked: brave HTTP 403")])
async def test_empty_or_blocked_engines_are_asked_once_then_backed_off_and_skipped(tmp_path, failure):
    primary = ScriptedEngine(failure, DDGS9)
    fallback = ScriptedEngine(DDGS9, DDGS9, name="searxng", key="local")
    search = make_search(tmp_path, [primary, fallback], max_retries=3, use_cache=False)
    first = await search.search("q")
    assert first.status == "ok" and first.provider == "searxng" and first.attempts == 2  # no retry of the primary
    assert first.message == f"fallback after: {failure}"
    second = await search.search("q")  # the primary is still backed off, so the fallback answers at once
    assert second.provider == "searxng" and len(primary.calls) == 1 and second.attempts == 1
    assert second.message.startswith("fallback after: ddgs skipped, backed off ") and str(failure) in second.message


async def test_a_backed_off_engine_without_fallback_is_waited_for(tmp_path):
    sleep = Recorder()
    engine = ScriptedEngine(EmptyAnswer("ddgs found nothing"), DDGS9)
    search = make_search(tmp_path, [engine], sleep, backoff_base_s=4, use_cache=False)
    assert (await search.search("q")).status == "no_results"
    assert (await search.search("q")).status == "ok" and len(engine.calls) == 2
    assert sleep.waits and 2 - 0.05 <= sleep.waits[-1] <= 4  # the first back-off, equal jitter on 4 s


async def test_only_empty_answers_make_no_results_any_other_failure_is_unavailable(tmp_path):
    empties = [ScriptedEngine(EmptyAnswer("ddgs found nothing")),
               ScriptedEngine(EmptyAnswer("SearXNG found nothing"), name="searxng", key="x")]  # fmt: skip
    outcome = await make_search(tmp_path, empties).search("q")
    assert outcome.status == "no_results" and outcome.message == "ddgs found nothing; SearXNG found nothing"
    mixed = [ScriptedEngine(RateLimited("ddgs rate-limited")),
             ScriptedEngine(EmptyAnswer("SearXNG found nothing"), name="searxng", key="y")]  # fmt: skip
    outcome = await make_search(tmp_path, mixed, max_retries=0).search("q")
    assert outcome.status == "unavailable"
    assert outcome.message == (
        "web search unavailable: ddgs rate-limited (gave up after 1 attempt); SearXNG found nothing"
    )


async def test_query_guard_collapses_whitespace_and_cuts_at_500_chars(tmp_path, caplog):
    fake = FakeDDGS(DDGS9, DDGS9)
    search = make_search(tmp_path, fake)
    long_query = " ".join(f"word{i:03d}" for i in range(100))  # 799 characters
    with caplog.at_level(logging.WARNING):
        outcome = await search.search(long_query)
    sent = fake.calls[0][0]
    assert outcome.query_truncated and outcome.query == sent
    assert len(sent) <= 500 and long_query.startswith(sent) and sent.endswith("word061")
    assert "cut from 799 to 495 characters" in caplog.text
    await search.search("  a \t b\n\nc  ")
    assert fake.calls[1][0] == "a b c"
    with pytest.raises(UsageError, match="empty"):
        await search.search(" \n ")


async def test_results_are_cached_by_query_and_parameters(tmp_path):
    engine = ScriptedEngine(DDGS9, DDGS9, DDGS9, RateLimited("r"), DDGS9)
    search = make_search(tmp_path, [engine], max_retries=0)
    first = await search.search("nile")
    cached = await search.search("  nile ")
    assert not first.from_cache and cached.from_cache and cached.results == first.results
    assert len(engine.calls) == 1
    await search.search("nile", max_results=5)  # another key
    await search.search("nile", use_cache=False)
    assert len(engine.calls) == 3
    assert (await search.search("other")).status == "unavailable"
    search.limiters["ddgs:scripted"].recovered()  # no waiting out the back-off in a test
    assert (await search.search("other")).status == "ok"  # failures are not cached


async def test_empty_and_fallback_answers_live_only_for_the_short_ttl(tmp_path):
    primary = ScriptedEngine(EmptyAnswer("ddgs found nothing"), EmptyAnswer("ddgs found nothing"), DDGS9, DDGS9)
    fallback = ScriptedEngine(DDGS9, [], name="searxng", key="local")
    search = make_search(tmp_path, [primary, fallback], empty_ttl_s=300)
    assert search.brief_cache.ttl_s == 300 and search.cache.ttl_s == 86400
    fell_back = await search.search("nile")
    assert fell_back.status == "ok" and fell_back.provider == "searxng"
    assert (await search.search("nile")).from_cache  # within 300 s
    assert stored(search) == {"web_search_brief": 1}  # not in the day-long cache
    later = [0.0]
    search.brief_cache._clock = lambda: time.time() + later[0]
    later[0] = 301  # five minutes on
    search.limiters["ddgs:scripted"].recovered()
    again = await search.search("nile")
    assert not again.from_cache and again.status == "no_results"  # asked again: ddgs empty, SearXNG empty
    assert again.message == "fallback after: ddgs found nothing"
    search.limiters["ddgs:scripted"].recovered()
    later[0] = 602
    clean = await search.search("nile")  # the brief entry expired too; ddgs answers and that is kept for a day
    assert not clean.from_cache and clean.provider == "ddgs" and len(primary.calls) == 3
    assert (await search.search("nile")).from_cache and len(primary.calls) == 3
    assert stored(search)["web_search"] == 1


async def test_cache_is_off_with_zero_ttl_or_use_cache_false(tmp_path):
    for settings in ({"cache_ttl_s": 0}, {"use_cache": False}):
        fake = FakeDDGS(DDGS9, DDGS9)
        search = make_search(tmp_path / str(len(settings)), fake, **settings)
        await search.search("q")
        assert not (await search.search("q")).from_cache and len(fake.calls) == 2
    assert make_search(tmp_path, FakeDDGS(), cache_ttl_s=60).brief_cache.ttl_s == 60  # never longer than the cache


def test_rate_limiter_spaces_requests_and_backs_off_for_everyone():
    now = [100.0]
    limiter = RateLimiter(2.0, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(3)] == [0.0, 2.0, 4.0]
    now[0] += 10
    assert limiter.reserve() == 0.0
    limiter.push_back(5.0)
    assert limiter.reserve() == 5.0


def test_back_off_grows_with_each_failure_in_a_row_and_a_success_resets_it():
    now = [0.0]
    limiter = RateLimiter(0, clock=lambda: now[0])
    rng = random.Random(3)
    delays = [limiter.back_off(RateLimited("429"), 1, 8, rng) for _ in range(5)]
    for strike, delay in enumerate(delays):
        ceiling = min(8, 2**strike)
        assert ceiling / 2 <= delay <= ceiling
    assert limiter.backed_off_for() > 0 and str(limiter.backoff_cause) == "429"
    limiter.recovered()
    assert limiter.backed_off_for() == 0 and limiter.backoff_cause is None
    assert limiter.back_off(RateLimited("429"), 1, 8, rng) <= 1  # from the bottom again


async def test_one_limiter_is_shared_by_every_searcher_in_the_process(tmp_path, monkeypatch):
    monkeypatch.setattr(rate_limit, "_shared", {})  # a fresh process-wide registry, restored afterwards
    sleep = Recorder()
    settings = SearchSettings(min_interval_s=30)
    searches = [
        WebSearch(settings, tmp_path, engines=[DdgsEngine(["auto"], 5, ddgs_factory=FakeDDGS(DDGS9))], sleep=sleep)
        for _ in range(2)
    ]
    await searches[0].search("a")
    await searches[1].search("b")
    assert sleep.waits and sleep.waits[-1] > 25  # the second searcher waited for the first one's slot
    assert rate_limit.shared_limiter("ddgs", 30) is rate_limit.shared_limiter("ddgs", 1)


def test_searxng_provider_needs_a_url(tmp_path):
    with pytest.raises(ConfigError, match="searxng_url"):
        WebSearch(SearchSettings(provider="searxng"), tmp_path)


async def test_langchain_tool_returns_text_and_the_outcome(tmp_path):
    engine = ScriptedEngine(DDGS9, RateLimited("ddgs rate-limited: mojeek HTTP 429 (too many requests)"))
    tool = build_web_search_tool(make_search(tmp_path, [engine], max_retries=0))
    assert tool.name == "web_search" and set(tool.args) == {"query", "max_results", "time_range"}
    text = await tool.ainvoke({"query": "nile"})
    assert text.startswith("[1] Nile - Wikipedia\nhttps://en.wikipedia.org/wiki/Nile\nThe Nile is a major river.")
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c1", "name": "web_search", "args": {"query": "other", "max_results": 3}}
    )
    assert isinstance(message, ToolMessage) and message.content.startswith("web search unavailable:")
    assert "mojeek HTTP 429" in message.content
    assert isinstance(message.artifact, SearchOutcome) and message.artifact.status == "unavailable"
    with pytest.raises(ValueError):
        await tool.ainvoke({"query": "x", "max_results": 500})


def test_fake_ddgs_refuses_what_ddgs_never_raises():
    from ddgs.exceptions import RatelimitException

    with pytest.raises(TypeError, match="never raises"):
        FakeDDGS(RatelimitException("202 Ratelimit"))
    with pytest.raises(TypeError, match="never raises"):
        FakeDDGS(KeyError("body"))
