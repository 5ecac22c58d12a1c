"""A research batch against the fake OpenAI-compatible server injecting faults at a rate (shared by a test
and `bench.fault_suite`): the real batch runner, output writer, research graph and sample index; only the
retry backoff is shortened so that hundreds of retries take milliseconds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from deepsearch.agent.batch.answerers import build_answerer
from deepsearch.agent.batch.inputs import BatchQuestion
from deepsearch.agent.batch.output import OutputWriter, scan_output
from deepsearch.agent.batch.runner import BatchRunner
from deepsearch.agent.config import load_settings
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from deepsearch.traces.reader import log_paths, read_log
from pydantic import BaseModel, Field

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import SAMPLE, ScriptedModel, build_sample_index, server_responder


class FaultBatchReport(BaseModel):
    questions: int
    rows: int
    lost: int = Field(description="questions without an output row")
    duplicated: int = Field(description="questions with more than one row")
    answered: int = Field(description="rows with an answer")
    abstained: int = Field(description="rows that say no answer could be given (termination abstained)")
    explicit_errors: int = Field(description="rows with an error message and an error_<kind> termination")
    unexplained: int = Field(description="rows with no answer, no abstention and no explicit error")
    faults_injected: dict[str, int]
    terminations: dict[str, int]
    calls_retried: int = Field(description="LLM calls in trajectories that needed transport retries")
    structured_repairs: int = Field(description="structured calls repaired, re-asked or given a fallback")
    calls_failed: int = Field(description="LLM calls recorded with an error (no output after retries)")
    unreadable_trajectories: int
    seconds: float

    @property
    def completion_rate(self) -> float:
        """Share of questions that ended with a row that says what happened (answer, abstention or error)."""
        return (self.answered + self.abstained + self.explicit_errors) / self.questions


def _questions(n: int) -> list[BatchQuestion]:
    samples = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    picks = enumerate(samples[i % len(samples)] for i in range(n))
    return [BatchQuestion(id=f"q{i}", question=p["question"], answers=p["answers"], line=i + 1) for i, p in picks]


async def run_faulty_batch(
    directory: Path,
    *,
    questions: int = 200,
    fault_rate: float = 0.2,
    seed: int = 1,
    concurrency: int = 16,
    closed_book: bool = False,
    faults: dict[int, str] | None = None,
    overrides: dict | None = None,
) -> FaultBatchReport:
    """`closed_book`: one LLM call per question; `faults`: a fault at chosen completion requests (1-based);
    `overrides`: more settings (dotted keys), e.g. a lighter graph."""
    index = build_sample_index(directory)
    out = directory / "answers.jsonl"
    asked = _questions(questions)
    started = time.perf_counter()
    with FakeOpenAIServer(
        responder=server_responder(ScriptedModel(closed_book={"answer": "Chief of Protocol"})),
        fault_rate=fault_rate,
        seed=seed,
        faults=faults,
        timeout_sleep_s=0.4,
    ) as server:
        settings = load_settings(
            overrides={
                "llm.backend": "openai", "llm.base_url": [server.base_url], "llm.timeout_s": 0.25,
                "llm.max_retries": 3, "llm.concurrency": concurrency, "agent.indexes": [str(index)],
                "agent.web": False, "traces.dir": str(directory / "traces"), "cache.dir": str(directory / "cache"),
            } | (overrides or {})
        ).settings  # fmt: skip
        backend = OpenAIBackend(settings.llm, backoff_base_s=0.005, backoff_cap_s=0.05)
        answerer = build_answerer(settings, backend, closed_book=closed_book, batch=out)
        writer = OutputWriter.open(out, scan_output(out))
        try:
            await BatchRunner(answerer, writer, concurrency=concurrency, timeout_s=60).run(asked)
        finally:
            writer.close()
            answerer.close()
            await backend.aclose()
        injected = Counter(server.injected)
    seconds = time.perf_counter() - started
    return _report(asked, out, directory / "traces", injected, seconds)


def _report(asked: list[BatchQuestion], out: Path, traces: Path, injected: Counter, seconds: float) -> FaultBatchReport:
    rows = scan_output(out).rows
    per_id = Counter(str(r["id"]) for r in rows)
    answered = sum(1 for r in rows if r["answer"] and not r.get("error"))
    explicit = sum(1 for r in rows if r.get("error") and str(r["termination"]).startswith("error_"))
    # A garbled reply twice over ends in the typed fallback: an explicit abstention, not a lost answer.
    abstained = sum(1 for r in rows if not r["answer"] and not r.get("error") and r["termination"] == "abstained")
    retried = repaired = failed = unreadable = 0
    for path in log_paths(traces):
        trajectory, report = read_log(path)
        if trajectory is None or report.errors:
            unreadable += 1
            continue
        for step in trajectory.steps:
            if step.kind == "llm_call":
                retried += step.retries > 0
                repaired += step.status in ("repaired", "retried", "fallback")
                failed += step.error is not None
    return FaultBatchReport(
        questions=len(asked), rows=len(rows), lost=sum(1 for q in asked if q.id not in per_id),
        duplicated=sum(1 for n in per_id.values() if n > 1), answered=answered, abstained=abstained,
        explicit_errors=explicit, unexplained=len(rows) - answered - abstained - explicit,
        faults_injected=dict(injected),
        terminations=dict(Counter(str(r["termination"]) for r in rows)), calls_retried=retried,
        structured_repairs=repaired, calls_failed=failed, unreadable_trajectories=unreadable, seconds=round(seconds, 2),
    )  # fmt: skip
