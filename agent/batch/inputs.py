"""Batch input: JSONL or CSV rows with `id`, `question` and optional `answer` / `answers`.

A bad row never stops a batch: it becomes an InputProblem with its line number, and the rest is read.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import UsageError


class BatchQuestion(BaseModel):
    id: str
    question: str
    answers: list[str] = Field(default_factory=list, description="gold answers; empty = not scored")
    line: int = Field(0, description="where the row starts in the input file (1-based)")
    meta: dict[str, Any] = Field(default_factory=dict, description="dataset fields carried to the output row")


class InputProblem(BaseModel):
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def derived_id(question: str) -> str:
    """A stable id for a row without one, so `--resume` recognises it in a later run."""
    return "q-" + hashlib.sha1(" ".join(question.split()).encode()).hexdigest()[:12]


def _gold(row: dict[str, Any]) -> list[str]:
    value = row.get("answers")
    if value in (None, "", []):
        value = row.get("answer")
    if value in (None, ""):
        return []
    if isinstance(value, str) and value.lstrip().startswith("["):  # a CSV cell holding a JSON list
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    values = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def question_from_row(row: Any, line: int) -> BatchQuestion | InputProblem:
    if not isinstance(row, dict):
        return InputProblem(line=line, message=f"expected a JSON object, got {type(row).__name__}")
    question = " ".join(str(row.get("question") or "").split())
    if not question:
        return InputProblem(line=line, message="no 'question'")
    raw_id = row.get("id")
    qid = str(raw_id).strip() if raw_id not in (None, "") else derived_id(question)
    if not qid:
        return InputProblem(line=line, message="empty 'id'")
    return BatchQuestion(id=qid, question=question, answers=_gold(row), line=line)


def _jsonl_rows(text: str) -> list[tuple[int, Any] | InputProblem]:
    rows: list[tuple[int, Any] | InputProblem] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            rows.append(InputProblem(line=n, message=f"not JSON ({e.msg} at column {e.colno})"))
        except (ValueError, RecursionError):  # a number over Python's digit limit, or nesting past the stack
            rows.append(InputProblem(line=n, message="not usable JSON (a number too long or nesting too deep)"))
    return rows


def _csv_rows(text: str) -> list[tuple[int, Any] | InputProblem]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames or "question" not in [f.strip() for f in reader.fieldnames]:
        raise UsageError("CSV input needs a header row with a 'question' column (and usually 'id', 'answer')")
    rows: list[tuple[int, Any] | InputProblem] = []
    start = 2
    for record in reader:
        if None in record:  # more cells than header columns
            rows.append(InputProblem(line=start, message=f"{len(record[None])} cell(s) beyond the header's columns"))
        else:
            rows.append((start, {(k or "").strip(): v for k, v in record.items()}))
        start = reader.line_num + 1
    return rows


def read_questions(path: Path) -> tuple[list[BatchQuestion], list[InputProblem]]:
    """Questions in file order (first occurrence of each id) and every row that was skipped, with why."""
    if not path.is_file():
        raise UsageError(f"no input file at {path}")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text)
    questions: list[BatchQuestion] = []
    problems: list[InputProblem] = []
    first_line: dict[str, int] = {}
    for row in rows:
        parsed = row if isinstance(row, InputProblem) else question_from_row(row[1], row[0])
        if isinstance(parsed, BatchQuestion) and parsed.id in first_line:
            parsed = InputProblem(line=parsed.line, message=f"id {parsed.id!r} repeats line {first_line[parsed.id]}")
        if isinstance(parsed, InputProblem):
            problems.append(parsed)
            continue
        first_line[parsed.id] = parsed.line
        questions.append(parsed)
    return questions, problems
