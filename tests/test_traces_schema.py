"""The committed JSON Schema matches the models; versions are checked when reading."""

import json

import pytest
from deepsearch.traces.reader import read_log
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import SCHEMA_VERSION, Header
from deepsearch.traces.schema_file import SCHEMA_PATH, generate, render


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "traces/schema.json is stale: run `python -m deepsearch.traces.schema_file` and commit it"
    )


def test_schema_covers_every_step_kind_and_event():
    defs = generate()["$defs"]
    for name in ("LLMCallStep", "ToolCallStep", "RerankStep", "JudgeStep", "InformationStep", "BudgetStep"):
        assert name in defs
    event_kinds = {m["$ref"].rsplit("/", 1)[1] for m in defs["Event"]["oneOf"]}
    assert {"StartEvent", "StepEvent", "AnnotateEvent", "FinishEvent"} <= event_kinds


def test_a_log_from_a_newer_schema_is_refused(tmp_path):
    rec = TraceRecorder.start(tmp_path, Header(question="q"))
    rec.close()
    lines = rec.path.read_text().splitlines()
    start = json.loads(lines[0])
    start["schema_version"] = SCHEMA_VERSION + 1
    rec.path.write_text(json.dumps(start) + "\n")
    traj, report = read_log(rec.path)
    assert traj is None and "newer" in report.errors[0]


@pytest.mark.parametrize("bad", ["{not json", '{"ev": "step", "seq": 1, "step": {"kind": "teleport"}}'])
def test_a_bad_line_in_the_middle_is_an_error(tmp_path, bad):
    rec = TraceRecorder.start(tmp_path, Header(question="q"))
    rec.step("budget", used={"llm_calls": 1})
    rec.close()
    first, second = rec.path.read_text().splitlines()
    rec.path.write_text(f"{first}\n{bad}\n{second}\n")
    _, report = read_log(rec.path)
    assert not report.ok and report.errors[0].startswith("line 2")
