"""The output file: whole appended lines, resume bookkeeping, a cut-off tail removed, failed rows re-asked."""

from __future__ import annotations

import json

from deepsearch.agent.batch.output import OutputWriter, scan_output
from deepsearch.agent.batch.rows import BatchRow, failed_row
from deepsearch.agent.result import RunUsage


def row(qid: str, **extra) -> BatchRow:
    return BatchRow(id=qid, question=f"question {qid}", answer="A", mode="closed_book", termination="answered",
                    usage=RunUsage(llm_calls=1), backend="fake", model="m", **extra)  # fmt: skip


def test_rows_are_whole_lines_with_id_first(tmp_path):
    out = tmp_path / "out.jsonl"
    writer = OutputWriter.open(out, scan_output(out))
    writer.append(row("q1"))
    writer.append(failed_row("q2", "Q?", mode="research", termination="error_timeout", error="slow", backend="b",
                             model="m", gold=["x"]))  # fmt: skip
    writer.close()
    lines = out.read_text().splitlines()
    assert [next(iter(json.loads(line))) for line in lines] == ["id", "id"]
    second = json.loads(lines[1])
    assert second["error"] == "slow" and second["termination"] == "error_timeout" and second["gold"] == ["x"]
    found = scan_output(out)
    assert found.done_ids == {"q1", "q2"} and found.torn_bytes == 0 and not found.bad_lines


def test_torn_tail_is_cut_and_not_counted_as_done(tmp_path):
    out = tmp_path / "out.jsonl"
    whole = row("q1").to_line()
    out.write_bytes(whole + row("q2").to_line()[:40])
    found = scan_output(out)
    assert found.done_ids == {"q1"} and found.torn_bytes == 40
    writer = OutputWriter.open(out, found)
    writer.append(row("q2"))
    writer.close()
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["q1", "q2"]


def test_lines_that_are_not_rows_are_reported_and_kept(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'garbage\n{"no_id": 1}\n\n' + row("q1").to_line())
    found = scan_output(out)
    assert found.bad_lines == [1, 2] and found.done_ids == {"q1"}


def test_keep_rows_rewrites_without_failed_rows(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(row("q1").to_line() + row("q2", error="boom").to_line())
    found = scan_output(out)
    keep = [r for r in found.rows if not r.get("error")]
    OutputWriter.open(out, found, keep_rows=keep).close()
    assert scan_output(out).done_ids == {"q1"}
    assert not list(tmp_path.glob(".*rewrite"))


def test_missing_file_scans_empty(tmp_path):
    assert scan_output(tmp_path / "none.jsonl").rows == []
