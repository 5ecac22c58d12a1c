import asyncio
import json
import re
from typing import Literal

import pytest
from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm import ChatMessage, LLMClient, LLMRequest, LLMServerError, LLMUnavailable, generate_structured
from deepsearch.agent.llm.llamacpp_backend import FREE_STRING_MAX_CHARS, grammar_schema
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from pydantic import BaseModel, Field

from tests.fakes.openai_server import FakeOpenAIServer


class City(BaseModel):
    name: str
    population: int


def backend_for(*urls: str, **overrides) -> OpenAIBackend:
    settings = LLMSettings(base_url=list(urls), timeout_s=overrides.pop("timeout_s", 5), **overrides)
    return OpenAIBackend(settings, backoff_base_s=0.01, backoff_cap_s=0.05)


def ask(text: str = "hi", **kw) -> LLMRequest:
    return LLMRequest(messages=[ChatMessage(role="user", content=text)], **kw)


async def test_discovers_model_and_vllm_kind_then_sends_structured_outputs(fake_server):
    backend = backend_for(fake_server.base_url)
    outcome = await generate_structured(
        LLMClient(backend),
        [ChatMessage(role="user", content="x")],
        City,
        role="t",
        fallback=City(name="", population=0),
    )
    assert backend.model == "fake-model" and backend.server_kind == "vllm"
    body = fake_server.requests[-1]
    assert body["structured_outputs"]["json"]["title"] == "City" and "response_format" not in body
    assert body["max_tokens"] == 512 and "max_completion_tokens" not in body
    assert outcome.status == "ok" and outcome.value.name == "fake"
    await backend.aclose()


@pytest.mark.parametrize(
    ("owned_by", "expected"),
    [("llamacpp", {"type": "json_object"}), ("openai", {"type": "json_schema"})],
)
async def test_schema_request_shape_follows_server_kind(owned_by, expected):
    with FakeOpenAIServer(owned_by=owned_by) as server:
        backend = backend_for(server.base_url)
        await backend.complete(ask(json_schema=City.model_json_schema(), schema_name="City"))
        fmt = server.requests[-1]["response_format"]
        assert fmt["type"] == expected["type"]
        schema = fmt["schema"] if owned_by == "llamacpp" else fmt["json_schema"]["schema"]
        assert schema["title"] == "City"
        await backend.aclose()


async def test_logprobs_reasoning_and_inline_think():
    def responder(body):
        return {"content": "<think>inline</think>Paris"}

    with FakeOpenAIServer(responder=responder, reasoning="server-side reasoning") as server:
        backend = backend_for(server.base_url)
        r = await backend.complete(ask(logprobs=True, top_logprobs=3))
        assert r.text == "Paris" and r.raw_text == "<think>inline</think>Paris"
        assert r.reasoning == "server-side reasoning"
        assert r.logprobs and len(r.logprobs[0].top) == 3
        summary = r.logprob_summary()
        assert summary["tokens"] == len(r.logprobs) and summary["mean_logprob"] < 0 and summary["mean_entropy"] > 0
        assert server.requests[-1]["top_logprobs"] == 3
        await backend.aclose()


@pytest.mark.parametrize("fault", ["429", "500", "reset", "timeout"])
async def test_retries_transient_faults_then_succeeds(fault):
    with FakeOpenAIServer(faults={1: fault, 2: fault}, timeout_sleep_s=1.5) as server:
        backend = backend_for(server.base_url, timeout_s=0.5, model="fake-model", server_kind="vllm")
        r = await backend.complete(ask())
        assert r.retries == 2 and r.text.startswith("fake answer")
        assert server.injected == [fault, fault]
        await backend.aclose()


async def test_gives_up_after_max_retries_with_status():
    with FakeOpenAIServer(faults={i: "500" for i in range(1, 10)}) as server:
        backend = backend_for(server.base_url, max_retries=2, model="fake-model", server_kind="vllm")
        with pytest.raises(LLMServerError, match="answered 500"):
            await backend.complete(ask())
        assert len(server.requests) == 3
        await backend.aclose()


async def test_unreachable_endpoint_names_the_url():
    backend = backend_for("http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(LLMUnavailable) as e:
        await backend.complete(ask())
    assert "http://127.0.0.1:9/v1" in str(e.value) and "doctor" in str(e.value)
    assert e.value.exit_code == 2
    await backend.aclose()


async def test_client_error_is_not_retried():
    with FakeOpenAIServer(api_key="right") as server:
        backend = backend_for(server.base_url, api_key="wrong", model="fake-model", server_kind="vllm")
        with pytest.raises(LLMServerError, match="401"):
            await backend.complete(ask())
        assert len(server.requests) == 0  # rejected before the completion was served
        await backend.aclose()


async def test_api_key_sent_as_bearer():
    with FakeOpenAIServer(api_key="sk-test") as server:
        backend = backend_for(server.base_url, api_key="sk-test")
        await backend.complete(ask())
        assert server.headers[-1]["authorization"] == "Bearer sk-test"
        await backend.aclose()


async def test_round_robin_over_endpoints():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        backend = backend_for(a.base_url, b.base_url, model="fake-model", server_kind="vllm")
        for _ in range(4):
            await backend.complete(ask())
        assert len(a.requests) == 2 and len(b.requests) == 2
        await backend.aclose()


async def test_failover_to_the_next_endpoint():
    with FakeOpenAIServer() as live:
        backend = backend_for("http://127.0.0.1:9/v1", live.base_url, model="fake-model", server_kind="vllm")
        results = [await backend.complete(ask()) for _ in range(3)]
        assert all(r.endpoint == live.base_url for r in results)
        await backend.aclose()


async def test_concurrency_limit_is_shared_by_all_callers():
    with FakeOpenAIServer(latency_s=0.05) as server:
        backend = backend_for(server.base_url, concurrency=3, model="fake-model", server_kind="vllm")
        clients = [LLMClient(backend) for _ in range(4)]  # e.g. four runs in one batch
        await asyncio.gather(*(c.complete(ask()) for c in clients for _ in range(4)))
        assert server.max_in_flight == 3 and len(server.requests) == 16
        assert all(c.usage.llm_calls == 4 for c in clients)
        await backend.aclose()


async def test_malformed_response_body_is_retried_or_reported():
    with FakeOpenAIServer(faults={1: "malformed_body", 2: "malformed_body", 3: "malformed_body"}) as server:
        backend = backend_for(server.base_url, max_retries=1, model="fake-model", server_kind="vllm")
        with pytest.raises(LLMServerError, match="malformed response body"):
            await backend.complete(ask())
        assert len(server.requests) == 2
        await backend.aclose()


async def test_garbage_content_goes_through_the_structured_fallback():
    with FakeOpenAIServer(faults={1: "garbage", 2: "garbage"}) as server:
        backend = backend_for(server.base_url, model="fake-model", server_kind="vllm")
        fallback = City(name="?", population=0)
        outcome = await generate_structured(
            LLMClient(backend), [ChatMessage(role="user", content="x")], City, role="t", fallback=fallback
        )
        assert outcome.status == "fallback" and outcome.value == fallback
        await backend.aclose()


def test_fake_server_streams_and_truncates(fake_server):
    import openai

    client = openai.OpenAI(base_url=fake_server.base_url, api_key="x")
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("fake answer to: a b")
    fake_server.faults[2] = "truncated_stream"
    chunks = list(
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}], stream=True)
    )
    assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)
    assert json.loads(json.dumps(fake_server.requests[-1]))["stream"] is True


class Listed(BaseModel):
    name: str
    tags: list[str]
    code: str = Field(max_length=8, min_length=2)
    unit: Literal["m", "km"]


@pytest.mark.parametrize("owned_by", ["me", "llamacpp", "vllm"])
async def test_llama_cpp_servers_decode_like_the_embedded_backend(owned_by):
    """llama-cpp-python's server would apply repeat_penalty 1.1 and an unbounded, newline-admitting string rule."""
    with FakeOpenAIServer(owned_by=owned_by) as server:
        backend = backend_for(server.base_url)
        await backend.complete(ask(json_schema=Listed.model_json_schema(), schema_name="Listed"))
        await backend.complete(ask())  # free text too: the same sampling as in-process
        structured, plain = server.requests[-2:]
        await backend.aclose()
    if owned_by == "vllm":
        assert "repeat_penalty" not in structured and "pattern" not in json.dumps(structured)
        return
    assert structured["repeat_penalty"] == plain["repeat_penalty"] == 1.0
    props = structured["response_format"]["schema"]["properties"]
    assert props["name"]["pattern"].endswith(f"{{0,{FREE_STRING_MAX_CHARS}}}$")
    assert props["tags"]["items"]["pattern"].endswith(f"{{0,{FREE_STRING_MAX_CHARS}}}$")
    assert props["code"]["pattern"].endswith("{2,8}$")
    assert "pattern" not in props["unit"]  # an enum is bounded already


def test_the_string_pattern_is_json_string_content():
    content = re.compile(grammar_schema({"type": "string", "maxLength": 12})["pattern"])
    for ok in ("Tokyo", "São Paulo", 'say \\"hi\\"', "a\\nb", "\\u00e9t\\u00e9", ""):
        assert content.fullmatch(ok), ok
    for bad in ("two\nlines", "tab\there", 'a"b', "trailing\\", "thirteen char"):
        assert not content.fullmatch(bad), bad


def test_llama_cpp_converts_the_bounded_schemas_without_falling_back():
    """On a converter error llama-cpp-python silently drops to schemaless JSON (llama_chat_format
    `_grammar_for_json_schema(fallback_to_json=True)`), so every pattern we send must convert."""
    gbnf = pytest.importorskip("llama_cpp.llama_grammar").json_schema_to_gbnf
    from deepsearch.tools.rerank.evidence import EvidenceReply
    from deepsearch.tools.rerank.listwise import ListwiseReply

    for model in (Listed, EvidenceReply, ListwiseReply):
        grammar = gbnf(json.dumps(grammar_schema(model.model_json_schema())))
        assert r'[^"\\\x7F\x00-\x1F]' in grammar and "char ::=" not in grammar, model.__name__
