"""The concurrent runner: bounded concurrency, a row per question (failures included), fatal errors stop it."""

from __future__ import annotations

import asyncio
import json

import pytest
from deepsearch.agent.batch.inputs import BatchQuestion
from deepsearch.agent.batch.judge import AnswerJudge
from deepsearch.agent.batch.output import OutputWriter, scan_output
from deepsearch.agent.batch.runner import BatchRunner
from deepsearch.agent.llm.errors import LLMServerError, LLMUnavailable
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.agent.result import AskResult, RunUsage


class StubAnswerer:
    """Answers '<id> answer' after a short sleep; behaviour per id: 'slow', 'boom', 'server', 'down'."""

    mode = "research"

    def __init__(self, delay: float = 0.01):
        self.delay, self.in_flight, self.max_in_flight = delay, 0, 0
        self.backend = FakeBackend(["unused"], model="stub-model")

    async def __call__(self, q: BatchQuestion) -> AskResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(30 if q.id == "slow" else self.delay)
            if q.id == "boom":
                raise RuntimeError("graph bug\nwith two lines")
            if q.id == "server":
                raise LLMServerError("http://x/v1", 500, "internal")
            if q.id == "down":
                raise LLMUnavailable("http://x/v1", "connection refused")
            return AskResult(question=q.question, answer=f"{q.id} answer [1]", short_answer=f"{q.id} answer",
                             mode="research", termination="answered", usage=RunUsage(llm_calls=3), backend="fake",
                             model="stub-model")  # fmt: skip
        finally:
            self.in_flight -= 1


def questions(*ids: str, gold: bool = True) -> list[BatchQuestion]:
    return [
        BatchQuestion(id=i, question=f"q {i}?", answers=[f"{i} answer"] if gold else [], meta={"n": i}) for i in ids
    ]


def run(tmp_path, answerer, qs, **kw):
    out = tmp_path / "out.jsonl"
    writer = OutputWriter.open(out, scan_output(out))
    done = []
    runner = BatchRunner(answerer, writer, on_done=done.append, **kw)
    try:
        rows = asyncio.run(runner.run(qs))
    finally:
        writer.close()
    return rows, done, [json.loads(line) for line in out.read_text().splitlines()]


def test_concurrency_is_bounded_and_every_question_gets_one_row(tmp_path):
    answerer = StubAnswerer()
    ids = [f"q{i}" for i in range(20)]
    rows, done, written = run(tmp_path, answerer, questions(*ids), concurrency=4)
    assert answerer.max_in_flight == 4
    assert sorted(r["id"] for r in written) == sorted(ids) and len(done) == 20
    assert all(r["scores"]["em"] == 1.0 and r["meta"] == {"n": r["id"]} for r in written)


def test_failures_become_rows_and_the_batch_goes_on(tmp_path):
    rows, _, written = run(tmp_path, StubAnswerer(), questions("ok", "slow", "boom", "server"), timeout_s=0.2)
    by_id = {r["id"]: r for r in written}
    assert by_id["ok"]["error"] is None and by_id["ok"]["termination"] == "answered"
    assert by_id["slow"]["termination"] == "error_timeout" and by_id["slow"]["error"] == "no answer within 0.2 s"
    assert by_id["slow"]["usage"]["seconds"] >= 0.2
    assert by_id["boom"]["termination"] == "error_runtime"
    assert by_id["boom"]["error"] == "RuntimeError: graph bug with two lines"
    assert by_id["server"]["termination"] == "error_llm_server"
    failed = [by_id[i] for i in ("slow", "boom", "server")]
    assert all(r["scores"] is None and r["gold"] and r["model"] == "stub-model" for r in failed)


def test_an_unreachable_backend_stops_the_batch_keeping_finished_rows(tmp_path):
    answerer = StubAnswerer(delay=0.05)
    qs = questions("a", "down", *[f"later{i}" for i in range(10)])
    out = tmp_path / "out.jsonl"
    writer = OutputWriter.open(out, scan_output(out))
    runner = BatchRunner(answerer, writer, concurrency=1)
    with pytest.raises(LLMUnavailable):
        asyncio.run(runner.run(qs))
    writer.close()
    assert scan_output(out).done_ids == {"a"}


def test_llm_judge_grades_answers(tmp_path):
    verdicts = iter(["correct", "incorrect"])
    judge_backend = FakeBackend(lambda request: json.dumps({"reason": "r", "verdict": next(verdicts)}))
    judge = AnswerJudge(judge_backend)
    _, _, written = run(tmp_path, StubAnswerer(), questions("a", "b"), concurrency=1, judge=judge)
    assert [r["scores"]["judge"] for r in written] == ["correct", "incorrect"]
    assert judge.calls == 2
    prompt = judge_backend.requests[0].messages[-1].content
    assert "a answer" in prompt and "- a answer" in prompt


def test_judge_without_usable_reply_leaves_the_row_ungraded(tmp_path):
    judge = AnswerJudge(FakeBackend(lambda request: "no json at all"))
    _, _, written = run(tmp_path, StubAnswerer(), questions("a"), judge=judge)
    assert written[0]["scores"]["judge"] is None and written[0]["scores"]["em"] == 1.0


def test_rows_without_gold_are_not_scored(tmp_path):
    _, _, written = run(tmp_path, StubAnswerer(), questions("a", gold=False))
    assert written[0]["scores"] is None and written[0]["gold"] == []
