"""The research loop's rules, each with a test that failed before the loop became a subgraph with one
stopping module: round-2 evidence reaches the judge, a fetch cap stops nothing, every LLM failure still
ends in an answer or abstention, the better earlier answer survives, budgets hold inside a round,
abstentions show passages and never guesses, revisions keep verified claims, and a crash between rounds
resumes from the last checkpoint."""

from __future__ import annotations

import re

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.events import StepEvent
from deepsearch.agent.llm.errors import LLMServerError
from deepsearch.traces.reader import find_log, load_trajectory

from tests.graph_support import (
    ScriptedModel,
    build_sample_index,
    fake_backend,
    judge_grades,
    last_user,
    local_tools,
    section,
    settings_for,
)

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
EVIDENCE = re.compile(r"<evidence [^>]*>\n(.*?)\n</evidence>", re.DOTALL)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


async def run(tmp_path, index_dir, model, question=QUESTION, thread_id=None, resume=False, backend=None,
              history=None, **agent):  # fmt: skip
    settings = settings_for(tmp_path, **agent)
    events = []
    result = await aresearch(
        question, settings=settings, backend=backend or fake_backend(model), on_event=events.append,
        tools=local_tools(index_dir, settings), thread_id=thread_id, resume=resume, history=history,
    )  # fmt: skip
    return result, events, load_trajectory(find_log(settings.traces.dir, result.trace_id))


def grounded_judge(request):
    """Answers only from the evidence and passages it is shown (the sample corpus's facts)."""
    shown = section(request, "Evidence") + section(request, "New passages")
    if "government" in section(request, "Sub-goal") or "government" in section(request, "Question") and section(
            request, "Sub-goal") == "(the question itself)":  # fmt: skip
        found = "Chief of Protocol" if "Chief of Protocol" in shown else None
    else:
        found = "Shirley Temple" if "Shirley Temple" in shown else None
    return {"answer": found or "unknown", "answered": bool(found), "decision": "done" if found else "continue",
            "next_queries": [], "passages": judge_grades(request), "rationale": ""}  # fmt: skip


def unanswered(*next_queries: str):
    """Not answered yet; the passages graded (so evidence is kept); round n asks for next_queries[n-1]."""
    asked = iter(next_queries or ["Janet Waldo radio actress"])
    return lambda r: {"answer": "unknown", "answered": False, "decision": "continue",
                      "next_queries": [next(asked, "Janet Waldo")], "passages": judge_grades(r)}  # fmt: skip


def two_hop_plan(request):
    return {"subgoals": [
        {"question": "Who portrayed Corliss Archer in the film Kiss and Tell?", "depends_on": [], "source": "local"},
        {"question": "What government position did that actress hold?", "depends_on": [1], "source": "local"},
    ]}  # fmt: skip


async def test_round_two_evidence_reaches_the_judge_when_round_one_filled_the_budget(tmp_path, index_dir):
    model = ScriptedModel(judge=unanswered("Meet Corliss Archer radio"))
    _, _, trajectory = await run(tmp_path, index_dir, model, max_rounds=2, evidence_tokens=300)
    judged = [r for role, r in model.calls if role == "judge"]
    assert len(judged) == 2
    kept_round2 = {c.id for s in trajectory.steps if s.kind == "rerank" and s.round == 2 for c in s.candidates
                   if c.kept}  # fmt: skip
    assert kept_round2, "round 2 kept evidence"
    first, second = (set(EVIDENCE.findall(last_user(r))) for r in judged)
    # Round 1 alone fills the judge's 300 tokens; round 2's evidence is shown all the same.
    assert second - first, "the second judge sees passages the first did not"


async def test_a_fetch_cap_of_zero_stops_no_subgoal(tmp_path, index_dir):
    model = ScriptedModel(planner=two_hop_plan, judge=grounded_judge)
    result, _, _ = await run(tmp_path, index_dir, model, max_fetches=0)
    # Before, a spent fetch cap ended research: the dependant never ran and the run stopped budget_fetches.
    assert [s["rounds"] >= 1 for s in result.subgoals] == [True, True]
    assert result.subgoals[0]["answer"] == "Shirley Temple" and "budget_fetches" not in result.termination


# Each role a run calls by default (intake: a follow-up; verifier: a claim the quote check cannot settle), and
# the reranker's two with selection = rerank.
@pytest.mark.parametrize("role", ["intake", "planner", "reranker", "evidence", "judge", "answerer", "verifier"])
async def test_an_llm_failure_in_any_step_still_ends_in_an_answer_or_abstention(tmp_path, index_dir, role):
    claim = {"text": "She later served the State Department as its protocol chief.", "citations": [1]}
    paraphrase = {"short_answer": "Chief of Protocol", "claims": [claim]}
    base = ScriptedModel(judge=grounded_judge, answerer=paraphrase)
    history = [{"question": "Who played Corliss Archer?", "answer": "Shirley Temple"}] if role == "intake" else None
    selection = "rerank" if role in ("reranker", "evidence") else "judge"

    def failing(request):
        if request.role == role:
            raise LLMServerError("http://127.0.0.1:9/v1", 500, "boom")
        return base(request)

    result, _, trajectory = await run(tmp_path, index_dir, failing, history=history, selection=selection)
    assert result.answer  # an answer, or an abstention that says so
    failed = [s for s in trajectory.steps if s.kind == "llm_call" and s.error]
    assert failed and failed[0].role == role and "boom" in failed[0].error
    assert trajectory.status == "complete" and trajectory.final.termination == result.termination
    assert any(f"LLM call failed ({role})" in n for n in result.notes)
    if role in ("judge", "answerer"):  # these calls carry the sub-goal's or the run's answer
        assert result.termination == "error_llm_server"


async def test_a_better_earlier_answer_survives_a_worse_later_round(tmp_path, index_dir):
    verdicts = iter([
        {"answer": "Shirley Temple", "answered": True, "decision": "continue", "next_queries": ["Corliss Archer film"]},
        {"answer": "Janet Waldo", "answered": True, "decision": "continue", "next_queries": ["Kiss and Tell cast"]},
    ])  # fmt: skip
    confidences = [-0.05, -1.5]  # round 1 sure, round 2 unsure
    model = ScriptedModel(judge=lambda r: next(verdicts) | {"passages": judge_grades(r)})
    backend = fake_backend(model)
    original = backend.complete

    async def complete(request):
        judged = model.roles().count("judge")
        backend.logprob = confidences[min(judged, 1)] if request.role == "judge" else -0.1
        return await original(request)

    backend.complete = complete
    result, _, _ = await run(tmp_path, index_dir, model, backend=backend, max_rounds=2)
    assert model.roles().count("judge") == 2
    assert result.subgoals[0]["answer"] == "Shirley Temple" and result.subgoals[0]["confidence"] > 0.9


async def test_research_llm_calls_stop_at_the_budget_inside_a_round(tmp_path, index_dir):
    model = ScriptedModel(judge=unanswered())
    result, _, trajectory = await run(tmp_path, index_dir, model, max_llm_calls=4, max_rounds=5)
    made = [s for s in trajectory.steps if s.kind == "llm_call" and s.subgoal and not s.error]
    assert len(made) <= 4 - 1  # plan took one; judge rounds never overshoot the cap
    assert result.termination == "budget_llm_calls" and result.answer  # it still answers or abstains


async def test_nothing_found_abstains_with_the_best_passages_and_no_guesses(tmp_path, index_dir):
    guess = {"short_answer": "Paris", "claims": [{"text": "It is Paris.", "citations": []}]}
    model = ScriptedModel(judge=lambda r: {"answer": "no", "answered": False, "decision": "continue",
                                           "next_queries": ["Janet Waldo"], "passages": judge_grades(r)},
                          answerer=guess, reviser=guess)  # fmt: skip
    result, _, _ = await run(tmp_path, index_dir, model, max_rounds=2)
    assert result.termination == "abstained" and result.short_answer == "" and result.subgoals[0]["answer"] == "unknown"
    assert "could not verify" in result.answer and "Paris" not in result.answer and "→ no" not in result.answer
    passages = [line for line in result.answer.splitlines() if line.startswith("- ")]
    assert passages and all(" (" in p and "): " in p for p in passages)  # title (source): the sentence


async def test_a_revision_keeps_the_claims_already_verified(tmp_path, index_dir):
    first = {"short_answer": "Chief of Protocol", "claims": [
        {"text": "Shirley Temple was Chief of Protocol of the United States.", "citations": [1]},
        {"text": "She was also President of France.", "citations": [1]},
    ]}  # fmt: skip
    revised = {"short_answer": "Chief of Protocol", "claims": [{"text": "She was an actress.", "citations": [1]}]}

    def verifier(request):
        claims = re.findall(r"^Claim (\d+): (.*)$", last_user(request), re.MULTILINE)
        return {"verdicts": [{"claim": int(n), "supported": "France" not in text, "reason": ""} for n, text in claims]}

    model = ScriptedModel(answerer=first, reviser=revised, verifier=verifier)
    result, _, _ = await run(tmp_path, index_dir, model)
    assert "Chief of Protocol of the United States" in result.answer and "actress" in result.answer
    assert "France" not in result.answer and result.short_answer == "Chief of Protocol"


async def test_a_short_answer_no_supported_claim_states_is_not_given(tmp_path, index_dir):
    untied = {"short_answer": "Secretary of State",
              "claims": [{"text": "Shirley Temple was Chief of Protocol of the United States.", "citations": [1]}]}
    model = ScriptedModel(answerer=untied, reviser=untied)
    result, _, _ = await run(tmp_path, index_dir, model)
    assert model.roles().count("reviser") == 1
    assert result.termination == "abstained" and result.short_answer == ""


async def test_each_step_of_a_round_is_announced(tmp_path, index_dir):
    _, events, _ = await run(tmp_path, index_dir, ScriptedModel())
    steps = [(e.round, e.step.split(" ")[0]) for e in events if isinstance(e, StepEvent)]
    assert [s for s in steps if s[0] == 1][:4] == [(1, "queries"), (1, "search"), (1, "judge"), (1, "route")]
    _, events, _ = await run(tmp_path / "rerank", index_dir, ScriptedModel(), selection="rerank")
    steps = [(e.round, e.step.split(" ")[0]) for e in events if isinstance(e, StepEvent)]
    assert [s for s in steps if s[0] == 1][:4] == [(1, "queries"), (1, "search"), (1, "select"), (1, "rerank")]


class Crash(Exception):
    """Not an LLM failure: the process dies (as a kill would) and the run does not finish."""


async def test_a_crash_between_rounds_resumes_from_the_last_rounds_checkpoint(tmp_path, index_dir):
    calls = {"judge": 0}

    def judge(request):
        calls["judge"] += 1
        if calls["judge"] == 2:
            raise Crash("killed in round 2")
        return first(request)

    first = unanswered("Meet Corliss Archer radio")
    model = ScriptedModel(judge=judge)
    with pytest.raises(Crash):
        await run(tmp_path, index_dir, model, thread_id="thread-1", max_rounds=3)
    assert model.roles() == ["planner", "judge", "judge"]

    resumed = ScriptedModel(judge=grounded_judge)
    result, _, trajectory = await run(tmp_path, index_dir, resumed, thread_id="thread-1", resume=True, max_rounds=3)
    roles = resumed.roles()
    # Round 1 and round 2's queries and search are not redone: the run continues at round 2's judge.
    assert roles[0] == "judge" and not any("Break the question" in last_user(r) for _, r in resumed.calls)
    assert trajectory.meta["resumed_thread"] == "thread-1"
    assert result.answer and result.termination


def test_the_python_api_is_not_shadowed_by_the_research_subgraph_package():
    import deepsearch.agent.graph  # noqa: F401 - loads the subgraph package first, as a run does
    from deepsearch.agent import research

    assert callable(research) and research.__module__ == "deepsearch.agent.run"


async def test_without_logprobs_belief_is_the_agreement_of_drafts_sampled_with_distinct_seeds(tmp_path, index_dir):
    from deepsearch.agent.llm.fake import FakeBackend

    class NoLogprobs(FakeBackend):
        @property
        def supports_logprobs(self) -> bool:
            return False

    model = ScriptedModel(judge=grounded_judge, drafter=lambda r: {"answer": "Shirley Temple"})
    backend = NoLogprobs(model)
    question = "Who portrayed Corliss Archer in the film Kiss and Tell?"
    _, _, trajectory = await run(tmp_path, index_dir, model, question=question, backend=backend, max_rounds=1)
    seeds = [r.seed for r in backend.requests if r.role == "drafter"]
    assert len(seeds) == 3 and len(set(seeds)) == 3  # one seed each: identical samples would always agree
    info = [s for s in trajectory.steps if s.kind == "information" and s.subgoal]
    assert info and info[0].measure == "agreement"
