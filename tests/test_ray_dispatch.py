"""The Ray driver loop without a cluster: scripted worker handles stand in for actors.

Each handle's `answer.remote(question)` returns a ref whose future is already settled with what the
script says: an answer, a lost worker (Ray's ActorUnavailableError), a bug inside the worker
(RayTaskError) or a fatal failure. Retries, error rows, the fatal stop and the stored trajectories
are checked here; the real cluster runs in test_ray_batch.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from deepsearch.agent.batch.inputs import BatchQuestion
from deepsearch.agent.batch.output import OutputWriter, scan_output
from deepsearch.agent.batch.rows import BatchRow
from deepsearch.agent.config import Settings
from deepsearch.agent.distributed.pool import Worker, WorkerPool
from deepsearch.agent.distributed.ray_runner import Dispatcher, RayBatchJob
from deepsearch.agent.distributed.trajectories import stable_trace_id
from deepsearch.agent.distributed.worker import RemoteFailure, WorkDone
from deepsearch.agent.errors import DeepsearchError
from deepsearch.agent.result import RunUsage
from deepsearch.traces.reader import log_paths

from tests.ray_support import ray

Script = Callable[[BatchQuestion, int], object]  # (question, call number on this worker) -> result or exception


class Ref:
    def __init__(self, outcome: object):
        self.outcome = outcome

    def future(self) -> concurrent.futures.Future:
        f: concurrent.futures.Future = concurrent.futures.Future()
        if isinstance(self.outcome, BaseException):
            f.set_exception(self.outcome)
        else:
            f.set_result(self.outcome)
        return f


class Handle:
    def __init__(self, script: Script):
        self.script, self.calls = script, 0
        handle = self

        class _Answer:
            @staticmethod
            def remote(question: BatchQuestion) -> Ref:
                handle.calls += 1
                return Ref(script(question, handle.calls))

        self.answer = _Answer


class ScriptedPool(WorkerPool):
    """`recover` brings a worker back (a restart) or lets it go, as the test says."""

    def __init__(self, scripts: list[Script], restarts: bool = True):
        super().__init__([Worker(i, Handle(s), slots=2) for i, s in enumerate(scripts)])
        self.restarts = restarts

    async def recover(self, worker: Worker, pause_s: float = 0.0) -> None:
        await asyncio.sleep(0)
        worker.state = "up" if self.restarts else "dead"
        worker.restarts += self.restarts


def answered(q: BatchQuestion, output: Path) -> WorkDone:
    trace_id = stable_trace_id(str(output), q.id)
    row = BatchRow(
        id=q.id, question=q.question, answer="Paris", short_answer="Paris", mode="closed_book", termination="answered",
        usage=RunUsage(llm_calls=1), backend="openai", model="m", trace_id=trace_id,
    )  # fmt: skip
    log = json.dumps({"ev": "start", "trace_id": trace_id}) + "\n"
    return WorkDone(row=row, trajectory=log.encode())


def lost() -> Exception:
    return ray.exceptions.ActorUnavailableError("the worker died", b"\x00" * 16)


def questions(n: int) -> list[BatchQuestion]:
    return [BatchQuestion(id=f"q{i}", question=f"question {i}?") for i in range(n)]


def dispatch(tmp_path: Path, pool: WorkerPool, todo: list[BatchQuestion], max_attempts: int = 3) -> list[dict]:
    settings = Settings()
    settings.traces.dir = tmp_path / "traces"
    settings.ray.max_attempts = max_attempts
    output = tmp_path / "out.jsonl"
    job = RayBatchJob(settings, output, address="local", closed_book=True)
    job.pool = pool
    writer = OutputWriter.open(output, scan_output(output))
    try:
        asyncio.run(Dispatcher(job, writer, on_done=lambda row: None).run(todo))
    finally:
        writer.close()
    return scan_output(output).rows


def test_questions_of_a_lost_worker_are_retried_once_each(tmp_path):
    out = tmp_path / "out.jsonl"
    pool = ScriptedPool([lambda q, n: lost() if n <= 2 else answered(q, out)])  # its first two die with it
    rows = dispatch(tmp_path, pool, questions(5))
    assert sorted(r["id"] for r in rows) == [f"q{i}" for i in range(5)] and not any(r["error"] for r in rows)
    worker = pool.workers[0]
    assert worker.lost == 2 and worker.restarts >= 1 and worker.answered == 5
    logs = log_paths(tmp_path / "traces")  # one stored trajectory per question, named as its row says
    assert sorted(p.stem for p in logs) == sorted(r["trace_id"] for r in rows)


def test_a_question_that_keeps_losing_its_worker_becomes_an_error_row(tmp_path):
    out = tmp_path / "out.jsonl"
    doomed = {"q1"}
    pool = ScriptedPool([lambda q, n: lost() if q.id in doomed else answered(q, out)])
    rows = {r["id"]: r for r in dispatch(tmp_path, pool, questions(3), max_attempts=2)}
    assert sorted(rows) == ["q0", "q1", "q2"]
    assert rows["q1"]["termination"] == "error_worker_lost" and "died 2 time(s)" in rows["q1"]["error"]
    assert rows["q1"]["mode"] == "closed_book" and rows["q1"]["trace_id"] is None
    assert rows["q0"]["error"] is None and pool.workers[0].lost == 2


def test_other_workers_take_over_while_one_is_down_for_good(tmp_path):
    out = tmp_path / "out.jsonl"
    pool = ScriptedPool([lambda q, n: lost(), lambda q, n: answered(q, out)], restarts=False)
    rows = dispatch(tmp_path, pool, questions(6))
    assert sorted(r["id"] for r in rows) == [f"q{i}" for i in range(6)] and not any(r["error"] for r in rows)
    assert pool.workers[0].state == "dead" and pool.workers[1].answered == 6


def test_every_worker_dead_stops_the_batch_and_keeps_what_was_written(tmp_path):
    out = tmp_path / "out.jsonl"
    pool = ScriptedPool([lambda q, n: answered(q, out) if n == 1 else lost()], restarts=False)
    with pytest.raises(DeepsearchError, match="every Ray worker died; 3 question"):
        dispatch(tmp_path, pool, questions(4))
    assert [r["id"] for r in scan_output(out).rows] == ["q0"]


def test_a_fatal_failure_on_a_worker_stops_the_batch_with_its_message(tmp_path):
    failure = RemoteFailure(kind="LLMUnavailable", message="cannot reach the LLM at http://x/v1", exit_code=2)
    pool = ScriptedPool([lambda q, n: WorkDone(fatal=failure)])
    with pytest.raises(DeepsearchError, match="cannot reach the LLM") as e:
        dispatch(tmp_path, pool, questions(2))
    assert e.value.exit_code == 2


def test_a_bug_inside_a_worker_is_that_questions_error_row_not_a_retry(tmp_path):
    out = tmp_path / "out.jsonl"

    def script(q: BatchQuestion, n: int) -> object:
        if q.id == "q0":
            return ray.exceptions.RayTaskError("answer", "Traceback…", KeyError("boom"))
        return answered(q, out)

    pool = ScriptedPool([script])
    rows = {r["id"]: r for r in dispatch(tmp_path, pool, questions(2))}
    assert rows["q0"]["termination"] == "error_worker" and "KeyError" in rows["q0"]["error"]
    assert pool.workers[0].handle.calls == 2 and pool.workers[0].lost == 0
