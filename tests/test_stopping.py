"""The stopping rules, belief and evidence choice as units: each assertion is one of the loop's old bugs."""

from __future__ import annotations

import pytest
from deepsearch.agent import evidence_choice
from deepsearch.agent.belief import (
    Belief,
    belief_from_logprobs,
    belief_from_samples,
    information_gain,
    no_belief,
    same_answer,
)
from deepsearch.agent.budget import Budget, BudgetLimits
from deepsearch.agent.llm.base import UsageTotals
from deepsearch.agent.llm.types import LLMResponse, TokenLogprob
from deepsearch.agent.nodes.plan import validate_dag
from deepsearch.agent.nodes.reflect import PlanChange, apply_changes
from deepsearch.agent.state import Evidence, SubGoal, merge_evidence
from deepsearch.agent.stopping import RoundFacts, low_gain_streak, round_stop, run_plateau, run_termination


def facts(**kw) -> RoundFacts:
    base = dict(round=1, max_rounds=4, decision="continue", answered=False, gain=0.0, low_gain_rounds=0,
                plateau_rounds=1, budget=None, error=None)  # fmt: skip
    return RoundFacts(**(base | kw))


def test_unknown_never_plateaus_while_budget_remains():
    streak = 0
    for rnd in (1, 2, 3):
        streak = low_gain_streak(streak, gain=0.0, epsilon=0.05, answered=False)
        assert streak == 0 and round_stop(facts(round=rnd, low_gain_rounds=streak)) is None
    assert round_stop(facts(round=4)) == "budget_rounds"
    assert round_stop(facts(round=2, budget="budget_searches")) == "budget_searches"


def test_a_confirmed_answer_plateaus_and_done_means_answered():
    assert round_stop(facts(answered=True, low_gain_rounds=low_gain_streak(0, 0.01, 0.05, True))) == "plateau"
    assert round_stop(facts(answered=True, gain=0.9, low_gain_rounds=0)) is None
    assert round_stop(facts(decision="done", answered=True)) == "answered"
    assert round_stop(facts(decision="done", answered=False)) is None  # "done" without an answer goes on
    assert round_stop(facts(error="error_llm_server", decision="done", answered=True)) == "error_llm_server"


def test_unknown_has_belief_zero_however_sure_the_model_is():
    text = '{"answer":"unknown"}'
    r = LLMResponse(text=text, raw_text=text, logprobs=[TokenLogprob(token=text, logprob=-0.001)])
    assert belief_from_logprobs(r, "unknown").value == 0.0
    assert belief_from_samples(["unknown", "Unknown", "unknown"]).value == 0.0
    assert information_gain(no_belief(), no_belief()) == 0.0


@pytest.mark.parametrize(("a", "b"), [("Shirley Temple", "Shirley Temple Black"), ("the USA", "USA"),
                                      ("Chief of Protocol of the United States", "Chief of Protocol")])  # fmt: skip
def test_equivalent_answers_are_the_same_answer(a, b):
    assert same_answer(a, b)
    assert information_gain(Belief(answer=a, value=0.9, method="logprobs"),
                            Belief(answer=b, value=0.88, method="logprobs")) == pytest.approx(0.02)  # fmt: skip


def test_a_changed_answer_is_a_large_gain():
    assert not same_answer("Shirley Temple", "Janet Waldo")
    gain = information_gain(Belief(answer="Shirley Temple", value=0.9, method="logprobs"),
                            Belief(answer="Janet Waldo", value=0.7, method="logprobs"))  # fmt: skip
    assert gain == pytest.approx(0.9)


def test_sampled_agreement_groups_equivalent_answers():
    b = belief_from_samples(["Shirley Temple", "Shirley Temple Black", "unknown"])
    assert b.value == pytest.approx(2 / 3) and b.answer == "Shirley Temple"


def test_the_fetch_cap_is_not_a_stop():
    budget = Budget(BudgetLimits(llm_calls=9, tokens=999, searches=9, fetches=0, seconds=60), UsageTotals())
    budget.fetches = 5
    assert budget.exhausted() is None


def test_run_plateau_needs_a_known_answer_and_flat_waves():
    assert not run_plateau([0.0, 0.0, 0.0], 0.05, 2)  # nothing known: never a plateau
    assert not run_plateau([0.5, 0.9], 0.05, 2)
    assert run_plateau([0.9, 0.91, 0.9], 0.05, 2)
    assert run_termination(None, ["answered", "plateau"]) == "plateau"
    assert run_termination(None, ["answered", "budget_rounds", "error_llm"]) == "error_llm"
    assert run_termination("budget_time", ["answered"]) == "budget_time"


def ev(i: str, score: float, rnd: int, words: int = 60) -> Evidence:
    return Evidence(id=i, subgoal_id="g1", kind="local", source="s", text=" ".join([f"w{i}"] * words),
                    score=score, round=rnd)  # fmt: skip


def test_the_judge_sees_the_newest_round_however_much_round_one_kept():
    kept = [ev(f"a{n}", 0.9, 1) for n in range(6)] + [ev("b1", 0.2, 2), ev("b2", 0.1, 2)]
    shown = evidence_choice.for_judge(kept, newest_round=2, budget=4 * evidence_choice.cost(kept[0]))
    assert {"b1", "b2"} <= {e.id for e in shown}


def test_the_answerer_gives_every_subgoal_a_share():
    first = [ev(f"a{n}", 0.9, 1, words=120) for n in range(8)]
    later = [ev("z1", 0.1, 1)]
    shown = evidence_choice.for_answer([first, later], budget=4 * evidence_choice.cost(first[0]))
    assert "z1" in {e.id for e in shown}


def test_a_passage_found_twice_keeps_its_best_score_and_its_flag():
    a = ev("x", 0.3, 1).model_copy(update={"injection_flagged": True})
    b = ev("x", 0.8, 1).model_copy(update={"subgoal_id": "g2"})
    merged = merge_evidence({"x": a}, {"x": b})["x"]
    assert merged.score == 0.8 and merged.injection_flagged and merged.subgoal_id == "g1"


def test_new_subgoals_are_deduplicated_against_the_existing_plan():
    kept = validate_dag([SubGoal(id="g2", question="Who  directed Jaws?")], 4, existing={"g1"},
                        existing_questions=["Who directed Jaws?"])  # fmt: skip
    assert kept == []


def test_a_planner_question_with_a_double_space_is_added_with_its_reason():
    state = {"plan": {"g1": SubGoal(id="g1", question="Who directed Jaws?")}, "results": {}}
    change = PlanChange(op="add", id="g2", question="Where  was Spielberg born?", reason="needs the birthplace")
    update, records = apply_changes(state, [change], max_subgoals=4, wave=1)
    assert records[0].reason == "needs the birthplace" and update[records[0].subgoal_id].question == (
        "Where was Spielberg born?"
    )
