"""Endpoint balancing: least outstanding requests, turns on ties, failing endpoints cool down and come back."""

from __future__ import annotations

import asyncio

import pytest
from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm import ChatMessage, LLMRequest
from deepsearch.agent.llm.endpoints import EndpointPool
from deepsearch.agent.llm.openai_backend import OpenAIBackend

from tests.fakes.openai_server import FakeOpenAIServer

DEAD = "http://127.0.0.1:9/v1"  # the discard port: connection refused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_idle_pool_takes_turns():
    pool = EndpointPool(["a", "b", "c"])
    picks = []
    for _ in range(6):
        i = pool.acquire()
        picks.append(pool.endpoints[i])
        pool.release(i, ok=True)
    assert picks == ["a", "b", "c", "a", "b", "c"]


def test_busy_endpoint_gets_fewer_requests():
    pool = EndpointPool(["a", "b"])
    held = [pool.acquire() for _ in range(3)]  # a, b, a: a has two outstanding
    assert [pool.endpoints[i] for i in held] == ["a", "b", "a"]
    pool.release(held[1], ok=True)  # b is free again, a still has two
    assert pool.endpoints[pool.acquire()] == "b"
    assert pool.endpoints[pool.acquire()] == "b"  # b has 1, a has 2
    assert [s.outstanding for s in pool.states] == [2, 2]


def test_failing_endpoint_sits_out_a_doubling_cooldown_then_returns():
    clock = Clock()
    pool = EndpointPool(["a", "b"], cooldown_s=5, max_cooldown_s=8, clock=clock)
    pool.release(pool.acquire(), ok=False)  # a fails: out for 5 s
    assert pool.states[0].down_until == clock.now + 5 and pool.by_preference() == ["b", "a"]
    assert {pool.endpoints[i] for i in [pool.acquire() for _ in range(4)]} == {"b"}
    clock.now += 5
    a = pool.acquire()
    assert pool.endpoints[a] == "a"  # back in rotation: it gets the next request (fewest outstanding)
    pool.release(a, ok=False)  # failed again: 10 s, capped at 8
    assert pool.states[0].down_until == pytest.approx(clock.now + 8)
    clock.now += 8
    a = pool.acquire()
    pool.release(a, ok=True)  # one success restores it
    assert pool.states[0].failures == 0 and pool.states[0].down_until == 0


def test_no_verdict_keeps_the_endpoint_in_rotation():
    pool = EndpointPool(["a", "b"])
    pool.release(pool.acquire(), ok=None)
    assert pool.states[0].down_until == 0 and pool.states[0].outstanding == 0


def test_all_down_tries_the_one_back_first():
    clock = Clock()
    pool = EndpointPool(["a", "b"], cooldown_s=5, clock=clock)
    a, b = pool.acquire(), pool.acquire()
    pool.release(b, ok=False)
    clock.now += 1
    pool.release(a, ok=False)  # a is back at 106, b at 105
    assert pool.by_preference() == ["b", "a"]
    assert pool.endpoints[pool.acquire()] == "b"


def ask() -> LLMRequest:
    return LLMRequest(messages=[ChatMessage(role="user", content="hi")])


def backend_for(*urls: str, **overrides) -> OpenAIBackend:
    settings = LLMSettings(base_url=list(urls), timeout_s=5, model="fake-model", server_kind="vllm", **overrides)
    return OpenAIBackend(settings, backoff_base_s=0.01, backoff_cap_s=0.02)


async def test_backend_keeps_a_failing_replica_out_of_rotation():
    with FakeOpenAIServer(faults={1: "500"}) as flaky, FakeOpenAIServer() as steady:
        backend = backend_for(flaky.base_url, steady.base_url, endpoint_cooldown_s=60)
        results = [await backend.complete(ask()) for _ in range(6)]
        assert len(flaky.requests) == 1  # its one failure took it out; the retry and the rest went elsewhere
        assert {r.endpoint for r in results} == {steady.base_url} and len(steady.requests) == 6
        await backend.aclose()


async def test_backend_spreads_concurrent_requests_by_load():
    with FakeOpenAIServer(latency_s=0.05) as a, FakeOpenAIServer(latency_s=0.05) as b:
        backend = backend_for(a.base_url, b.base_url, concurrency=8)
        await asyncio.gather(*(backend.complete(ask()) for _ in range(16)))
        assert len(a.requests) == len(b.requests) == 8 and a.max_in_flight == b.max_in_flight == 4
        await backend.aclose()


async def test_model_listing_skips_a_dead_first_endpoint():
    with FakeOpenAIServer() as live:
        backend = OpenAIBackend(LLMSettings(base_url=[DEAD, live.base_url], timeout_s=5))
        models = await backend.list_models()
        assert models[0]["id"] == "fake-model"
        result = await backend.complete(ask())  # discovery through the live endpoint too
        assert result.endpoint == live.base_url and backend.model == "fake-model"
        await backend.aclose()
