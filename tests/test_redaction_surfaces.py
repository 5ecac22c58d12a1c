"""Every credential pattern of issue 13 is masked on each surface a secret can leave by (trajectories, exports,
batch rows, error lines), while page text (stored pages, snippets, evidence blocks, quotes) keeps its words."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from deepsearch.agent.batch.inputs import BatchQuestion
from deepsearch.agent.batch.output import OutputWriter, scan_output
from deepsearch.agent.batch.runner import BatchRunner
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.agent.llm.types import ChatMessage, LLMRequest, LLMResponse, Usage
from deepsearch.agent.masking import mask_text
from deepsearch.agent.result import AskResult, Citation, RunUsage
from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.reader import load_trajectory
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.redact import Redactor, secrets_from_env
from deepsearch.traces.schema import Header

from tests.redaction_cases import ALL_FREE_TEXT, ALL_SECRETS, ENV, LEAK, LEAK_STORED, PAGE, SECRET_KEYS

ONE_LINE = " | ".join(ALL_FREE_TEXT.splitlines())
EVIDENCE = f'<evidence id="1" title="Help" source="https://x.example/help">\n{PAGE}\n</evidence>'
PASSAGE = f'<passage id="p1">\n{PAGE}\n</passage>'


class NoRedaction(Redactor):
    """What a log written by an older version (or another tool) holds: everything, unmasked."""

    def serialize(self, data, *, compact=True):
        return json.dumps(data, ensure_ascii=False)


def assert_clean(blob: str | bytes) -> None:
    text = blob.decode() if isinstance(blob, bytes) else blob
    leaked = [s for s in ALL_SECRETS if s in text]
    assert not leaked, leaked


def record_run(directory, redactor: Redactor) -> TraceRecorder:
    """One run with every pattern in our own text (prompt, output, arguments, rationale, errors) and PAGE in
    every page-text field."""
    rec = TraceRecorder.start(directory, Header(question=f"why? {ENV['GITHUB_PAT']}", gold=["x"]), redactor=redactor)
    request = LLMRequest(
        role="answerer",
        messages=[
            ChatMessage(role="system", content=ALL_FREE_TEXT),
            ChatMessage(
                role="user", content=f"Evidence:\n{EVIDENCE}\n{PASSAGE}\nMy key: {ENV['AWS_SECRET_ACCESS_KEY']}"
            ),
        ],
    )
    response = LLMResponse(text=f"x [1] {ONE_LINE}", raw_text=f"x [1] {ONE_LINE}", usage=Usage(), backend="fake")
    draft = rec.llm_call(request, response)
    rec.llm_call(request, response.model_copy(update={"text": f"y [1] {ONE_LINE}"}), supersedes=draft)  # a DPO pair
    rec.llm_call(request, None, RuntimeError(ONE_LINE))
    rec.tool_call("web_search", {"query": ONE_LINE}, results=[{"url": "https://x.example/help", "snippet": PAGE}])
    rec.tool_call(
        "fetch_page",
        {"url": "https://alice:Tr0ub4dor3x@db.example.com/x", "headers": SECRET_KEYS},
        results=[{"url": "https://x.example/help", "title": "Password: reset", "text": PAGE + LEAK}],
    )
    rec.tool_call("fetch_page", {"url": "https://y.example/"}, success=False, error=ONE_LINE)
    rec.step("judge", target="sg1", rationale=ALL_FREE_TEXT, labels=SECRET_KEYS)
    citation = {"n": 1, "evidence_id": "e1", "source": "https://x.example/help", "quote": PAGE}
    rec.finish(f"x [1] {ONE_LINE}", termination="answered", citations=[citation], gold=["x"], error=ONE_LINE)
    return rec


def assert_page_text_intact(traj) -> None:
    assert [c.text for c in traj.contents.values()] == [PAGE + LEAK_STORED]  # only the AWS key id went
    results = [r for s in traj.tool_calls() for r in s.results]
    assert [r.snippet for r in results if r.snippet] == [PAGE]
    assert "Password: reset" in [r.title for r in results]
    prompt = traj.llm_calls()[0].messages[1].content
    assert EVIDENCE in prompt and PASSAGE in prompt
    assert traj.final.citations[0].quote == PAGE


def test_trajectories_mask_every_pattern_and_keep_page_text(tmp_path):
    rec = record_run(tmp_path, Redactor(secrets_from_env(ENV)))
    assert_clean(rec.path.read_bytes())
    traj = load_trajectory(rec.path)
    assert_page_text_intact(traj)
    assert "OPENAI_API_KEY=***" in traj.llm_calls()[0].messages[0].content
    assert traj.final.error.startswith("export OPENAI_API_KEY=***")


def test_a_failed_run_error_line_is_masked(tmp_path):
    rec = TraceRecorder.start(tmp_path, Header(question="q"))
    rec.fail(RuntimeError(ONE_LINE))
    assert_clean(rec.path.read_bytes())
    assert load_trajectory(rec.path).final.error.startswith("RuntimeError: export OPENAI_API_KEY=***")


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "roles", "dpo"])
def test_exports_mask_a_log_that_was_written_unmasked(tmp_path, monkeypatch, fmt):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    rec = record_run(tmp_path / "traces", NoRedaction())
    assert any(s in rec.path.read_text() for s in ALL_SECRETS)  # the log itself leaks: only export can help
    target = tmp_path / ("roles" if fmt == "roles" else "out.jsonl")
    # A log in the older shape (no shown passages recorded) is flagged ungrounded: kept here to see its masking.
    opts = ExportOptions(format=fmt, reasoning="drop" if fmt == "messages" else "think", keep_ungrounded=True)
    summary = export(tmp_path / "traces", target, opts)
    written = "".join(Path(p).read_text() for p in summary.files)
    assert summary.files and written.strip()
    assert_clean(written)
    if fmt == "messages":
        assert summary.runs_exported == 1
        sample = json.loads(written)
        pages = [r["text"] for m in sample["messages"] if m["role"] == "tool" for r in json.loads(m["content"])
                 if "text" in r]  # fmt: skip
        assert pages == [PAGE + LEAK_STORED]


def test_export_keeps_page_text_of_a_recorded_run(tmp_path):
    rec = record_run(tmp_path / "traces", Redactor(secrets_from_env(ENV)))
    assert_page_text_intact(load_trajectory(rec.path))  # unchanged by the second pass below
    summary = export(tmp_path / "traces", tmp_path / "out.jsonl", ExportOptions(keep_ungrounded=True))
    sample = json.loads((tmp_path / "out.jsonl").read_text())
    tool_texts = [m["content"] for m in sample["messages"] if m["role"] == "tool"]
    assert summary.runs_exported == 1 and any(json.dumps(PAGE)[1:-1] in t for t in tool_texts)


class LeakyAnswerer:
    """Answers 'ok' with every pattern in the answer and PAGE as the quote; question 'boom' raises them instead."""

    mode = "research"
    backend = FakeBackend(["unused"], model="stub")

    async def __call__(self, q: BatchQuestion) -> AskResult:
        if q.id == "boom":
            raise RuntimeError(ALL_FREE_TEXT)
        citation = Citation(n=1, evidence_id="e1", source="https://x.example/help", quote=PAGE + LEAK)
        return AskResult(question=q.question, answer=f"ok [1] {ALL_FREE_TEXT}", short_answer="ok", mode="research",
                         citations=[citation], termination="answered", usage=RunUsage(), backend="fake", model="stub",
                         notes=[ONE_LINE])  # fmt: skip


def test_batch_rows_and_their_error_lines_are_masked(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out.jsonl"
    writer = OutputWriter.open(out, scan_output(out))
    qs = [BatchQuestion(id=i, question=f"{ENV['GITHUB_PAT']}?", answers=["ok"]) for i in ("fine", "boom")]
    try:
        asyncio.run(BatchRunner(LeakyAnswerer(), writer).run(qs))
    finally:
        writer.close()
    text = out.read_text()
    assert_clean(text)
    rows = {r["id"]: r for r in map(json.loads, text.splitlines())}
    assert rows["fine"]["citations"][0]["quote"] == PAGE + LEAK_STORED
    assert rows["fine"]["scores"]["em"] == 1.0  # the row is still whole and scored
    assert rows["boom"]["error"].startswith("RuntimeError: export OPENAI_API_KEY=*** ")


def test_an_error_line_for_the_terminal_is_masked():
    """`mask_text` is what `deepsearch: error: …` should print (agent/cli.py main)."""
    line = mask_text(f"cannot reach the LLM: {ONE_LINE} (key {ENV['GITHUB_PAT']})", secrets_from_env(ENV))
    assert_clean(line)
    assert line.startswith("cannot reach the LLM: export OPENAI_API_KEY=*** | connect to https://***@db.example.com/x")
