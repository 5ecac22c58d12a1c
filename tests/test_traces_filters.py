"""Export filters select what they say, in order, and report how many runs each left."""

from datetime import UTC, datetime, timedelta

import pytest
from deepsearch.traces.filters import RunFilter, is_validation, quantile, select_runs
from deepsearch.traces.index import RunSummary

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(i: int, **kw) -> RunSummary:
    base = dict(
        id=f"r{i}",
        file=f"r{i}.jsonl",
        mtime_ns=0,
        size=0,
        created=T0 + timedelta(minutes=i),
        status="complete",
        question=f"question {i}",
        answer="an answer",
        termination="answered",
        correct=True,
        tokens=100,
        tool_calls=2,
        info_gain=0.5,
    )
    return RunSummary(**(base | kw))


def ids(runs):
    return [r.id for r in runs]


def test_unfinished_failed_and_empty_runs_never_export():
    runs = [
        run(0),
        run(1, status="incomplete"),
        run(2, status="damaged"),
        run(3, termination="error_llm"),
        run(4, answer=""),
        run(5, termination="cancelled"),
    ]
    kept, counts = select_runs(runs, RunFilter())
    assert ids(kept) == ["r0"] and [(c.name, c.kept) for c in counts] == [("runs", 6), ("finished", 4), ("answered", 1)]


def test_each_filter_keeps_exactly_its_runs():
    runs = [
        run(0),
        run(1, termination="plateau"),
        run(2, correct=False),
        run(3, correct=None),
        run(4, tool_calls=9),
        run(5, info_gain=0.01),
    ]
    assert ids(select_runs(runs, RunFilter(terminations=["plateau"]))[0]) == ["r1"]
    assert ids(select_runs(runs, RunFilter(correct_only=True))[0]) == ["r0", "r1", "r4", "r5"]
    assert "r4" not in ids(select_runs(runs, RunFilter(max_tool_calls=2))[0])
    assert "r5" not in ids(select_runs(runs, RunFilter(min_info_gain=0.1))[0])


def test_efficiency_quantile_uses_correct_runs_as_the_bar():
    runs = [run(i, tool_calls=i, tokens=100 * i) for i in range(1, 6)] + [
        run(9, tool_calls=1, tokens=50, correct=False)
    ]
    kept, counts = select_runs(runs, RunFilter(efficiency_quantile=0.5))
    assert ids(kept) == ["r1", "r2", "r3", "r9"]  # median of correct runs: 3 calls, 300 tokens
    assert counts[-1].name == "efficiency_q0.5" and "tool calls <= 3" in counts[-1].note
    none_correct = [run(1, correct=False)]
    kept, counts = select_runs(none_correct, RunFilter(efficiency_quantile=0.5))
    assert ids(kept) == ["r1"] and "not applied" in counts[-1].note


def test_dedupe_keeps_the_correct_then_cheapest_run_per_question():
    q = "Who wrote Hamlet?"
    runs = [
        run(0, question=q, correct=False, tokens=10),
        run(1, question="who wrote hamlet", tokens=500),
        run(2, question=q, tokens=200),
        run(3),
    ]
    assert ids(select_runs(runs, RunFilter(dedupe=True))[0]) == ["r2", "r3"]


def test_split_is_deterministic_by_normalised_question_and_near_the_fraction():
    assert is_validation("Who wrote Hamlet?", 0.5) == is_validation("who wrote  hamlet", 0.5)
    share = sum(is_validation(f"question {i}", 0.2) for i in range(2000)) / 2000
    assert 0.17 < share < 0.23
    assert not any(is_validation(f"q{i}", 0.0) for i in range(100))


def test_quantile_interpolates_like_numpy():
    assert quantile([1, 2, 3, 4], 0.5) == pytest.approx(2.5)
    assert quantile([5], 0.9) == 5 and quantile([1, 2, 3, 4, 5], 1.0) == 5
