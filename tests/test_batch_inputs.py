"""Batch input: JSONL and CSV rows, gold answers in their forms, problems reported with line numbers."""

from __future__ import annotations

import json

import pytest
from deepsearch.agent.batch.inputs import derived_id, read_questions
from deepsearch.agent.errors import UsageError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_rows_with_answer_forms_and_bad_lines(tmp_path):
    lines = [
        json.dumps({"id": "a", "question": "Who?", "answer": "Ann"}),
        "not json",
        "",
        json.dumps({"id": 7, "question": "  What\n is  it? ", "answers": ["x", " y ", ""]}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "b"}),
        json.dumps({"id": "a", "question": "again?"}),
        json.dumps({"question": "No id here?"}),
    ]
    questions, problems = read_questions(write(tmp_path, "in.jsonl", "\n".join(lines) + "\n"))
    assert [(q.id, q.question, q.answers, q.line) for q in questions] == [
        ("a", "Who?", ["Ann"], 1),
        ("7", "What is it?", ["x", "y"], 4),
        (derived_id("No id here?"), "No id here?", [], 8),
    ]
    assert [(p.line, p.message.split(" (")[0]) for p in problems] == [
        (2, "not JSON"),
        (5, "expected a JSON object, got list"),
        (6, "no 'question'"),
        (7, "id 'a' repeats line 1"),
    ]
    assert str(problems[0]).startswith("line 2: not JSON")


def test_derived_id_is_stable_across_whitespace():
    assert derived_id("What is  it?") == derived_id(" What is it? ")
    assert derived_id("What is it?") != derived_id("What was it?")


def test_csv_with_header_multiline_cell_and_json_list_answers(tmp_path):
    text = 'id,question,answers\nq1,"Who wrote\nHamlet?","[""Shakespeare"", ""W. Shakespeare""]"\n'
    text += "q2,Capital of France?,Paris\n"
    text += "q3,Too many,cells,here\nq4,,nothing\n"
    questions, problems = read_questions(write(tmp_path, "in.csv", text))
    assert [(q.id, q.question, q.answers, q.line) for q in questions] == [
        ("q1", "Who wrote Hamlet?", ["Shakespeare", "W. Shakespeare"], 2),
        ("q2", "Capital of France?", ["Paris"], 4),
    ]
    assert [(p.line, p.message) for p in problems] == [
        (5, "1 cell(s) beyond the header's columns"),
        (6, "no 'question'"),
    ]


def test_csv_without_question_column_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="'question' column"):
        read_questions(write(tmp_path, "in.csv", "id,text\n1,hello\n"))


def test_missing_input_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no input file"):
        read_questions(tmp_path / "absent.jsonl")
