"""The research graph with a scripted model over the real sample index (deterministic, offline)."""

import asyncio
import json
import time

import pytest
from deepsearch.agent import aresearch, research
from deepsearch.agent.events import InformationEvent, QueryEvent
from deepsearch.traces.reader import find_log, load_trajectory

from tests.graph_support import (
    SAMPLE,
    ScriptedModel,
    build_sample_index,
    evidence_count,
    fake_backend,
    judge_grades,
    last_user,
    local_tools,
    section,
    settings_for,
)

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


async def run(tmp_path, index_dir, model, question=QUESTION, tools=None, **agent):
    settings = settings_for(tmp_path, **agent)
    events = []
    result = await aresearch(
        question, settings=settings, backend=fake_backend(model), on_event=events.append,
        tools=tools or local_tools(index_dir, settings),
    )  # fmt: skip
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    return result, events, trajectory


def two_hop_plan(request):
    return {"subgoals": [
        {"question": "Who portrayed Corliss Archer in the film Kiss and Tell?", "depends_on": [], "source": "local"},
        {"question": "What government position did that actress hold?", "depends_on": [1], "source": "local"},
    ]}  # fmt: skip


def judge_by_subgoal(request):
    answer = "Chief of Protocol" if "government" in section(request, "Sub-goal") else "Shirley Temple"
    return {"answer": answer, "answered": True, "decision": "done", "passages": judge_grades(request),
            "rationale": "stated"}  # fmt: skip


async def test_two_hop_question_runs_dependent_subgoals_with_parent_answers(tmp_path, index_dir):
    model = ScriptedModel(planner=two_hop_plan, judge=judge_by_subgoal)
    result, events, trajectory = await run(tmp_path, index_dir, model)
    assert [s["id"] for s in result.subgoals] == ["g1", "g2"]
    assert result.subgoals[1]["depends_on"] == ["g1"]
    assert result.subgoals[0]["answer"] == "Shirley Temple" and result.subgoals[1]["answer"] == "Chief of Protocol"
    # The dependant's prompts carry the parent's answer, so its searches can name the actress.
    g2_judge = [r for role, r in model.calls if role == "judge" and "government" in section(r, "Sub-goal")]
    assert "Shirley Temple" in section(g2_judge[0], "Sub-goal")
    g2_queries = [e.query for e in events if isinstance(e, QueryEvent) and e.subgoal_id == "g2"]
    assert any("Shirley Temple" in q for q in g2_queries)
    assert result.termination == "answered" and result.answer and result.short_answer == "Chief of Protocol"
    assert trajectory.status == "complete" and trajectory.final.termination == "answered"
    assert {c.subgoal.id for c in trajectory.dag_changes} == {"g1", "g2"}


async def test_every_citation_maps_to_stored_evidence(tmp_path, index_dir):
    def answerer(request):
        n = evidence_count(request)
        return {"short_answer": "Chief of Protocol", "claims": [
            {"text": "Shirley Temple was Chief of Protocol.", "citations": [1, 99]},  # 99 does not exist
            {"text": "She starred in Kiss and Tell.", "citations": [n]},
        ]}  # fmt: skip

    result, _, trajectory = await run(tmp_path, index_dir, ScriptedModel(answerer=answerer))
    kept = {e for s in result.subgoals for e in s["evidence_ids"]}
    assert result.citations and [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))
    for c in result.citations:
        assert c.evidence_id in kept and c.source and c.quote
        assert f"[{c.n}]" in result.answer
    assert "[99]" not in result.answer
    assert trajectory.final.citations[0].evidence_id == result.citations[0].evidence_id


async def test_independent_subgoals_run_in_parallel(tmp_path, index_dir):
    settings = settings_for(tmp_path)
    tools = local_tools(index_dir, settings)
    searcher = tools.local["sample"]
    spans = []
    original = searcher.asearch

    async def slow_search(query, k=5, mode=None):
        start = time.monotonic()
        await asyncio.sleep(0.3)
        hits = await original(query, k, mode)
        spans.append((start, time.monotonic()))
        return hits

    searcher.asearch = slow_search
    plan = {"subgoals": [{"question": q, "depends_on": [], "source": "local"} for q in
                         ("Who was Shirley Temple?", "What is Kiss and Tell?", "Who is Janet Waldo?")]}  # fmt: skip
    result, _, _ = await run(tmp_path, index_dir, ScriptedModel(planner=lambda r: plan if "Question" in last_user(r)
                                                                 and "Plan and results" not in last_user(r)
                                                                 else {"changes": []}), tools=tools)  # fmt: skip
    assert len(result.subgoals) == 3 and all(s["stop_reason"] == "answered" for s in result.subgoals)
    most_at_once = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most_at_once == 3  # the three sub-goals searched at the same time


async def test_judge_replan_changes_the_dag(tmp_path, index_dir):
    verdicts = iter([
        {"rationale": "wrong sub-goal", "labels": [], "answer": "unknown", "answered": False, "decision": "replan"},
        {"rationale": "found", "labels": [], "answer": "Shirley Temple", "answered": True, "decision": "done"},
    ])  # fmt: skip

    def planner(request):
        if "Plan and results" in last_user(request):
            return {
                "changes": [
                    {
                        "op": "add",
                        "id": "g9",
                        "question": "Who starred as Corliss Archer in Kiss and Tell?",
                        "depends_on": [],
                        "source": "local",
                        "reason": "g1 asked the wrong thing",
                    }
                ]
            }
        return {"subgoals": [{"question": "Which radio show aired in 1943?", "depends_on": [], "source": "local"}]}

    result, _, trajectory = await run(
        tmp_path, index_dir, ScriptedModel(planner=planner, judge=lambda r: next(verdicts))
    )
    assert [s["id"] for s in result.subgoals] == ["g1", "g9"]
    assert result.subgoals[0]["stop_reason"] == "replan" and result.subgoals[1]["answer"] == "Shirley Temple"
    added = [c for c in trajectory.dag_changes if c.action == "added" and c.subgoal.id == "g9"]
    assert added and added[0].reason == "g1 asked the wrong thing"


async def test_a_confirmed_answer_plateaus_before_the_round_cap(tmp_path, index_dir):
    model = ScriptedModel(
        judge=lambda r: {"answer": "Shirley Temple", "answered": True, "decision": "continue",
                         "next_queries": ["Shirley Temple career"], "passages": judge_grades(r)},
    )  # fmt: skip
    result, events, trajectory = await run(tmp_path, index_dir, model, max_rounds=4)
    assert result.subgoals[0]["stop_reason"] == "plateau" and result.subgoals[0]["rounds"] == 2
    assert result.termination == "plateau"
    info = [e for e in events if isinstance(e, InformationEvent)]
    assert [round(e.gain, 3) for e in info] == [round(info[0].belief, 3), 0.0]  # found, then confirmed
    steps = [s for s in trajectory.steps if s.kind == "information" and s.subgoal]
    assert steps and steps[0].measure == "logprobs" and steps[0].gain == info[0].gain


async def test_an_unanswered_subgoal_never_plateaus_while_budget_remains(tmp_path, index_dir):
    asked = iter(["Corliss Archer radio", "Janet Waldo actress", "Kiss and Tell film"])
    model = ScriptedModel(judge=lambda r: {"answer": "no", "answered": False, "decision": "continue",
                                           "next_queries": [next(asked, "Kiss and Tell film")]})  # fmt: skip
    result, events, _ = await run(tmp_path, index_dir, model, max_rounds=3)
    assert result.subgoals[0]["stop_reason"] in ("budget_rounds", "no_new_results")
    assert result.subgoals[0]["stop_reason"] != "plateau" and result.subgoals[0]["answer"] == "unknown"
    assert all(e.belief == 0 for e in events if isinstance(e, InformationEvent))


async def test_repeated_queries_end_with_loop_detected(tmp_path, index_dir):
    model = ScriptedModel(
        drafter=lambda r: {"answer": f"guess {len(r.messages[-1].content)}"},  # beliefs keep changing: no plateau
        judge={"answer": "unknown", "answered": False, "decision": "continue", "next_queries": [QUESTION.lower()]},
    )  # fmt: skip
    result, _, _ = await run(tmp_path, index_dir, model, max_rounds=5)
    assert result.subgoals[0]["stop_reason"] == "loop_detected" and result.subgoals[0]["rounds"] == 1
    assert result.termination in ("loop_detected", "abstained")


@pytest.mark.parametrize(
    ("limit", "expected"), [({"max_llm_calls": 5}, "budget_llm_calls"), ({"max_searches": 1}, "budget_searches")]
)
async def test_budgets_end_the_run(tmp_path, index_dir, limit, expected):
    asked = iter(["Janet Waldo radio", "Kiss and Tell 1945", "Meet Corliss Archer", "Shirley Temple diplomat",
                  "Chief of Protocol", "Lord High Treasurer", "Corliss Archer comedy"])  # fmt: skip
    model = ScriptedModel(
        drafter=lambda r: {"answer": f"guess {len(model.calls)}"},
        judge=lambda r: {"answer": f"maybe {len(model.calls)}", "answered": False, "decision": "continue",
                         "next_queries": [next(asked)], "passages": judge_grades(r)},
    )  # fmt: skip
    result, _, trajectory = await run(tmp_path, index_dir, model, max_rounds=6, **limit)
    assert result.termination == expected
    assert trajectory.final.termination == expected
    assert any(s.kind == "budget" for s in trajectory.steps) or expected == "budget_llm_calls"


async def test_unsupported_claim_is_revised_once_then_removed(tmp_path, index_dir):
    claims = {"short_answer": "Chief of Protocol", "claims": [
        {"text": "Shirley Temple was Chief of Protocol.", "citations": [1]},
        {"text": "She was also President of France.", "citations": [1]},
    ]}  # fmt: skip

    def verifier(request):
        return {"verdicts": [{"claim": 1, "supported": True, "reason": "stated"},
                             {"claim": 2, "supported": False, "reason": "not in the evidence"}]}  # fmt: skip

    model = ScriptedModel(answerer=claims, reviser=claims, verifier=verifier)
    result, _, trajectory = await run(tmp_path, index_dir, model)
    assert model.roles().count("reviser") == 1 and model.roles().count("verifier") == 2
    feedback = [r for role, r in model.calls if role == "reviser"][0]
    assert "President of France" in section(feedback, "Reviewer feedback on your previous answer")
    assert "Chief of Protocol" in result.answer and "President" not in result.answer
    rejected = [
        s for s in trajectory.steps if s.kind == "judge" and s.target_kind == "claim" and s.decision == "reject"
    ]
    assert len(rejected) == 2  # once before the revision, once after


async def test_nothing_supported_abstains_without_citations(tmp_path, index_dir):
    unsupported = {"short_answer": "Paris", "claims": [{"text": "The answer is Paris.", "citations": []}]}
    result, _, _ = await run(tmp_path, index_dir, ScriptedModel(answerer=unsupported, reviser=unsupported))
    assert result.termination == "abstained" and result.citations == []
    assert result.answer.startswith("I could not verify an answer")
    assert "Paris" not in result.answer  # never an unverified guess


async def test_garbage_model_output_never_crashes_the_run(tmp_path, index_dir):
    model = ScriptedModel(**{role: "I refuse to write JSON." for role in
                             ("intake", "planner", "judge", "drafter", "answerer", "reviser",
                              "verifier")})  # fmt: skip
    result, _, trajectory = await run(tmp_path, index_dir, model, max_rounds=2)
    assert result.termination and trajectory.status == "complete"
    fallbacks = [s for s in trajectory.steps if s.kind == "llm_call" and s.status == "fallback"]
    assert fallbacks  # every failure is on record


def test_sync_python_api(tmp_path, index_dir):
    settings = settings_for(tmp_path)
    result = research(QUESTION, settings=settings, backend=fake_backend(ScriptedModel()),
                      tools=local_tools(index_dir, settings))  # fmt: skip
    assert result.mode == "research" and result.trace_id and result.usage.searches >= 1
    assert json.loads(result.model_dump_json())["citations"][0]["quote"]


async def test_run_is_checkpointed_per_thread(tmp_path, index_dir):
    from deepsearch.agent.graph import compile_graph
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    result, _, _ = await run(tmp_path, index_dir, ScriptedModel())
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "ckpt.sqlite")) as saver:
        state = await compile_graph(saver).aget_state({"configurable": {"thread_id": result.trace_id}})
    assert state.values["answer"] == result.answer and state.values["termination"] == result.termination


@pytest.mark.parametrize("selection", ["rerank", "fusion"])
async def test_each_round_records_its_evidence_decisions(tmp_path, index_dir, selection):
    budget = 1200 if selection == "rerank" else 150  # a small budget: fused order must stop somewhere
    result, _, trajectory = await run(tmp_path, index_dir, ScriptedModel(), selection=selection, evidence_tokens=budget)
    reranks = [s for s in trajectory.steps if s.kind == "rerank"]
    assert reranks and all(s.subgoal == "g1" and s.round == 1 for s in reranks)
    kept = [c for c in reranks[0].candidates if c.kept]
    assert kept and any(not c.kept for c in reranks[0].candidates)
    if selection == "rerank":
        assert "cut" in reranks[0].method and all(c.rationale for c in kept)
        step = reranks[0]
        assert step.cut_index >= 1 and len(step.curve) == len(step.candidates)
        assert step.curve == sorted(step.curve, reverse=True)
        # evidence passages are excerpts verified against the source documents
        corpus = " ".join(json.loads(line)["text"] for line in (SAMPLE / "hotpot_sample.jsonl").open())
        assert all(" ".join(c.quote.split()) in corpus for c in result.citations)
    else:
        assert reranks[0].method == "fusion order within token budget"
    assert result.citations and result.termination == "answered"
