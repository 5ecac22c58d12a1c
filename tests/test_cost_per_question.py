"""What a question costs: one judge call a round, no rewrite, listwise or extraction calls, intake only for a
follow-up or an interactive session, the verifier only for claims the quote check cannot settle, and prompts
laid out so that round n+1 extends round n. Each test fails on the loop as it was before issue 14."""

from __future__ import annotations

import re

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.claim_check import settled_by_quote
from deepsearch.agent.config import RerankSettings
from deepsearch.agent.nodes.dispatch import planned_queries
from deepsearch.agent.researcher.state import PassageGrade
from deepsearch.agent.selection import graded_evidence, passage_section
from deepsearch.agent.state import SubGoal, SubGoalResult
from deepsearch.tools.rerank.models import Candidate
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
TEMPLE = "Shirley Temple Black was an American actress. She served as Chief of Protocol of the United States."


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


async def run(tmp_path, index_dir, model, history=None, **agent):
    settings = settings_for(tmp_path, **agent)
    result = await aresearch(QUESTION, settings=settings, backend=fake_backend(model), history=history,
                             tools=local_tools(index_dir, settings))  # fmt: skip
    return result, load_trajectory(find_log(settings.traces.dir, result.trace_id))


async def test_a_one_round_question_costs_a_plan_a_judge_and_an_answer(tmp_path, index_dir):
    model = ScriptedModel()
    result, trajectory = await run(tmp_path, index_dir, model)
    # The default answerer's claim is a paraphrase the quote check cannot settle: the verifier reads it.
    assert model.roles() == ["planner", "judge", "answerer", "verifier"]
    assert result.termination == "answered" and result.usage.llm_calls == 4
    kept = [c for s in trajectory.steps if s.kind == "rerank" for c in s.candidates if c.kept]
    assert kept and all("graded" in c.reason for c in kept)  # the judge's grades chose the evidence


async def test_round_one_runs_the_planners_queries_and_round_two_the_judges(tmp_path, index_dir):
    plan = {"subgoals": [{"question": QUESTION, "depends_on": [], "queries": ["Corliss Archer film", "Kiss and Tell"]}]}
    verdicts = iter([{"answer": "unknown", "answered": False, "decision": "continue",
                      "next_queries": ["Shirley Temple diplomat", "Kiss and Tell"]}])  # fmt: skip
    model = ScriptedModel(planner=plan, judge=lambda r: next(verdicts, None) or ScriptedModel.default_judge(r))
    result, _ = await run(tmp_path, index_dir, model, max_rounds=2)
    searched = [QUESTION, "Corliss Archer film", "Kiss and Tell", "Shirley Temple diplomat"]
    assert result.subgoals[0]["queries"] == searched
    judges = [r for role, r in model.calls if role == "judge"]
    assert "- Kiss and Tell" in section(judges[1], "Searched")  # the judge sees what was searched already
    assert not {"query_rewriter", "reranker", "evidence", "intake"} & set(model.roles())


def test_a_dependants_planned_queries_name_the_parents_answer():
    sg = SubGoal(id="g2", question="What post did #1 hold?", depends_on=["g1"],
                 queries=["#1 government position", "Chief of Protocol holders"])  # fmt: skip
    parent = SubGoalResult(id="g1", question="Who played Corliss Archer?", answer="Shirley Temple",
                           stop_reason="answered")  # fmt: skip
    state = {"results": {"g1": parent}}
    assert planned_queries(sg, state) == ["Shirley Temple government position",
                                          "Chief of Protocol holders Shirley Temple"]  # fmt: skip
    unknown = {"results": {"g1": parent.model_copy(update={"answer": "unknown"})}}
    assert planned_queries(sg, unknown) == ["government position", "Chief of Protocol holders"]


async def test_a_round_shows_at_most_round_passages_and_the_rest_stay_unseen(tmp_path, index_dir):
    verdicts = iter([{"answer": "unknown", "answered": False, "decision": "continue", "next_queries": [QUESTION[:60]]}])
    model = ScriptedModel(judge=lambda r: next(verdicts, None) or ScriptedModel.default_judge(r))
    await run(tmp_path, index_dir, model, max_rounds=2, round_passages=2, local_k=8)
    judges = [last_user(r) for role, r in model.calls if role == "judge"]
    first, second = ([set(re.findall(r"<passage id=\"P\d+\">\nTitle: ([^\n]*)", j)) for j in judges])
    assert len(first) == 2 and len(second) == 2
    assert not first & second  # round 2 shows the next unseen candidates, not round 1's again


def test_judge_grades_keep_the_quote_verified_in_the_source_and_never_the_models_words():
    candidates = [Candidate(id="a", title="Shirley Temple", text=TEMPLE, source="s1"),
                  Candidate(id="b", title="Janet Waldo", text="Janet Waldo was a radio actress.", source="s2"),
                  Candidate(id="c", title="Kiss and Tell", text="Kiss and Tell is a 1945 film.",
                            source="s3")]  # fmt: skip
    text, aliases = passage_section(candidates, 600)
    assert text.count("<passage id=") == 3 and list(aliases) == ["P1", "P2", "P3"]
    grades = [PassageGrade(id="P1", grade=9, quote="She served as Chief of Protocol of the United States."),
              PassageGrade(id="p3", grade=6, quote="Kiss and Tell premiered in Paris in 1950."),  # not in the source
              PassageGrade(id="P2", grade=2, quote="")]  # fmt: skip
    chosen, decisions = graded_evidence(grades, aliases, "g1", RerankSettings(), keep_grade=5, budget=1000)
    assert list(chosen) == ["P1", "P3"]
    assert chosen["P1"].text == "She served as Chief of Protocol of the United States." and chosen["P1"].score == 0.9
    assert chosen["P3"].text == "Kiss and Tell is a 1945 film."  # the passage itself, never the invented quote
    assert [d["kept"] for d in decisions] == [True, True, False]


@pytest.mark.parametrize("reply", ["not json at all", {"answer": "unknown", "answered": False, "decision": "done"}])
async def test_a_judge_reply_without_usable_grades_keeps_the_round_in_fusion_order(tmp_path, index_dir, reply):
    # A weak model that writes no JSON, or grades none of the passages, still leaves the answerer evidence.
    model = ScriptedModel(judge=reply)
    result, trajectory = await run(tmp_path, index_dir, model, max_rounds=1)
    rerank = [s for s in trajectory.steps if s.kind == "rerank"]
    assert rerank and "fusion order" in rerank[0].method and any(c.kept for c in rerank[0].candidates)
    assert result.answer and "most relevant passages" in result.answer or result.citations


def test_a_claim_the_evidence_states_is_settled_without_the_verifier():
    assert settled_by_quote("Shirley Temple served as Chief of Protocol of the United States.", TEMPLE)
    assert not settled_by_quote("Shirley Temple served as Chief of Protocol of France.", TEMPLE)  # a name missing
    assert not settled_by_quote("She later ran the State Department's protocol office.", TEMPLE)  # a paraphrase


async def test_a_quoted_claim_makes_no_verifier_call(tmp_path, index_dir):
    def answerer(request):  # copies the first evidence passage word for word, as an extractive answer does
        quote = re.search(r'<evidence id="1"[^>]*>\n(.*?)\n</evidence>', last_user(request), re.S).group(1)
        return {"short_answer": " ".join(quote.split()[:2]), "claims": [{"text": quote, "citations": [1]}]}

    model = ScriptedModel(answerer=answerer)
    result, trajectory = await run(tmp_path, index_dir, model)
    assert "verifier" not in model.roles() and result.termination == "answered"
    accepted = [s for s in trajectory.steps if s.kind == "judge" and s.target_kind == "claim"]
    assert accepted and accepted[0].decision == "accept" and "stated in the cited evidence" in accepted[0].rationale


async def test_intake_runs_only_for_a_follow_up(tmp_path, index_dir):
    model = ScriptedModel()
    await run(tmp_path, index_dir, model)
    assert "intake" not in model.roles()
    follow = ScriptedModel()
    await run(tmp_path / "2", index_dir, follow, history=[{"question": "Who played Corliss Archer?", "answer": "x"}])
    assert follow.roles()[0] == "intake"


async def test_round_two_prompt_extends_round_ones_evidence_in_the_order_it_was_kept(tmp_path, index_dir):
    verdicts = iter([{"answer": "unknown", "answered": False, "decision": "continue",
                      "next_queries": ["Meet Corliss Archer radio"]}])  # fmt: skip
    model = ScriptedModel(judge=lambda r: (next(verdicts, None) or ScriptedModel.default_judge(r)) | {
        "passages": judge_grades(r)})  # fmt: skip
    await run(tmp_path, index_dir, model, max_rounds=3)
    first, second = [last_user(r) for role, r in model.calls if role == "judge"][:2]
    round_one = re.findall(r"<passage id=\"P\d\">\n(?:Title: [^\n]*\n)?(.*?)\.", first, re.S)[:2]
    evidence = section_with_blocks(second)
    assert round_one and evidence.index(round_one[0][:40]) < evidence.index(round_one[1][:40])
    # The shared system prompt and the question come first in every research call.
    systems = {r.messages[0].content for _, r in model.calls}
    assert len(systems) == 1


def section_with_blocks(text: str) -> str:
    return text[text.index("# Evidence") : text.index("# New passages")]
