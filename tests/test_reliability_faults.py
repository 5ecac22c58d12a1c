"""LLM faults at a 20 % rate (429, 500, timeouts, resets, malformed bodies, truncated streams, garbage) in a
batch: every question gets exactly one row, with an answer or an explicit error and its termination; no
exception escapes; retries and structured-output repairs are visible in the trajectories.
"""

from __future__ import annotations

from tests.fault_batch import run_faulty_batch


def assert_nothing_lost(report, questions: int) -> None:
    assert (report.questions, report.rows, report.lost, report.duplicated) == (questions, questions, 0, 0)
    assert report.unexplained == 0 and report.completion_rate == 1.0
    assert report.unreadable_trajectories == 0
    assert set(report.faults_injected) == {"429", "500", "timeout", "reset", "malformed_body", "truncated_stream",
                                           "garbage"}  # fmt: skip
    assert report.calls_retried > 0 and report.structured_repairs > 0  # recovered faults leave their marks


async def test_200_questions_at_20_percent_faults_all_get_a_row(tmp_path):
    report = await run_faulty_batch(tmp_path, questions=200, fault_rate=0.2, closed_book=True)
    assert_nothing_lost(report, 200)
    assert report.terminations.get("answered", 0) >= 150  # most faults are absorbed by retries
    assert all(t in ("answered", "abstained") or t.startswith("error_llm") for t in report.terminations)


async def test_research_batch_at_20_percent_faults_completes(tmp_path):
    report = await run_faulty_batch(
        tmp_path, questions=24, fault_rate=0.2, seed=3, overrides={"agent.selection": "fusion", "agent.max_rounds": 1}
    )
    assert_nothing_lost(report, 24)


async def test_a_connection_lost_through_every_retry_fails_one_question_not_the_batch(tmp_path):
    """The endpoint still lists its models, so LLMUnavailable on one question is that question's error row."""
    report = await run_faulty_batch(
        tmp_path,
        questions=6,
        fault_rate=0.0,
        closed_book=True,
        faults={3: "reset"},
        concurrency=1,
        overrides={"llm.max_retries": 0},
    )
    assert (report.rows, report.lost) == (6, 0)
    assert report.terminations == {"answered": 5, "error_llm_unreachable": 1}
