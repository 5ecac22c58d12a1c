"""Training exports hold what the model read: every cited [n] resolves to a passage, with the text the agent's
prompt showed, in an earlier tool turn; local sources carry no machine path; what does not resolve is flagged.

Runs are real graph runs: the grounded reader (answers only from what its prompts show) over a pooled MuSiQue
slice, and the web graph against pages served on 127.0.0.1 through the real fetcher.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.config import load_settings
from deepsearch.agent.eval.datasets import load_dataset
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.messages import to_messages
from deepsearch.traces.paths import PathScrubber
from deepsearch.traces.reader import find_log, load_trajectory, log_paths

from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.search import FakeDDGS
from tests.fakes.web_server import LocalWebServer, page
from tests.graph_support import local_tools
from tests.test_graph_web import LUMERIA, QUESTION, river_model, web_settings, web_tools

SLICE = Path(__file__).parent / "fixtures" / "musique_slice"


def passages_by_n(messages: list[dict]) -> dict[int, str]:
    """n -> passage text, over the tool turns (each n once)."""
    found: dict[int, str] = {}
    for m in messages:
        if m["role"] == "tool":
            body = json.loads(m["content"])
            for p in body.get("passages", []) if isinstance(body, dict) else []:
                assert p["n"] not in found, "a passage number appears twice"
                found[p["n"]] = p["text"]
    return found


def assert_grounded(sample: dict, traj) -> None:
    final = sample["messages"][-1]["content"]
    answer = final.split("\n\nSources:")[0]
    shown = passages_by_n(sample["messages"][:-1])
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    assert cited and cited <= set(shown), (cited, sorted(shown))
    for citation in traj.final.citations:
        quote = " ".join(citation.quote.split()).removesuffix("…").strip()
        assert any(quote in " ".join(text.split()) for text in shown.values()), quote


@pytest.fixture(scope="module")
def grounded_runs(tmp_path_factory):
    """Three grounded-reader runs over the pooled MuSiQue slice (the index's files lie in a temp folder)."""
    import asyncio

    tmp = tmp_path_factory.mktemp("grounded")
    data = load_dataset(str(SLICE), Path("."))
    reader = GroundedReader.from_dataset(data)

    async def run_all():
        with FakeOpenAIServer(responder=reader) as server:
            settings = load_settings(overrides={
                "llm.backend": "openai", "llm.base_url": server.base_url, "llm.model": "fake-model",
                "llm.server_kind": "vllm", "llm.max_retries": 0, "traces.dir": str(tmp / "traces"),
                "agent.checkpoint_db": str(tmp / "ckpt.sqlite"), "agent.detect_ambiguity": False,
                "agent.max_rounds": 3, "index.dir": str(tmp / "indexes")}).settings  # fmt: skip
            index_dir = pooled_index(data, settings)
            for q in data.questions[:3]:
                await aresearch(q.question, settings=settings, tools=local_tools(index_dir, settings), gold=q.answers)
        return settings

    settings = asyncio.run(run_all())
    return settings.traces.dir, [load_trajectory(p) for p in log_paths(settings.traces.dir)]


def test_every_cited_passage_is_in_an_earlier_tool_turn_with_the_text_the_model_read(grounded_runs):
    _, trajectories = grounded_runs
    answered = [t for t in trajectories if t.final and t.final.citations]
    assert len(answered) >= 2
    for traj in answered:
        sample = to_messages(traj)
        assert sample["grounding"] == []
        assert_grounded(sample, traj)
        judged = [s for s in traj.llm_calls() if s.role == "judge"]
        prompts = "\n".join(m.content for s in judged for m in s.messages)
        # Each passage in the tool turns is word for word a passage the judge's prompt showed.
        for text in passages_by_n(sample["messages"]).values():
            assert " ".join(text.split()) in " ".join(prompts.split())


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A scripted run over an index of a folder of the user's files (the sample corpus, copied)."""
    import asyncio
    import shutil

    from deepsearch.tools.local_index import update_index

    from tests.graph_support import SAMPLE, ScriptedModel, fake_backend, settings_for

    tmp = tmp_path_factory.mktemp("folder")
    notes = tmp / "my notes"
    notes.mkdir()
    shutil.copy(SAMPLE / "hotpot_sample.jsonl", notes / "hotpot_sample.jsonl")
    update_index(tmp / "index", [notes])
    settings = settings_for(tmp)
    question = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
    result = asyncio.run(aresearch(question, settings=settings, backend=fake_backend(ScriptedModel()),
                                   tools=local_tools(tmp / "index", settings)))  # fmt: skip
    assert result.citations
    return settings.traces.dir, str(notes)


def test_local_sources_carry_the_index_name_and_relative_path_never_the_machines(folder_run, tmp_path):
    traces_dir, root = folder_run
    traj = load_trajectory(log_paths(traces_dir)[0])
    assert traj.local_roots == {"sample": [root]}
    raw = json.dumps(to_messages(traj))
    assert root in raw  # what the run recorded, before the export scrubs it
    out = tmp_path / "sft.jsonl"
    summary = export(traces_dir, out, ExportOptions(format="messages"))
    text = out.read_text()
    assert summary.files == {str(out): 1} and "local://sample/hotpot_sample.jsonl" in text
    assert root not in text and str(tmp_path.parent) not in text
    export(traces_dir, tmp_path / "private.jsonl", ExportOptions(format="messages", absolute_paths=True))
    assert root in (tmp_path / "private.jsonl").read_text()


def test_roles_prompts_lose_machine_paths_too(folder_run, tmp_path):
    traces_dir, root = folder_run
    export(traces_dir, tmp_path / "roles", ExportOptions(format="roles"))
    text = "".join(p.read_text() for p in (tmp_path / "roles").glob("*.jsonl"))
    assert "local://sample/hotpot_sample.jsonl" in text and root not in text


def test_a_citation_whose_passage_no_tool_turn_holds_is_flagged_and_left_out(grounded_runs, tmp_path):
    traces_dir, trajectories = grounded_runs
    traj = next(t for t in trajectories if t.final and t.final.citations)
    # The same run, but its evidence never shown: the rerank steps lose the passage texts' keys.
    broken = traj.model_copy(deep=True)
    for step in broken.steps:
        if step.kind == "rerank":
            for c in step.candidates:
                c.evidence_id = None
    problems = to_messages(broken)["grounding"]
    assert problems and "in no tool result" in problems[0]

    # Through the exporter: a log whose cited evidence id was changed after the fact.
    log = find_log(traces_dir, traj.id)
    copy_dir = tmp_path / "traces"
    (copy_dir / "runs").mkdir(parents=True)
    lines = log.read_text().splitlines()
    finish = json.loads(lines[-1])
    assert finish["ev"] == "finish"
    finish["final"]["citations"][0]["evidence_id"] = "ev-not-shown"
    (copy_dir / "runs" / log.name).write_text("\n".join([*lines[:-1], json.dumps(finish)]) + "\n")
    summary = export(copy_dir, tmp_path / "out.jsonl", ExportOptions(format="messages"))
    assert summary.dropped == {"ungrounded": 1} and not summary.files
    assert summary.ungrounded_examples[0].startswith(traj.id)
    flagged = export(copy_dir, tmp_path / "flagged.jsonl", ExportOptions(format="messages", keep_ungrounded=True))
    record = json.loads((tmp_path / "flagged.jsonl").read_text())
    assert flagged.ungrounded == 1 and record["meta"]["grounded"] is False and record["meta"]["grounding"]


def test_an_old_log_without_shown_passages_is_flagged_not_passed_off_as_grounded(grounded_runs):
    _, trajectories = grounded_runs
    traj = next(t for t in trajectories if t.final and t.final.citations).model_copy(deep=True)
    for step in traj.steps:
        if step.kind == "rerank":
            for c in step.candidates:
                c.text_hash = None
    sample = to_messages(traj)
    assert any("recorded without the passages" in p for p in sample["grounding"])


async def test_web_runs_put_page_passages_in_the_fetch_turn_that_returned_them(tmp_path):
    with LocalWebServer() as server:
        server.routes["/lumeria"] = page(LUMERIA)
        hit = {"title": "Lumeria", "href": server.url("/lumeria"), "body": "Lumeria is a harbour city"}
        settings = web_settings(tmp_path)
        from tests.graph_support import fake_backend

        result = await aresearch(QUESTION, settings=settings, backend=fake_backend(river_model()),
                                 tools=web_tools(settings, FakeDDGS(*[[hit]] * 10)))  # fmt: skip
    traj = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    sample = to_messages(traj)
    assert sample["grounding"] == []
    assert_grounded(sample, traj)
    names = [c["function"]["name"] for m in sample["messages"] for c in m.get("tool_calls") or []]
    assert names[:2] == ["web_search", "fetch_page"]  # the search's turn, then the fetch it led to
    fetch_result = next(json.loads(m["content"]) for m in sample["messages"] if m.get("name") == "fetch_page")
    assert fetch_result["url"] == server.url("/lumeria")
    assert any("river Velt flows through Lumeria" in p["text"] for p in fetch_result["passages"])
    search_result = next(json.loads(m["content"]) for m in sample["messages"] if m.get("name") == "web_search")
    assert search_result["results"][0]["url"] == server.url("/lumeria")


def test_scrubber_replaces_roots_only_where_a_path_starts():
    scrub = PathScrubber({"notes": ["/data/notes"], "two": ["/srv/a", "/srv/b"]}, home="/home/ann")
    assert scrub.text("see /data/notes/x.md") == "see local://notes/x.md"
    assert scrub.text("/data/notesbook/x.md") == "/data/notesbook/x.md"  # another folder, not under the root
    assert scrub.text("https://example.org/data/notes/x") == "https://example.org/data/notes/x"
    assert scrub.text("/srv/b/c.txt and /srv/a/c.txt") == "local://two/b/c.txt and local://two/a/c.txt"
    assert scrub.text("/home/ann/papers/p.pdf") == "~/papers/p.pdf"
    assert scrub.clean({"k": ["/data/notes/y", 3]}) == {"k": ["local://notes/y", 3]}


def test_scrubber_on_a_json_line_matches_a_root_as_json_writes_it():
    scrub = PathScrubber({"q": ['/data/my "quoted" notes']}, home="")
    line = json.dumps({"content": json.dumps({"source": '/data/my "quoted" notes/a.md'})})
    assert json.loads(json.loads(scrub.text(line))["content"])["source"] == "local://q/a.md"
