"""/report inside a chat session: a question researched as a report, printed, optionally saved, and kept."""

from deepsearch.agent.report.section import NOTHING_FOUND

from tests.chat_support import ChatRun
from tests.graph_support import ScriptedModel, build_sample_index, fake_backend

Q = "Who portrayed Corliss Archer in the film Kiss and Tell?"


def test_report_command_writes_a_report_for_a_question_and_for_the_last_one(tmp_path, monkeypatch):
    index_dir = build_sample_index(tmp_path)
    model = ScriptedModel()
    saved = tmp_path / "review.html"
    lines = ["/report", Q, f"/report -o {saved}", f"/report -o {tmp_path}/nowhere/x.md {Q}", "/report -o"]
    run = ChatRun(tmp_path, index_dir, fake_backend(model), lines, monkeypatch, detect_ambiguity=False)
    assert "error: give the question: /report" in run.text  # nothing asked yet: /report needs a question
    asked, report = run.turns
    assert asked.result.report is None and report.question == Q  # /report with no question: the last one
    info = report.result.report
    assert info is not None and info.cited_sentences >= 1 and report.status == "answered"
    assert "Summary" in run.text and "Sources" in run.text and "Verified citations:" in run.text
    assert model.roles().count("outliner") == 1 and "section_writer" in model.roles()
    page = saved.read_text()
    assert page.startswith("<!DOCTYPE html>") and '<a href="#source-1">[1]</a>' in page
    assert f"report saved to {saved}" in run.text
    assert "error: cannot write the report: folder" in run.text and "error: /report -o needs a file" in run.text
    assert NOTHING_FOUND not in report.result.answer
