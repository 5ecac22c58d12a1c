from deepsearch.agent.llm import ChatMessage, LLMClient, generate_structured
from deepsearch.agent.llm.fake import FakeBackend
from pydantic import BaseModel


class Plan(BaseModel):
    steps: list[str]
    confident: bool


MESSAGES = [ChatMessage(role="user", content="plan it")]
FALLBACK = Plan(steps=["fallback"], confident=False)


async def run(script):
    backend = FakeBackend(script)
    client = LLMClient(backend)
    outcome = await generate_structured(client, MESSAGES, Plan, role="planner", fallback=FALLBACK)
    return outcome, backend, client


async def test_clean_output_is_ok_and_schema_is_sent():
    outcome, backend, client = await run(['{"steps": ["a", "b"], "confident": true}'])
    assert outcome.status == "ok" and outcome.value.steps == ["a", "b"] and not outcome.failures
    request = backend.requests[0]
    assert request.json_schema["properties"]["steps"]["type"] == "array"
    assert request.role == "planner" and '"confident"' in request.messages[-1].content
    assert client.usage.llm_calls == 1


async def test_think_block_and_trailing_comma_are_repaired():
    outcome, _, _ = await run(['<think>let me see</think>{"steps": ["a"], "confident": false,}'])
    assert outcome.status == "repaired" and outcome.value.steps == ["a"]
    assert [f.kind for f in outcome.failures] == ["repaired"]


async def test_schema_error_is_retried_with_the_validation_error_shown():
    outcome, backend, client = await run(['{"steps": "not a list"}', '{"steps": ["x"], "confident": true}'])
    assert outcome.status == "retried" and outcome.value.steps == ["x"]
    retry = backend.requests[1].messages
    assert retry[-2].role == "assistant" and retry[-2].content == '{"steps": "not a list"}'
    assert "steps" in retry[-1].content and "confident" in retry[-1].content  # the validation errors
    assert outcome.failures[0].kind == "schema" and client.usage.llm_calls == 2


async def test_garbage_twice_gives_the_typed_fallback_never_an_exception():
    outcome, _, _ = await run(["I think the plan is good.", "still prose"])
    assert outcome.status == "fallback" and outcome.value == FALLBACK
    assert [f.kind for f in outcome.failures] == ["no_json", "no_json"]
    assert len(outcome.responses) == 2


async def test_fallback_factory_is_called_only_when_needed():
    calls = []

    def make():
        calls.append(1)
        return FALLBACK

    client = LLMClient(FakeBackend(['{"steps": [], "confident": true}']))
    outcome = await generate_structured(client, MESSAGES, Plan, role="planner", fallback=make)
    assert outcome.status == "ok" and calls == []
