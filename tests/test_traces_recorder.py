"""Record → read round trips: every step kind, parse outcomes via an LLMClient observer, DAG, contents."""

import pytest
from deepsearch.agent.llm import ChatMessage, LLMClient, generate_structured
from deepsearch.agent.llm.errors import LLMUnavailable
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.traces.reader import load_trajectory, read_log
from deepsearch.traces.recorder import TraceRecorder, TraceWriteError
from deepsearch.traces.schema import Header, LLMCallStep, ToolCallStep
from deepsearch.traces.synthetic import record_synthetic_run
from pydantic import BaseModel


class Verdict(BaseModel):
    label: str


def _recorder(tmp_path, **header):
    return TraceRecorder.start(tmp_path, Header(question="Who wrote Hamlet?", **header))


async def test_observer_records_calls_and_structured_outcome_marks_retry(tmp_path):
    rec = _recorder(tmp_path)
    backend = FakeBackend(["<think>hmm</think>not json at all", '{"label": "correct"}'])
    client = LLMClient(backend, observers=[rec.observer(subgoal="sg1", round=2)])
    outcome = await generate_structured(
        client, [ChatMessage(role="user", content="judge it")], Verdict, role="judge", fallback=Verdict(label="?")
    )
    rec.structured(outcome)
    rec.finish("Shakespeare", termination="answered", gold=["William Shakespeare"])

    traj = load_trajectory(rec.path)
    first, second = traj.llm_calls()
    assert (first.role, first.subgoal, first.round) == ("judge", "sg1", 2)
    assert first.reasoning == "hmm" and first.raw_output.startswith("<think>")
    assert first.accepted is False and first.parse_failures[0].kind == "no_json" and first.parsed is None
    assert second.accepted is True and second.parsed == {"label": "correct"} and second.status == "retried"
    assert second.retry_of == first.index and second.messages[-1].content.startswith("Your previous reply")
    assert traj.final.usage.llm_calls == 2 and traj.final.scores.f1 > 0 and traj.final.scores.em == 0
    assert traj.status == "complete" and traj.ended is not None


async def test_failed_call_and_exception_become_error_termination(tmp_path):
    backend = FakeBackend([LLMUnavailable("http://127.0.0.1:9/v1", "refused")])
    with pytest.raises(LLMUnavailable), _recorder(tmp_path) as rec:
        client = LLMClient(backend, observers=[rec.observer()])
        await generate_structured(client, [ChatMessage(role="user", content="x")], Verdict, role="judge", fallback=None)
    traj = load_trajectory(rec.path)
    assert traj.final.termination == "error_llm_unreachable" and "refused" in traj.final.error
    assert traj.llm_calls()[0].error.startswith("LLMUnavailable")


def test_every_step_kind_dag_and_shared_contents_round_trip(tmp_path):
    rec = _recorder(tmp_path, mode="research")
    rec.resolved_question("Who wrote the play Hamlet?")
    page = "Hamlet is a tragedy by William Shakespeare. " * 50
    results = [{"id": "e1", "url": "https://a.example/h", "title": "Hamlet", "score": 0.9, "text": page}]
    s0 = rec.tool_call("fetch_page", {"url": "https://a.example/h"}, results=results, subgoal="sg1")
    rec.tool_call("fetch_page", {"url": "https://a.example/h"}, results=results, subgoal="sg2")
    rec.dag_change("added", {"id": "sg1", "question": "author?"}, reason="plan")
    rec.dag_change("dropped", {"id": "sg1", "question": "author?"}, reason="redundant", caused_by=s0)
    candidates = [{"id": "e1", "score": 0.9, "kept": True, "reason": "above cutoff", "rationale": "names him"}]
    rec.step("rerank", query="hamlet author", candidates=candidates, cutoff=0.5, method="elbow")
    rec.step("judge", target="sg1", labels={"correct": True}, decision="done")
    rec.step("information", belief=-0.1, gain=0.4, measure="logprob", entropy=0.3)
    rec.step("budget", used={"searches": 1}, limits={"searches": 10})
    rec.finish(
        "Shakespeare [1]",
        termination="answered",
        citations=[{"n": 1, "evidence_id": "e1", "source": "https://a.example/h", "quote": "by William"}],
    )

    traj, report = read_log(rec.path)
    assert report.ok and not report.warnings
    assert [s.kind for s in traj.steps] == ["tool_call", "tool_call", "rerank", "judge", "information", "budget"]
    assert len(traj.contents) == 1 and rec.path.read_text().count("Hamlet is a tragedy") == 50  # stored once
    only = next(iter(traj.contents.values()))
    assert only.text == page and traj.steps[1].results[0].content_hash == only.hash
    assert traj.dag[0].status == "dropped" and traj.dag_changes[1].caused_by == s0
    assert traj.resolved_question == "Who wrote the play Hamlet?" and traj.final.citations[0].evidence_id == "e1"
    assert traj.info_gain == pytest.approx(0.4)


def test_bad_step_fields_are_refused_before_anything_is_written(tmp_path):
    rec = _recorder(tmp_path)
    size = rec.path.stat().st_size
    with pytest.raises(ValueError, match="unknown step kind"):
        rec.step("teleport")
    with pytest.raises(ValueError, match="bad judge step"):
        rec.step("judge", labels={"x": 1})  # no target
    assert rec.path.stat().st_size == size


def test_finish_twice_and_unwritable_directory_are_errors(tmp_path):
    rec = _recorder(tmp_path)
    rec.finish("a", termination="answered")
    with pytest.raises(TraceWriteError):
        rec.finish("b", termination="answered")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TraceWriteError, match="cannot write trajectories"):
        TraceRecorder.start(blocker, Header(question="q"))
    for unsafe in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(ValueError, match="trace id"):
            TraceRecorder.start(tmp_path, Header(question="q"), trace_id=unsafe or "x" * 200)
    assert TraceRecorder.start(tmp_path, Header(question="q"), trace_id="batch-q1.r2").path.name == "batch-q1.r2.jsonl"


def test_synthetic_runs_read_back_complete(tmp_path):
    ids = [record_synthetic_run(tmp_path, seed) for seed in range(20)]
    trajs = [load_trajectory(tmp_path / "runs" / f"{i}.jsonl") for i in ids]
    assert all(t.status == "complete" for t in trajs)
    assert any(s.retry_of is not None for t in trajs for s in t.llm_calls())  # parse retries
    assert any(s.supersedes is not None for t in trajs for s in t.llm_calls())  # revisions
    assert all(isinstance(t.steps[0], LLMCallStep) and any(isinstance(s, ToolCallStep) for s in t.steps) for t in trajs)
