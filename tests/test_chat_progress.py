"""The live view: events folded into a snapshot, drawn as DAG / queries / verdicts / gain / budgets; plain lines."""

from deepsearch.agent.chat.layout import dag_tree, run_layout, sparkline
from deepsearch.agent.chat.progress import RunView, SubGoalView, describe
from deepsearch.agent.events import (
    BudgetEvent,
    EvidenceEvent,
    InformationEvent,
    NodeEvent,
    QueryEvent,
    StepEvent,
    SubGoalEvent,
    VerdictEvent,
)
from deepsearch.agent.result import RunUsage
from rich.console import Console

EVENTS = [
    NodeEvent(node="plan", phase="started"),
    SubGoalEvent(subgoal_id="g1", status="planned", question="Who played Corliss Archer in Kiss and Tell?"),
    SubGoalEvent(subgoal_id="g2", status="planned", question="What post did she hold?", depends_on=["g1"]),
    BudgetEvent(used={"llm_calls": 2, "tokens": 400, "searches": 0, "max_llm_calls": 10, "max_tokens": 1000,
                      "max_searches": 4}),  # fmt: skip
    NodeEvent(node="research", phase="started"),
    SubGoalEvent(subgoal_id="g1", status="running", question="Who played Corliss Archer in Kiss and Tell?"),
    QueryEvent(subgoal_id="g1", query="Corliss Archer Kiss and Tell actress", source="local", hits=6),
    QueryEvent(subgoal_id="g1", query="Corliss Archer", source="web", hits=0, status="unavailable"),
    EvidenceEvent(subgoal_id="g1", kept=["e1", "e2"], dropped=4),
    VerdictEvent(target="g1", decision="continue", rationale="one more source"),
    InformationEvent(subgoal_id="g1", round=1, belief=0.4, gain=0.4, draft="Shirley Temple"),
    EvidenceEvent(subgoal_id="g1", kept=["e3"], dropped=2),
    VerdictEvent(target="g1", decision="done", rationale="stated twice"),
    InformationEvent(subgoal_id="g1", round=2, belief=0.9, gain=0.5, draft="Shirley Temple"),
    SubGoalEvent(subgoal_id="g1", status="done", question="Who played Corliss Archer in Kiss and Tell?",
                 answer="Shirley Temple", stop_reason="done"),  # fmt: skip
    SubGoalEvent(subgoal_id="g2", status="running", question="What post did she hold? (known: Shirley Temple)"),
]


def folded() -> RunView:
    view = RunView()
    for event in EVENTS:
        view.apply(event)
    return view


def rendered(renderable, width: int = 140) -> str:
    console = Console(record=True, width=width, no_color=True)
    console.print(renderable)
    return console.export_text()


def test_events_fold_into_the_run_so_far():
    snap = folded().snapshot()
    g1, g2 = snap.subgoals
    assert (g1.status, g1.answer, g1.kept, g1.dropped) == ("done", "Shirley Temple", 3, 6)
    assert (g2.status, g2.depends_on) == ("running", ["g1"])
    assert g2.question.endswith("(known: Shirley Temple)")
    assert (snap.kept, snap.dropped) == (3, 6)
    assert [v.decision for v in snap.verdicts] == ["continue", "done"]
    assert snap.gains == [0.4, 0.5] and snap.node == "research"
    assert snap.budget["llm_calls"] == 2 and not snap.finished


def test_the_layout_shows_dag_queries_evidence_verdicts_gain_and_budgets():
    text = rendered(run_layout(folded().snapshot(), "What government position did she hold?"))
    lines = text.splitlines()
    g1 = next(i for i, line in enumerate(lines) if "● g1" in line)
    g2 = next(i for i, line in enumerate(lines) if "◐ g2" in line)
    assert g2 > g1 and lines[g2].index("g2") > lines[g1].index("g1")  # the dependant hangs under its parent
    assert "kept 3/dropped 6" in lines[g1] and "→ Shirley Temple" in lines[g1]
    assert "Corliss Archer Kiss and Tell actress" in text and "unavailable" in text
    assert "kept 3 · dropped 6" in text
    assert "g1: continue · one more source" in text and "g1: done · stated twice" in text
    assert sparkline([0.4, 0.5]) + " +0.50" in text
    assert "2/10" in text and "400/1000" in text and "2/4" in text  # searches: the 2 queries since the budget event
    assert "research ·" in text and "Ctrl-C cancels" in text


def test_finish_freezes_the_view_with_the_final_costs():
    view = folded()
    view.finish("answered", RunUsage(llm_calls=9, prompt_tokens=700, completion_tokens=100, searches=3, seconds=2.0))
    snap = view.snapshot()
    assert snap.finished and snap.node == "answered"
    assert snap.budget["llm_calls"] == 9 and snap.budget["tokens"] == 800 and snap.budget["max_llm_calls"] == 10
    assert snap.elapsed_s == view.snapshot().elapsed_s  # the clock stopped
    assert "Ctrl-C" not in rendered(run_layout(snap, "q"))


def test_cancelling_shows_until_the_run_unwinds():
    view = folded()
    view.cancelling()
    view.apply(NodeEvent(node="answer", phase="started"))
    assert view.snapshot().node == "cancelling…"


def test_sparkline_scales_between_zero_and_the_largest_gain():
    assert sparkline([]) == ""
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([-0.2, 0.0, 0.6])[0] == "▁"  # a negative gain is the floor
    assert sparkline([0.3, 0.3]) == "██"


def test_the_dag_keeps_subgoals_whose_parents_never_appear_in_order():
    cycle = [SubGoalView("g1", "a", depends_on=["g2"]), SubGoalView("g2", "b", depends_on=["g1"]),
             SubGoalView("g3", "c", depends_on=["g1", "g9"])]  # fmt: skip
    text = rendered(dag_tree(cycle))
    assert all(f"g{i}" in text for i in (1, 2, 3))
    two_parents = [SubGoalView("g1", "a"), SubGoalView("g2", "b"), SubGoalView("g3", "c", depends_on=["g1", "g2"])]
    assert "(also after g2)" in rendered(dag_tree(two_parents))


def test_plain_lines_describe_each_event_without_markup():
    lines = [line for line in map(describe, EVENTS) if line is not None]
    assert "plan" in lines[0] and "g2 planned: What post did she hold? (after g1)" in lines[2]
    assert "budget: llm_calls 2/10, tokens 400/1000, searches 0/4" in lines[3]
    assert any("web search: Corliss Archer (0 hits) [unavailable]" in line for line in lines)
    assert any("g1 evidence: kept 2, dropped 4" in line for line in lines)
    assert any("judge g1: done (stated twice)" in line for line in lines)
    assert any("g1 round 2: belief 0.90, gain +0.50" in line for line in lines)
    done = "g1 done: Who played Corliss Archer in Kiss and Tell? -> Shirley Temple [done]"
    assert any(done in line for line in lines)
    assert describe(NodeEvent(node="plan", phase="finished")) is None
    assert not any("[/" in line or "[bold" in line for line in lines)


LIMITS = {"max_llm_calls": 60, "max_tokens": 100000, "max_searches": 40, "max_fetches": 10, "max_seconds": 300}


def used(llm_calls, searches, seconds):
    return BudgetEvent(used={"llm_calls": llm_calls, "tokens": 100 * llm_calls, "searches": searches, "fetches": 0,
                             "seconds": seconds} | LIMITS)  # fmt: skip


def test_the_footer_names_the_step_in_progress_and_the_budget_bars_move_every_round():
    now = [0.0]
    view = RunView(clock=lambda: now[0])
    g1 = "Who played Corliss Archer in Kiss and Tell?"
    # (seconds on the clock, event, footer afterwards, budget afterwards: llm_calls, searches, seconds)
    script = [
        (8.0, NodeEvent(node="dispatch", phase="started"), "dispatch", {}),
        (9.0, used(2, 0, 9.0), "dispatch", (2, 0, 9.0)),
        (10.0, SubGoalEvent(subgoal_id="g1", status="running", question=g1), "dispatch", (2, 0, 10.0)),
        (10.0, StepEvent(subgoal_id="g1", round=1, step="queries"), "g1 · round 1 · queries", (2, 0, 10.0)),
        (12.0, StepEvent(subgoal_id="g1", round=1, step="search (3 queries)"), "g1 · round 1 · search (3 queries)",
         (2, 0, 12.0)),
        *[(13.0, QueryEvent(subgoal_id="g1", query=f"q{i}", source="local", hits=5),
           "g1 · round 1 · search (3 queries)", (2, i, 13.0)) for i in (1, 2, 3)],
        (14.0, StepEvent(subgoal_id="g1", round=1, step="select"), "g1 · round 1 · select", (2, 3, 14.0)),
        (73.0, StepEvent(subgoal_id="g1", round=1, step="rerank window 2/3"), "g1 · round 1 · rerank window 2/3",
         (2, 3, 73.0)),
        (80.0, StepEvent(subgoal_id="g1", round=1, step="judge"), "g1 · round 1 · judge", (2, 3, 80.0)),
        (81.0, used(9, 3, 81.0), "g1 · round 1 · judge", (9, 3, 81.0)),  # the round's budget event
        (82.0, StepEvent(subgoal_id="g2", round=1, step="search (1 queries)"), "g2 · round 1 · search (1 queries)",
         (9, 3, 82.0)),
        (83.0, StepEvent(subgoal_id="g1", round=2, step="queries"), "g1 · round 2 · queries", (9, 3, 83.0)),
        (84.0, SubGoalEvent(subgoal_id="g1", status="done", question=g1, answer="Shirley Temple", stop_reason="done"),
         "g2 · round 1 · search (1 queries)", (9, 3, 84.0)),  # g1 ended: the step still under way is g2's
        (85.0, used(12, 4, 85.0), "g2 · round 1 · search (1 queries)", (12, 4, 85.0)),
        (86.0, NodeEvent(node="reflect", phase="started"), "reflect", (12, 4, 86.0)),
    ]  # fmt: skip
    for clock, event, footer, budget in script:
        now[0] = clock
        view.apply(event)
        snap = view.snapshot()
        assert snap.activity == footer, event
        if budget:
            assert (snap.budget["llm_calls"], snap.budget["searches"], snap.budget["seconds"]) == budget, event
            assert snap.budget["max_searches"] == 40


def test_the_layout_draws_the_step_in_the_footer_and_beside_each_running_subgoal():
    now = [0.0]
    view = RunView(clock=lambda: now[0])
    for sg in ("g1", "g2"):
        view.apply(SubGoalEvent(subgoal_id=sg, status="running", question=f"question {sg}?"))
    view.apply(used(2, 0, 9.0))
    view.apply(StepEvent(subgoal_id="g2", round=1, step="judge"))
    view.apply(QueryEvent(subgoal_id="g1", query="q", source="local", hits=3))
    view.apply(StepEvent(subgoal_id="g1", round=2, step="rerank window 2/3"))
    now[0] = 73.0
    lines = rendered(run_layout(view.snapshot(), "q")).splitlines()
    assert "g1 · round 2 · rerank window 2/3 · 73.0s · Ctrl-C cancels" in lines[-1]
    assert "round 2 · rerank window 2/3" in next(line for line in lines if "◐ g1" in line)
    assert "round 1 · judge" in next(line for line in lines if "◐ g2" in line)
    assert any("searches" in line and "1/40" in line for line in lines)
    assert any("seconds" in line and "73.0/300.0" in line for line in lines)
    view.finish("answered", RunUsage(llm_calls=9, searches=5, seconds=74.5))
    snap = view.snapshot()
    assert snap.activity == "answered" and (snap.budget["searches"], snap.budget["seconds"]) == (5, 74.5)


def test_plain_chat_lines_show_steps_but_not_bookkeeping():
    assert describe(StepEvent(subgoal_id="g1", round=2, step="rerank window 2/3", at_s=3.0)) == (
        "   3.0s     g1 · round 2 · rerank window 2/3"
    )
    assert describe(StepEvent(subgoal_id="g1", round=2, step="route")) is None
