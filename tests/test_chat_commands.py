"""Slash commands over a real session (one researched question), and resuming a stored session."""

import json

import pytest
from deepsearch.traces.schema import Trajectory

from tests.chat_support import ChatRun
from tests.graph_support import ScriptedModel, build_sample_index, fake_backend, section

Q1 = "Who portrayed Corliss Archer in the film Kiss and Tell?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


def two_hop_plan(request):
    if "Plan and results" in request.messages[-1].content:
        return {"changes": []}
    return {"subgoals": [
        {"question": "Which film features Corliss Archer?", "depends_on": [], "source": "local"},
        {"question": "Who played her in that film?", "depends_on": [1], "source": "local"},
    ]}  # fmt: skip


def after(text: str, command: str, last: bool = False) -> str:
    """What a command printed: the output between its echoed line (first or last) and the next prompt."""
    parts = text.split(f"> {command}\n")
    return parts[-1 if last else 1].split("\n> ", 1)[0]


@pytest.fixture(scope="module")
def session_run(tmp_path_factory, index_dir):
    tmp = tmp_path_factory.mktemp("chat")
    mp = pytest.MonkeyPatch()
    export = tmp / "out" / "session.jsonl"
    lines = [Q1, "/plan", "/sources", "/budget", "/trace", f"/export {export}", "/sources 9", "/plan two",
             "/nope", '/export "unclosed', "/new", "/sources"]  # fmt: skip
    try:
        run = ChatRun(tmp, index_dir, fake_backend(ScriptedModel(planner=two_hop_plan)), lines, mp)
    finally:
        mp.undo()
    return run, export, tmp


def test_plan_shows_the_dag_with_each_subgoals_answer(session_run):
    run, _, _ = session_run
    shown = after(run.text, "/plan")
    assert "turn 1: " + Q1 in shown
    g1, g2 = (next(i for i, line in enumerate(shown.splitlines()) if f"g{n} " in line) for n in (1, 2))
    assert g2 > g1 and shown.splitlines()[g2].index("g2") > shown.splitlines()[g1].index("g1")
    assert "→ Shirley Temple" in shown and "g2: stopped answered" in shown


def test_sources_lists_the_numbered_citations(session_run):
    run, _, _ = session_run
    shown = after(run.text, "/sources")
    for c in run.store.turns(turn_session(run))[0].result.citations:
        assert f"[{c.n}] {c.source}" in shown and " ".join(c.quote.split())[:60] in " ".join(shown.split())


def turn_session(run) -> str:
    """The session the question was asked in (/new switched the live session to a fresh one)."""
    return next(s.id for s in run.store.sessions() if s.turns)


def test_budget_compares_the_costs_with_the_limits(session_run):
    run, _, _ = session_run
    shown = after(run.text, "/budget")
    result = run.store.turns(turn_session(run))[0].result
    row = next(line for line in shown.splitlines() if "llm_calls" in line)
    assert str(result.usage.llm_calls) in row and str(run.settings.agent.max_llm_calls) in row
    assert "session total" in shown


def test_trace_draws_the_trajectory_tree(session_run):
    run, _, _ = session_run
    shown = after(run.text, "/trace")
    assert "llm planner" in shown and "local_search" in shown and "judge" in shown


def test_export_writes_the_sessions_trajectories(session_run):
    run, export, _ = session_run
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    traj = Trajectory.model_validate(rows[0])
    assert len(rows) == 1 and traj.question == Q1 and traj.final.termination == "answered"
    assert not export.with_name("session.jsonl.part").exists()
    assert f"wrote 1 trajectory to {export}" in run.text and "deepsearch traces export -o sft.jsonl" in run.text


def test_bad_commands_are_one_line_errors_and_the_session_goes_on(session_run):
    run, _, _ = session_run
    assert "error: no turn 9; this session has 1" in after(run.text, "/sources 9")
    assert "error: expected a turn number, got 'two'" in after(run.text, "/plan two")
    assert "error: unknown command /nope; /help lists them" in after(run.text, "/nope")
    assert "error: No closing quotation" in after(run.text, '/export "unclosed')
    assert "Traceback" not in run.text


def test_new_starts_an_empty_session_and_keeps_the_old_one(session_run):
    run, _, _ = session_run
    old = turn_session(run)
    assert f"resume the old one with `deepsearch chat --resume {old}`" in after(run.text, "/new")
    assert "no answered question in this session yet" in after(run.text, "/sources", last=True)
    assert [s.id for s in run.store.sessions()] == [old]  # the new, still empty session was not kept
    assert run.text.endswith("> ")  # and leaving it printed no "saved" line


def test_resume_continues_a_session_with_its_history(session_run, index_dir, tmp_path, monkeypatch):
    first, _, tmp = session_run
    old = turn_session(first)
    model = ScriptedModel()
    lines = ["What government position did she hold?", "/budget"]
    run = ChatRun(tmp, index_dir, fake_backend(model), lines, monkeypatch, resume=old)
    assert f"session {old}" in run.text.splitlines()[0]
    short = first.store.turns(old)[0].result.short_answer
    assert f"  1. {Q1} → {short}" in run.text  # the recap of earlier turns
    intake = next(r for role, r in model.calls if role == "intake")
    assert f"Q: {Q1}" in section(intake, "Conversation so far")
    assert [t.n for t in run.store.turns(old)] == [1, 2]
    assert "session total" in after(run.text, "/budget")
