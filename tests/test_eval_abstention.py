"""An abstention scores 0 EM / 0 F1 and is counted apart, in the batch summary and in the eval report."""

from __future__ import annotations

import pytest
from deepsearch.agent.batch.metrics import summarise, summary_table
from deepsearch.agent.eval.report import EvalReport, overview_rows, render_markdown
from deepsearch.agent.eval.scoring import ModeReport, accuracy_by_hops
from deepsearch.traces.scoring import is_abstention, row_abstained, score_answer, score_result
from rich.console import Console

# A MuSiQue question the agent abstained on; the abstention text shares "actress", "in", "a" with the gold.
GOLD = ["for Best Performance by a Leading Actress in a Play in Ondine", "leading actress"]
ABSTENTION = ("I could not find evidence that answers this question. What I found: What did the actress in My Fair "
              "Lady win a Tony for? → My Fair Lady (film).")  # fmt: skip


def row(qid: str, *, termination: str, short_answer: str, answer: str, gold=GOLD, error=None, judge=None, hops=2):
    """A row as `deepsearch batch` writes it today: scores of `short_answer or answer`."""
    scores = score_answer(short_answer or answer, gold).model_dump() | {"judge": judge}
    return {"id": qid, "question": "q", "answer": answer, "short_answer": short_answer, "termination": termination,
            "gold": gold, "scores": scores, "error": error, "usage": {"llm_calls": 9},
            "meta": {"hops": hops}}  # fmt: skip


def abstained_rows() -> list[dict]:
    return [row("a", termination="abstained", short_answer="", answer=ABSTENTION),
            row("b", termination="abstained", short_answer="", answer=ABSTENTION.replace("Fair", "Fine"))]  # fmt: skip


def test_the_abstention_text_would_earn_f1_but_scores_zero():
    assert score_answer(ABSTENTION, GOLD).f1 > 0.1  # the bug: explanatory text overlaps the gold
    assert score_result("", "abstained", GOLD).model_dump() == {"em": 0.0, "f1": 0.0, "judge": None}
    assert score_result("unknown", "abstained", GOLD).f1 == 0.0  # closed-book "unknown" abstains too
    assert score_result("", "answered", GOLD).f1 == 0.0  # no short answer is no answer
    assert score_result("Leading Actress", "answered", GOLD).em == 1.0
    assert score_result("", "abstained", []).em is None  # no gold, no score


def test_what_counts_as_an_abstention():
    assert is_abstention("abstained", "x") and is_abstention("plateau", "  ") and not is_abstention("answered", "x")
    assert not row_abstained({"termination": "error_timeout", "short_answer": "", "error": "no answer in 5 s"})
    assert not row_abstained({"termination": "answered"})  # an older row without short_answer: by termination


def test_batch_summary_scores_abstentions_zero_and_counts_them():
    rows = abstained_rows()
    assert sum(r["scores"]["f1"] for r in rows) > 0  # what the rows hold
    s = summarise(rows)
    assert (s.em, s.f1, s.abstained, s.abstention_rate) == (0.0, 0.0, 2, 1.0)
    table = _text(summary_table(s))
    assert "abstained" in table and "2 (100.0%)" in table


def test_abstentions_sit_beside_answers_errors_and_judge_verdicts():
    rows = [*abstained_rows(),
            row("c", termination="answered", short_answer="leading actress", answer="She won for … [1]"),
            row("d", termination="error_timeout", short_answer="", answer="", error="no answer within 5 s"),
            row("e", termination="abstained", short_answer="", answer=ABSTENTION, judge="correct")]  # fmt: skip
    s = summarise(rows)
    assert s.em == pytest.approx(1 / 5) and s.f1 == pytest.approx(1 / 5)
    assert (s.abstained, s.abstention_rate, s.errors) == (3, 0.6, 1)
    assert (s.judged, s.judge_accuracy) == (1, 0.0)  # a judge that liked the abstention text is overruled


def test_eval_report_shows_abstained_apart_in_table_hops_and_json(tmp_path):
    rows = [*abstained_rows(), row("c", termination="answered", short_answer="x", answer="x", hops=3)]
    hops = accuracy_by_hops(rows)
    assert [(h.hops, h.questions, h.f1, h.abstained) for h in hops] == [("2", 2, 0.0, 2), ("3", 1, 0.0, 0)]
    mode = ModeReport(mode="research", summary=summarise(rows), by_hops=hops)
    report = EvalReport(dataset="musique", format="musique", questions=3, selection="all", backend="fake",
                        modes=[mode])  # fmt: skip
    overview = dict((r[0], r[1]) for r in overview_rows(report)[1])
    assert overview["F1"] == "0.0%" and overview["abstained (scored 0)"] == "2 (66.7%)"
    markdown = render_markdown(report, tmp_path / "svg")
    assert "| research | 2 | 2 | 0.0% | 0.0% | 2 |" in markdown
    summary = report.model_dump(mode="json")["modes"][0]["summary"]
    assert (summary["abstained"], summary["abstention_rate"], summary["f1"]) == (2, 0.6667, 0.0)


def _text(renderable) -> str:
    console = Console(record=True, width=100, no_color=True)
    console.print(renderable)
    return console.export_text()
