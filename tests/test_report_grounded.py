"""Reports written by the whole pipeline with the grounded reader over the pooled MuSiQue slice: every cited
sentence is checked by the reader's own grounded verdict, removals are in the trajectory, sources complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.config import load_settings
from deepsearch.agent.eval.datasets import Dataset, load_dataset
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.agent.report.markdown import cited_sentences
from deepsearch.agent.report.models import ReportRequest
from deepsearch.traces.labels import step_labels
from deepsearch.traces.messages import to_messages
from deepsearch.traces.reader import find_log, load_trajectory

from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import local_tools

SLICE = Path(__file__).parent / "fixtures" / "musique_slice"


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(str(SLICE), Path("."))


async def write_report(tmp_path, dataset: Dataset, reader: GroundedReader, question, **agent):
    with FakeOpenAIServer(responder=reader) as server:
        overrides = {f"agent.{k}": v for k, v in agent.items()} | {
            "llm.backend": "openai", "llm.base_url": server.base_url, "llm.model": "fake-model",
            "llm.server_kind": "vllm", "llm.max_retries": 0, "traces.dir": str(tmp_path / "traces"),
            "agent.checkpoint_db": str(tmp_path / "ckpt.sqlite"), "agent.detect_ambiguity": False,
        }  # fmt: skip
        settings = load_settings(overrides=overrides).settings
        tools = local_tools(pooled_index(dataset, settings), settings)
        result = await aresearch(question.question, settings=settings, tools=tools, gold=question.answers,
                                 report=ReportRequest(words=600))  # fmt: skip
    return result, load_trajectory(find_log(settings.traces.dir, result.trace_id))


async def test_every_cited_sentence_of_a_report_is_supported_and_slips_are_removed(tmp_path, data):
    reader = GroundedReader.from_dataset(data, miscite=True)
    q = next(q for q in data.questions if len(reader.question(q.question).hops) >= 2)
    result, traj = await write_report(tmp_path, data, reader, q, max_rounds=3)
    info = result.report
    assert info is not None and result.termination != "abstained", result.answer
    quotes = {c.n: c for c in result.citations}
    pairs = cited_sentences(result.answer)
    assert pairs and len(pairs) == info.cited_sentences
    for sentence, ns in pairs:  # the reader's grounded verdict on each sentence against what it cites
        cited = [(n, "", quotes[n].quote) for n in ns]  # the passage as the writer and the verifier saw it
        assert reader.supports(q.question, sentence, cited), sentence
    # The slips were caught: drafted, revised once, still unsupported, removed, and listed in the trajectory.
    removed = [r for s in info.sections for r in s.removed]
    assert removed and all(r.reason.startswith("unsupported") for r in removed)
    assert any(s.revised for s in info.sections)
    steps = [s for s in traj.steps if s.kind == "report"]
    listed = [r["text"] for s in steps if s.stage == "section" for r in s.removed]
    assert sorted(listed) == sorted(r.text for r in removed)
    assert any(s.role == "section_reviser" for s in traj.llm_calls())
    # Every heading of the outline is in the report; the sources list holds each cited passage once.
    final = next(s for s in steps if s.stage == "checks")  # the outline as written: #k filled with answers
    assert len(final.outline) == len(next(s for s in steps if s.stage == "outline").outline)
    for entry in final.outline:
        assert f"\n## {entry['heading']}\n" in result.answer
    sources = result.answer.split("\n## Sources\n")[1]
    assert [int(n) for n in re.findall(r"^(\d+)\. \*\*", sources, re.M)] == list(range(1, len(quotes) + 1))
    assert info.sources == len(quotes) and info.verified_sentences == info.cited_sentences
    # Step labels a trainer can select report-writer records by.
    labels = step_labels(traj)
    drafts = [labels[s.index] for s in traj.llm_calls() if s.role in ("section_writer", "section_reviser")]
    assert {d["section"] for d in drafts} == {s.id for s in info.sections}
    revised = [d for d in drafts if d["revised"]]
    assert revised and all(d["claims_supported"] < d["claims"] for d in revised)  # the slip made each revise
    assert all(d["section_status"] == "written" for d in drafts)
    # As SFT data: the report body cites the conversation's passages, and every citation resolves.
    sample = to_messages(traj)
    assert sample["grounding"] == [], sample["grounding"]
    final = sample["messages"][-1]["content"]
    assert "## Sources" not in final and "trace:" not in final and "\nSources:\n[" in final


async def test_with_verification_off_the_footer_says_nothing_was_verified(tmp_path, data):
    reader = GroundedReader.from_dataset(data, miscite=True)
    q = next(q for q in data.questions if len(reader.question(q.question).hops) >= 2)
    result, _ = await write_report(tmp_path, data, reader, q, max_rounds=3, verify=False)
    info = result.report
    pairs = cited_sentences(result.answer)
    quotes = {c.n: c.quote for c in result.citations}
    unsupported = [s for s, ns in pairs if not reader.supports(q.question, s, [(n, "", quotes[n]) for n in ns])]
    assert unsupported  # the slips stay when nothing checks them
    assert info.verified_sentences == 0 and info.cited_sentences == len(pairs)
    assert f"0 of {len(pairs)} cited sentences verified" in result.answer
