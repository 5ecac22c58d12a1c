"""`deepsearch ask` without a terminal: one plain, timed progress line per node and research round step."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from deepsearch.agent.chat.progress import ProgressLines
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

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

Q1 = "Who played Corliss Archer in Kiss and Tell?"


def lines_of(events, close_at: float | None = None) -> list[str]:
    out: list[str] = []
    progress = ProgressLines(out.append)
    for at, event in events:
        event.at_s = at
        progress.feed(event)
    if close_at is not None:
        progress.close(close_at)
    return out


def step(sg, rnd, name):
    return StepEvent(subgoal_id=sg, round=rnd, step=name)


# One run in the order the research subgraph emits it: queries → search → select (rerank, evidence) → judge → route.
SUBGRAPH_RUN = [
    (0.4, NodeEvent(node="intake", phase="started")),
    (0.5, NodeEvent(node="intake", phase="finished")),
    (0.6, NodeEvent(node="plan", phase="started")),
    (12.0, SubGoalEvent(subgoal_id="g1", status="planned", question=Q1)),
    (12.0, SubGoalEvent(subgoal_id="g2", status="planned", question="What post did she hold?", depends_on=["g1"])),
    (12.3, NodeEvent(node="plan", phase="finished")),
    (12.3, NodeEvent(node="dispatch", phase="started")),
    (12.3, BudgetEvent(used={"llm_calls": 2, "max_llm_calls": 60})),
    (12.4, step("g1", 1, "queries")),
    (12.4, SubGoalEvent(subgoal_id="g1", status="running", question=Q1)),
    (14.0, step("g1", 1, "search (3 queries)")),
    *[(14.1, QueryEvent(subgoal_id="g1", query=f"q{i}", source="local", hits=5)) for i in range(3)],
    (14.2, QueryEvent(subgoal_id="g1", query="q0", source="web", hits=0, status="unavailable")),
    (14.3, step("g1", 1, "select")),
    (14.3, step("g1", 1, "rerank window 1/2")),
    (16.0, step("g1", 1, "rerank window 2/2")),
    (18.0, step("g1", 1, "evidence 1/1")),
    (19.0, EvidenceEvent(subgoal_id="g1", kept=["e1", "e2"], dropped=4)),
    (19.0, step("g1", 1, "judge")),
    (20.0, VerdictEvent(target="g1", decision="continue", rationale="one more source")),
    (20.1, InformationEvent(subgoal_id="g1", round=1, belief=0.08, gain=0.08, draft="Shirley Temple")),
    (20.1, BudgetEvent(used={"llm_calls": 7, "max_llm_calls": 60})),
    (20.1, step("g1", 1, "route")),
    (20.2, step("g1", 2, "queries")),
    (21.0, step("g1", 2, "finish")),
    (21.0, SubGoalEvent(subgoal_id="g1", status="done", question=Q1, answer="Shirley Temple", stop_reason="done")),
    (21.1, NodeEvent(node="reflect", phase="started")),
    (22.0, SubGoalEvent(subgoal_id="g2", status="changed", question="What post did Shirley Temple hold?")),
    (22.1, NodeEvent(node="reflect", phase="finished")),
    (40.2, NodeEvent(node="answer", phase="started")),
    (40.9, NodeEvent(node="answer", phase="finished")),
    (40.9, NodeEvent(node="verify", phase="started")),
    (41.0, NodeEvent(node="verify", phase="finished")),
    (41.0, VerdictEvent(target="answer", decision="accept", rationale="2 supported claim(s)")),
]


def test_a_research_run_reads_as_one_line_per_node_and_round_step():
    assert lines_of(SUBGRAPH_RUN) == [
        "[0.4s] intake",
        "[12.3s] plan: 2 sub-goals",
        "[12.3s] dispatch",
        "[12.4s] g1 round 1: queries",
        f"[12.4s] g1 started: {Q1}",
        "[14.0s] g1 round 1: search (3 queries)",
        "[14.2s] g1 round 1: web search unavailable: q0",
        "[14.3s] g1 round 1: rerank window 1/2",
        "[16.0s] g1 round 1: rerank window 2/2",
        "[18.0s] g1 round 1: evidence 1/1",
        "[19.0s] g1 round 1: select → kept 2, dropped 4",
        "[20.1s] g1 round 1: judge → continue (belief 0.08, gain +0.08)",
        "[20.2s] g1 round 2: queries",
        "[21.0s] g1 done → Shirley Temple (done)",
        "[22.1s] reflect: 1 changed",
        "[40.2s] answer",
        "[41.0s] verify: accept (2 supported claim(s))",
    ]


def test_a_graph_without_step_events_still_gets_a_line_per_round_step():
    run = [
        (1.0, SubGoalEvent(subgoal_id="g1", status="running", question=Q1)),
        *[(2.0, QueryEvent(subgoal_id="g1", query=f"q{i}", source="local", hits=5)) for i in range(2)],
        (3.0, EvidenceEvent(subgoal_id="g1", kept=["e1"], dropped=1)),
        (4.0, VerdictEvent(target="g1", decision="continue")),
        (4.5, InformationEvent(subgoal_id="g1", round=1, belief=0.4, gain=0.4, draft="x")),
        (5.0, QueryEvent(subgoal_id="g1", query="q2", source="local", hits=5)),
        (6.0, EvidenceEvent(subgoal_id="g1", kept=[], dropped=3)),
        (7.0, VerdictEvent(target="g1", decision="done")),
        (7.5, InformationEvent(subgoal_id="g1", round=2, belief=0.9, gain=0.5, draft="x")),
    ]
    assert lines_of(run)[1:] == [
        "[2.0s] g1 round 1: search",
        "[3.0s] g1 round 1: select → kept 1, dropped 1",
        "[4.5s] g1 round 1: judge → continue (belief 0.40, gain +0.40)",
        "[5.0s] g1 round 2: search",
        "[6.0s] g1 round 2: select → kept 0, dropped 3",
        "[7.5s] g1 round 2: judge → done (belief 0.90, gain +0.50)",
    ]


def test_parallel_subgoals_keep_their_own_waiting_steps_and_close_prints_what_a_failure_cut_short():
    run = [
        (1.0, step("g1", 1, "select")),
        (1.1, step("g2", 3, "judge")),
        (2.0, step("g1", 1, "rerank window 1/1")),
        (2.5, VerdictEvent(target="g2", decision="done")),
        (3.0, EvidenceEvent(subgoal_id="g1", kept=["a"], dropped=0)),
        (3.5, InformationEvent(subgoal_id="g2", round=3, belief=0.7, gain=-0.1, draft="x")),
        (4.0, step("g1", 1, "judge")),
        (5.0, NodeEvent(node="verify", phase="started")),
    ]
    assert lines_of(run, close_at=9.0) == [
        "[2.0s] g1 round 1: rerank window 1/1",
        "[3.0s] g1 round 1: select → kept 1, dropped 0",
        "[3.5s] g2 round 3: judge → done (belief 0.70, gain -0.10)",
        "[9.0s] g1 round 1: judge",
        "[9.0s] verify",
    ]


def ask(cli_env, tmp_path, *extra):
    index = build_sample_index(tmp_path)
    rounds = iter([{"rationale": "one more source", "labels": [], "answer": "unknown", "answered": False,
                    "decision": "continue", "next_queries": ["Shirley Temple Kiss and Tell"]}])  # fmt: skip

    def judge(request):
        return next(rounds, None) or ScriptedModel.default_judge(request)

    with FakeOpenAIServer(responder=server_responder(ScriptedModel(judge=judge))) as server:
        cmd = [sys.executable, "-m", "deepsearch.agent", "ask", "What government position was held by the woman who "
               "portrayed Corliss Archer in the film Kiss and Tell?", "--index", str(index), "--no-web",
               "--llm-base-url", server.base_url, *extra]  # fmt: skip
        return subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)


def test_ask_through_a_pipe_prints_progress_on_stderr_and_keeps_json_stdout_clean(cli_env, tmp_path):
    out = ask(cli_env, tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["short_answer"] == "Chief of Protocol"  # stdout is the JSON alone
    lines = out.stderr.splitlines()
    assert lines and all(re.match(r"\[\d+\.\ds\] \S", line) for line in lines), lines
    for expected in ("plan: 1 sub-goal", "g1 round 1: search (", "g1 round 1: select → kept",
                     "g1 round 1: judge → continue (belief", "g1 round 2: queries", "g1 round 2: judge → done (belief",
                     "g1 done → Shirley Temple", "] answer", "verify: accept"):
        assert any(expected in line for line in lines), (expected, lines)  # fmt: skip
    assert len(lines) < 40  # a line per step, not per token or per query


def test_quiet_ask_prints_no_progress(cli_env, tmp_path):
    out = ask(cli_env, tmp_path, "--quiet")
    assert out.returncode == 0, out.stderr
    assert not re.search(r"^\[\d+\.\ds\]", out.stderr, re.MULTILINE) and "Chief of Protocol" in out.stdout
