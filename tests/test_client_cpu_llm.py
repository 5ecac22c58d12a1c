"""The client's CPU at high concurrency: how the OpenAI backend posts and parses, and the bench's server process."""

import asyncio
import json
import os

from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm import ChatMessage, LLMRequest
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from deepsearch.agent.llm.openai_wire import parse_completion
from deepsearch.agent.llm.structured import schema_for
from deepsearch.agent.llm.types import TokenLogprob, TopLogprob
from pydantic import BaseModel

from tests.fakes.openai_server import FakeOpenAIServer, FakeOpenAIServerProcess


def ask(**kw) -> LLMRequest:
    return LLMRequest(messages=[ChatMessage(role="user", content="hi")], **kw)


def backend_for(url: str, concurrency: int = 8) -> OpenAIBackend:
    return OpenAIBackend(LLMSettings(base_url=[url], timeout_s=5, concurrency=concurrency, server_kind="vllm",
                                     model="fake-model"))  # fmt: skip


async def test_each_request_in_flight_has_its_own_single_connection_client_reused_afterwards():
    with FakeOpenAIServer(latency_s=0.05) as server:
        backend = backend_for(server.base_url, concurrency=8)
        await asyncio.gather(*[backend.complete(ask()) for _ in range(20)])
        ep = backend.endpoints[0]
        assert server.max_in_flight == 8  # the backend's limit, reached
        assert len(ep._all) == 8 and len(ep._idle) == 8  # one client per request in flight, all back when done
        for client in ep._all:
            pool = client._client._transport._pool
            assert pool._max_connections == 1 and len(pool.connections) <= 1
        before = list(ep._all)
        for _ in range(3):
            await backend.complete(ask())
        assert ep._all == before  # sequential calls reuse an idle client (and its keep-alive connection)
        await backend.aclose()
        assert ep._all == [] and ep._idle == []


async def test_request_body_is_the_plain_payload_with_vllm_structured_outputs_at_the_top_level():
    with FakeOpenAIServer() as server:
        backend = backend_for(server.base_url)
        await backend.complete(ask(json_schema={"type": "object"}, schema_name="X", max_tokens=7))
        body, headers = server.requests[-1], server.headers[-1]
        assert body["structured_outputs"] == {"json": {"type": "object"}} and "extra_body" not in body
        assert body["model"] == "fake-model" and body["max_tokens"] == 7
        assert headers["content-type"] == "application/json"
        await backend.aclose()


async def test_logprobs_and_reasoning_come_back_typed_from_the_wire():
    with FakeOpenAIServer(reasoning="thinking") as server:
        backend = backend_for(server.base_url)
        r = await backend.complete(ask(logprobs=True, top_logprobs=3))
        assert r.reasoning == "thinking" and r.logprobs and r.usage.completion_tokens == len(r.logprobs)
        assert all(isinstance(t, TokenLogprob) and len(t.top) == 3 for t in r.logprobs)
        assert isinstance(r.logprobs[0].top[0], TopLogprob) and r.logprob_summary()["tokens"] == len(r.logprobs)
        await backend.aclose()


def test_wire_parse_tolerates_nulls_and_extra_fields():
    body = {"id": "x", "object": "chat.completion", "system_fingerprint": None, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": []},
                         "logprobs": {"content": [{"token": "a", "logprob": -0.5, "bytes": [97],
                                                   "top_logprobs": None}]}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": None, "total_tokens": 3}}  # fmt: skip
    parsed = parse_completion(json.dumps(body).encode())
    choice = parsed.choices[0]
    assert choice.message.content is None and choice.logprobs.content[0].top == []
    assert parsed.usage.completion_tokens is None and parsed.model == "m"
    # The Python constructor keeps its field name.
    assert TokenLogprob(token="a", logprob=-1.0, top=[TopLogprob(token="a", logprob=-1.0)]).top[0].token == "a"


def test_schema_is_built_once_per_model_class():
    class Answer(BaseModel):
        text: str

    assert schema_for(Answer) is schema_for(Answer)


def test_fake_server_in_a_child_process_serves_and_counts_its_requests():
    async def call(url: str) -> str:
        backend = backend_for(url)
        try:
            return (await backend.complete(ask())).text
        finally:
            await backend.aclose()

    with FakeOpenAIServerProcess(latency_s=0.0) as server:
        assert server.pid != os.getpid() and server.base_url.startswith("http://127.0.0.1:")
        assert asyncio.run(call(server.base_url)).startswith("fake answer")
        assert asyncio.run(call(server.base_url)).startswith("fake answer")
    assert server.requests == 2


def test_tls_context_is_built_once_per_process_and_shared_by_every_client():
    from deepsearch.agent.llm.openai_backend import _tls_context

    backend = backend_for("https://example.invalid/v1")
    ep = backend.endpoints[0]
    with ep.client() as a, ep.client() as b:
        assert a is not b
        contexts = {id(c._client._transport._pool._ssl_context) for c in (a, b)}
    assert contexts == {id(_tls_context())}
    asyncio.run(backend.aclose())


def test_fake_server_process_reports_its_own_cpu():
    with FakeOpenAIServerProcess() as server:
        cpu = server.cpu_seconds()
        assert cpu is None or cpu >= 0.0
