"""`deepsearch eval` end to end on a small HotpotQA slice: pooled index (cached), baseline, reports."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from deepsearch.agent.batch.metrics import summarise
from deepsearch.agent.errors import UsageError
from deepsearch.agent.eval.report import EvalReport, charts, write_report
from deepsearch.agent.eval.scoring import ModeReport, accuracy_by_hops, evidence_scores

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import SAMPLE, ScriptedModel, server_responder


def ircot_file(tmp_path):
    """The sample corpus's questions in the IRCoT HotpotQA format, their paragraphs as contexts."""
    paragraphs = [json.loads(line) for line in (SAMPLE / "hotpot_sample.jsonl").read_text().splitlines()]
    path = tmp_path / "dev.jsonl"
    with path.open("w") as f:
        for q in map(json.loads, (SAMPLE / "questions.jsonl").read_text().splitlines()):
            contexts = [
                {
                    "id": str(i),
                    "title": p["title"],
                    "paragraph_text": p["text"],
                    "is_supporting": p["title"] in q["supporting_titles"],
                }
                for i, p in enumerate(paragraphs)
            ]
            record = {"question_id": q["id"], "question_text": q["question"],
                      "answers_objects": [{"spans": q["answers"]}], "contexts": contexts}  # fmt: skip
            f.write(json.dumps(record) + "\n")
    return path


def test_eval_with_baseline_and_reports(tmp_path, cli_env):
    data = ircot_file(tmp_path)
    with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as server:
        args = [sys.executable, "-m", "deepsearch.agent", "eval", str(data), "--baseline", "--judge", "--limit", "3",
                "--llm-base-url", server.base_url, "-o", str(tmp_path / "ev.jsonl"), "--report",
                str(tmp_path / "r.html"), "--summary-json", str(tmp_path / "s.json")]  # fmt: skip
        first = subprocess.run(args, env=cli_env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        again = subprocess.run([*args[:-4], "--resume", "--report", str(tmp_path / "r.md")], env=cli_env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "indexing 40 passages" in first.stderr and "indexing" not in again.stderr  # the pool is cached
    figures = json.loads((tmp_path / "s.json").read_text())
    research, closed = figures["modes"]
    assert research["mode"] == "research" and closed["mode"] == "closed_book"
    assert research["summary"]["questions"] == 3 and research["summary"]["em"] == pytest.approx(1 / 3, abs=1e-3)
    assert research["summary"]["judge_accuracy"] == pytest.approx(1 / 3, abs=1e-3)
    assert research["evidence_recall"] > 0 and research["gain_by_round"]
    assert closed["summary"]["abstention_rate"] == 1.0 and closed["evidence_recall"] == 0.0
    assert len((tmp_path / "ev.closed_book.jsonl").read_text().splitlines()) == 3
    html = (tmp_path / "r.html").read_text()
    assert "cited gold passages (recall)" in html and html.count("<svg") == 3
    assert (tmp_path / "r_files" / "gain_by_round.svg").is_file() and "r_files/llm_calls.svg" in (
        tmp_path / "r.md"
    ).read_text()


def test_question_only_sets_need_web_or_closed_book(tmp_path, cli_env):
    path = tmp_path / "b.json"
    path.write_text(json.dumps([{"Question": "Q?", "source": "bamboogle", "id": "b1", "answer": ["a"]}]))
    done = subprocess.run([sys.executable, "-m", "deepsearch.agent", "eval", str(path)], env=cli_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "has no passages to search" in done.stderr and "Traceback" not in done.stderr


def row(em, hops, cited, gold, error=None):
    return {"id": str(em), "gold": ["g"], "scores": {"em": em, "f1": em}, "error": error, "termination": "answered",
            "usage": {"llm_calls": 4}, "meta": {"hops": hops, "gold_passages": gold},
            "citations": [{"source": f"pool://{p}"} for p in cited]}  # fmt: skip


def test_evidence_and_hop_figures():
    rows = [row(1.0, 2, ["a", "x"], ["a", "b"]), row(0.0, 3, [], ["c"]), row(1.0, 3, ["c"], ["c"])]
    recall, precision, n = evidence_scores(rows)
    assert (recall, precision, n) == (pytest.approx((0.5 + 0 + 1) / 3, abs=1e-3), 0.75, 3)
    assert [(h.hops, h.questions, h.em) for h in accuracy_by_hops(rows)] == [("2", 1, 1.0), ("3", 2, 0.5)]


def test_charts_are_well_formed_svg_and_bad_report_names_are_refused(tmp_path):
    rows = [row(1.0, 2, ["a"], ["a"]), row(0.0, 4, [], ["c"])]
    mode = ModeReport(mode="research", summary=summarise(rows), by_hops=accuracy_by_hops(rows), llm_calls=[4, 30])
    report = EvalReport(dataset="d", format="f", questions=2, selection="all", backend="fake", modes=[mode])
    for svg in charts(report).values():
        ET.fromstring(svg)
    with pytest.raises(UsageError, match=".html or .md"):
        write_report(report, tmp_path / "r.pdf")
