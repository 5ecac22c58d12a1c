"""web_search over injected ddgs behaviour: results, key drift, rate limits, timeouts, retries, cache, tool."""

from __future__ import annotations

import logging
import random

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
from deepsearch.agent.config import SearchSettings
from deepsearch.agent.errors import ConfigError, UsageError
from deepsearch.tools import rate_limit
from deepsearch.tools.ddgs_engine import DdgsEngine
from deepsearch.tools.rate_limit import RateLimiter
from deepsearch.tools.search_models import SearchOutcome
from deepsearch.tools.web_search import WebSearch, build_web_search_tool
from langchain_core.messages import ToolMessage

from tests.fakes.search import FakeDDGS, Recorder

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


def make_search(tmp_path, fake: FakeDDGS, sleep=None, **settings) -> WebSearch:
    s = SearchSettings(**{"min_interval_s": 0, "backoff_base_s": 1, **settings})
    limiters: dict[str, RateLimiter] = {}
    return WebSearch(
        s,
        tmp_path,
        engines=[DdgsEngine(s.ddgs_backends, s.timeout_s, ddgs_factory=fake)],
        limiter_for=lambda key, interval: limiters.setdefault(key, RateLimiter(interval)),
        sleep=sleep or Recorder(),
        rng=random.Random(7),
    )


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
    assert fake.constructed == [{"timeout": 10}]


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
    assert fake.constructed == [{"timeout": 1}]  # ddgs takes whole seconds; never 0 (= no timeout)


async def test_rate_limits_and_timeouts_are_retried_with_growing_jittered_backoff(tmp_path):
    fake = FakeDDGS(RatelimitException("202 Ratelimit"), TimeoutException("timed out"), RatelimitException("r"), DDGS9)
    sleep = Recorder()
    outcome = await make_search(tmp_path, fake, sleep, max_retries=3, backoff_base_s=1, backoff_max_s=30).search("q")
    assert outcome.status == "ok" and outcome.attempts == 4
    assert len(sleep.waits) == 3
    for attempt, wait in enumerate(sleep.waits):
        ceiling = 2**attempt
        assert ceiling / 2 - 0.05 <= wait <= ceiling  # equal jitter: half fixed, half random


async def test_exhausted_retries_give_an_explicit_unavailable_outcome(tmp_path):
    fake = FakeDDGS(*[RatelimitException("202 Ratelimit")] * 3)
    outcome = await make_search(tmp_path, fake, max_retries=2).search("q")
    assert outcome.status == "unavailable" and outcome.results == [] and outcome.attempts == 3
    assert outcome.message.startswith("web search unavailable: ddgs rate-limited: 202 Ratelimit")
    assert "gave up after 3 attempts" in outcome.message and "searxng_url" in outcome.message
    assert outcome.to_llm_text() == outcome.message


async def test_other_ddgs_errors_are_not_retried_and_no_results_is_not_a_failure(tmp_path):
    fake = FakeDDGS(DDGSException("DNSError: no records found"), KeyError("body"), DDGSException("No results found."))
    search = make_search(tmp_path, fake)
    failed = await search.search("q1")
    assert (failed.status, failed.attempts) == ("unavailable", 1) and "DNSError" in failed.message
    broken = await search.search("q3")  # a bug inside ddgs is an outcome too
    assert broken.status == "unavailable" and "ddgs failed unexpectedly: KeyError" in broken.message
    empty = await search.search("q2")
    assert (empty.status, empty.results, empty.message) == ("no_results", [], "")
    assert empty.to_llm_text() == "no results for: q2"


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
    fake = FakeDDGS(DDGS9, DDGS9, DDGS9, RatelimitException("r"), DDGS9)
    search = make_search(tmp_path, fake, max_retries=0)
    first = await search.search("nile")
    cached = await search.search("  nile ")
    assert not first.from_cache and cached.from_cache and cached.results == first.results
    assert len(fake.calls) == 1
    await search.search("nile", max_results=5)  # another key
    await search.search("nile", use_cache=False)
    assert len(fake.calls) == 3
    assert (await search.search("other")).status == "unavailable"
    assert (await search.search("other")).status == "ok"  # failures are not cached


async def test_cache_is_off_with_zero_ttl_or_use_cache_false(tmp_path):
    for settings in ({"cache_ttl_s": 0}, {"use_cache": False}):
        fake = FakeDDGS(DDGS9, DDGS9)
        search = make_search(tmp_path / str(len(settings)), fake, **settings)
        await search.search("q")
        assert not (await search.search("q")).from_cache and len(fake.calls) == 2


def test_rate_limiter_spaces_requests_and_backs_off_for_everyone():
    now = [100.0]
    limiter = RateLimiter(2.0, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(3)] == [0.0, 2.0, 4.0]
    now[0] += 10
    assert limiter.reserve() == 0.0
    limiter.push_back(5.0)
    assert limiter.reserve() == 5.0


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
    tool = build_web_search_tool(make_search(tmp_path, FakeDDGS(DDGS9, RatelimitException("r")), max_retries=0))
    assert tool.name == "web_search" and set(tool.args) == {"query", "max_results", "time_range"}
    text = await tool.ainvoke({"query": "nile"})
    assert text.startswith("[1] Nile - Wikipedia\nhttps://en.wikipedia.org/wiki/Nile\nThe Nile is a major river.")
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c1", "name": "web_search", "args": {"query": "other", "max_results": 3}}
    )
    assert isinstance(message, ToolMessage) and message.content.startswith("web search unavailable:")
    assert isinstance(message.artifact, SearchOutcome) and message.artifact.status == "unavailable"
    with pytest.raises(ValueError):
        await tool.ainvoke({"query": "x", "max_results": 500})
