"""Pointwise (criteria, samples, spread), yes/no (logprobs from the fake OpenAI server) and large-pool modes."""

import json
import math

from deepsearch.agent.config import LLMSettings, RerankSettings
from deepsearch.agent.llm import LLMClient, LLMResponse
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from deepsearch.agent.llm.types import TokenLogprob, TopLogprob
from deepsearch.tools.rerank import rerank
from deepsearch.tools.rerank.pool import batches
from deepsearch.tools.rerank.yesno import yes_probability

from tests.fakes.openai_server import FakeOpenAIServer, requested_schema
from tests.fakes.rerank_oracle import Oracle
from tests.test_rerank_listwise import pool

QUERY = "Who portrayed Corliss Archer?"


async def test_pointwise_writes_criteria_once_and_grades_each_candidate():
    oracle = Oracle()
    backend = FakeBackend(oracle)
    out = await rerank(LLMClient(backend), QUERY, pool(6, {2}), RerankSettings(mode="pointwise"))
    assert oracle.calls["Criteria"] == 1 and oracle.calls["Grade"] == 6
    assert out.ranked[0].id == "c2" and out.ranked[0].score == 0.8 and out.ranked[0].rationale == "names the actor"
    assert out.criteria == ["must contain: who played the role", "only topical: the film's plot"]
    grade_prompt = next(r for r in backend.requests if r.schema_name == "Grade").messages[-1].content
    assert "who played the role" in grade_prompt and 'lexical="' in grade_prompt
    assert [p.candidate_id for p in out.evidence] == ["c2"]


async def test_pointwise_samples_are_averaged_with_their_spread():
    def script(request):
        if request.schema_name == "Criteria":
            return json.dumps({"must_contain": ["x"], "only_topical": []})
        if request.schema_name == "Grade":
            assert request.temperature == 0.7
            return json.dumps({"rationale": "r", "score": 4 + 2 * (request.seed % 3)})  # seeds 5,6,7 → 8,4,6
        return json.dumps({"contribution": "c", "evidence": ""})

    settings = RerankSettings(mode="pointwise", samples=3, seed=5)
    out = await rerank(LLMClient(FakeBackend(script)), QUERY, pool(2, set()), settings)
    top = out.ranked[0]
    assert top.samples == [8.0, 4.0, 6.0] and top.score == 0.6 and top.spread == 4.0 and top.judgements == 3


def yes_no_responder(body):
    prompt = body["messages"][-1]["content"]
    schema = requested_schema(body)
    if schema and "relevant" in schema.get("properties", {}):
        return json.dumps({"relevant": "yes" if "Shirley Temple" in prompt else "no"})
    return json.dumps({"contribution": "names the actor", "evidence": "Shirley Temple played Corliss Archer."})


async def test_yesno_reads_the_yes_logprob_from_the_openai_compatible_server():
    with FakeOpenAIServer(responder=yes_no_responder) as server:
        backend = OpenAIBackend(LLMSettings(base_url=[server.base_url]))
        try:
            out = await rerank(LLMClient(backend), QUERY, pool(4, {1}), RerankSettings(mode="yesno"))
        finally:
            await backend.aclose()
        verdicts = [r for r in server.requests if "relevant" in json.dumps(requested_schema(r) or {})]
    assert all(r["logprobs"] and r["top_logprobs"] == 5 for r in verdicts) and len(verdicts) == 4
    # The fake server's token logprob at position i is -0.05 * (i % 3 + 1); `yes"` is token 6 of {"relevant": "yes"}.
    p = math.exp(-0.05 * (6 % 3 + 1))
    assert out.ranked[0].id == "c1" and out.ranked[0].score == round(p, 4)
    assert {c.score for c in out.ranked[1:]} == {round(1 - p, 4)}
    assert out.mode == "yesno" and out.evidence[0].verification == "verified"


def test_yes_probability_normalises_yes_against_no():
    def response(top):
        tokens = [TokenLogprob(token='{"relevant": "', logprob=0.0)]
        tokens.append(
            TokenLogprob(
                token="no", logprob=math.log(0.6), top=[TopLogprob(token=t, logprob=math.log(p)) for t, p in top]
            )
        )
        return LLMResponse(text="", raw_text="", logprobs=tokens)

    assert abs(yes_probability(response([("no", 0.6), (" Yes", 0.2), ("maybe", 0.1)])) - 0.25) < 1e-9
    assert abs(yes_probability(response([("no", 0.6), ("maybe", 0.1)])) - 0.4) < 1e-9
    assert yes_probability(LLMResponse(text="", raw_text="", logprobs=None)) is None


async def test_yesno_uses_the_chosen_token_alone_or_the_bare_verdict_and_says_so():
    out = await rerank(LLMClient(FakeBackend(Oracle())), QUERY, pool(3, {0}), RerankSettings(mode="yesno"))
    # FakeBackend gives each word logprob -0.1 and no alternatives: P(yes) is the chosen token's own.
    assert out.ranked[0].id == "c0" and out.ranked[0].score == round(math.exp(-0.1), 4)
    assert out.ranked[1].score == round(1 - math.exp(-0.1), 4)

    oracle = Oracle()

    def bare(request):
        text = oracle(request)
        return LLMResponse(text=text, raw_text=text, logprobs=None)

    out = await rerank(LLMClient(FakeBackend(bare)), QUERY, pool(3, {0}), RerankSettings(mode="yesno"))
    assert [c.score for c in out.ranked] == [1.0, 0.0, 0.0]
    assert sum("no logprobs at the verdict" in n for n in out.notes) == 3


def test_pool_batches_are_balanced_seeded_and_cover_everyone():
    import random

    ids = [f"c{i}" for i in range(23)]
    first = batches(ids, 10, random.Random(3))
    assert sorted(x for b in first for x in b) == sorted(ids) and [len(b) for b in first] == [8, 8, 7]
    assert first == batches(ids, 10, random.Random(3)) and first != batches(ids, 10, random.Random(4))


async def test_pool_mode_rejudges_the_top_until_it_settles_and_is_deterministic():
    settings = RerankSettings(mode="pool", batch_size=5, batch_appearances=2, max_keep=3, max_rounds=5)

    async def run(seed):
        backend = FakeBackend(Oracle())
        out = await rerank(LLMClient(backend), QUERY, pool(20, {4, 17}), settings, seed=seed)
        return out, [r.messages[-1].content for r in backend.requests if r.schema_name == "ListwiseReply"]

    out, prompts = await run(7)
    assert {c.id for c in out.ranked[:2]} == {"c4", "c17"}
    # round 1: 20 candidates x 2 appearances in batches of 5 = 8 prompts; later rounds only the top 6 (2 batches)
    assert 2 <= out.rounds < settings.max_rounds and len(prompts) == 8 + 2 * (out.rounds - 1)
    assert next(c for c in out.ranked if c.id == "c4").judgements >= 3
    again, prompts_again = await run(7)
    assert prompts_again == prompts and again.ranked == out.ranked
    _, other_prompts = await run(8)
    assert other_prompts != prompts


async def test_on_step_counts_concurrent_calls_in_every_mode():
    async def _labels(settings, n):
        labels: list[str] = []
        await rerank(LLMClient(FakeBackend(Oracle())), QUERY, pool(n, {1}), settings, on_step=labels.append)
        return [x for x in labels if not x.startswith("evidence")]

    grades = [f"rerank grade {k}/6" for k in range(1, 7)]
    assert await _labels(RerankSettings(mode="pointwise", samples=2), 3) == ["rerank criteria", *grades]
    assert await _labels(RerankSettings(mode="yesno"), 3) == [f"rerank verdict {k}/3" for k in range(1, 4)]
    pooled = await _labels(RerankSettings(mode="pool", batch_size=5, batch_appearances=2, max_keep=3), 20)
    assert pooled[:8] == [f"rerank round 1 batch {k}/8" for k in range(1, 9)]
    assert pooled[8:10] == ["rerank round 2 batch 1/2", "rerank round 2 batch 2/2"]
