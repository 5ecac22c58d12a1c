"""Exports from synthetic runs: every messages sample checks structurally; sharegpt, roles, dpo, splits."""

import json

import pytest
from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.filters import RunFilter
from deepsearch.traces.messages import to_messages, to_sharegpt
from deepsearch.traces.pairs import preference_pairs, role_pairs
from deepsearch.traces.reader import load_trajectory, log_paths
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header
from deepsearch.traces.synthetic import record_synthetic_run


def assert_valid_chat(messages: list[dict]) -> None:
    """Roles in a valid order; every tool_call answered by exactly one tool message, right after its call."""
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert messages[-1]["role"] == "assistant" and not messages[-1].get("tool_calls")
    open_calls: list[str] = []
    for prev, m in zip(messages, messages[1:], strict=False):
        assert m["role"] in ("user", "assistant", "tool")
        if m["role"] == "tool":
            assert prev["role"] in ("assistant", "tool") and m["tool_call_id"] == open_calls.pop(0)
        else:
            assert not open_calls, f"calls {open_calls} left unanswered"
        if m.get("tool_calls"):
            open_calls = [c["id"] for c in m["tool_calls"]]
            for c in m["tool_calls"]:
                assert c["type"] == "function" and isinstance(json.loads(c["function"]["arguments"]), dict)
    ids = [c["id"] for m in messages for c in m.get("tool_calls") or []]
    assert len(ids) == len(set(ids))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    for seed in range(30):
        record_synthetic_run(d, seed)
    return d


@pytest.fixture(scope="module")
def trajectories(runs_dir):
    return [load_trajectory(p) for p in log_paths(runs_dir)]


@pytest.mark.parametrize("reasoning", ["drop", "field", "think"])
def test_every_messages_sample_is_structurally_valid(trajectories, reasoning):
    for traj in trajectories:
        sample = to_messages(traj, reasoning=reasoning)
        assert_valid_chat(sample["messages"])
        calls = [c for m in sample["messages"] for c in m.get("tool_calls") or []]
        assert len(calls) == len(traj.tool_calls())
        assert {t["function"]["name"] for t in sample["tools"]} == {"web_search", "fetch_page"}
        has_field = any("reasoning_content" in m for m in sample["messages"])
        has_think = any("<think>" in m["content"] for m in sample["messages"])
        assert (has_field, has_think) == (reasoning == "field", reasoning == "think")


def test_tool_results_carry_page_text_and_answer_cites_sources(trajectories):
    traj = trajectories[0]
    sample = to_messages(traj, max_tool_chars=50)
    fetched = [json.loads(m["content"]) for m in sample["messages"] if m.get("name") == "fetch_page"]
    # Each fetch turn holds the page's passage the model read (cut here to 50 characters), numbered.
    assert fetched and all(len(r["passages"][0]["text"]) == 50 and r["passages"][0]["n"] for r in fetched)
    final = sample["messages"][-1]["content"]
    assert final.startswith(traj.final.answer.split(" [")[0]) and "Sources:\n[" in final and "https://" in final


def test_closed_book_run_without_tools_is_a_valid_three_message_sample(tmp_path):
    rec = TraceRecorder.start(tmp_path, Header(question="Who wrote Hamlet?", mode="closed_book"))
    rec.finish("Shakespeare", termination="answered")
    sample = to_messages(load_trajectory(rec.path))
    assert [m["role"] for m in sample["messages"]] == ["system", "user", "assistant"]
    assert "Who wrote Hamlet?" in sample["messages"][1]["content"] and sample["tools"] == []


def test_sharegpt_alternates_and_merges_parallel_results(trajectories):
    for traj in trajectories:
        conv = to_sharegpt(to_messages(traj, reasoning="think"))
        sides = ["user" if t["from"] in ("human", "observation") else "model" for t in conv["conversations"]]
        assert sides[0] == "user" and sides[-1] == "model"
        assert all(a != b for a, b in zip(sides, sides[1:], strict=False)), "turns must alternate"
        assert conv["system"] and json.loads(conv["tools"])


def test_roles_are_exact_prompts_with_accepted_outputs(trajectories):
    pairs = [p for t in trajectories for p in role_pairs(t)]
    assert {p["role"] for p in pairs} == {"planner", "judge", "answerer"}
    by_step = {(t.id, s.index): s for t in trajectories for s in t.llm_calls()}
    for p in pairs:
        step = by_step[(p["meta"]["trace_id"], p["meta"]["step"])]
        assert p["prompt"] == [m.model_dump() for m in step.messages]
        assert p["completion"] == [{"role": "assistant", "content": step.output}]
        assert step.accepted is not False  # failed parses and superseded drafts are not training targets
    assert len([p for p in pairs if p["role"] == "planner"]) == len(trajectories)


def test_dpo_pairs_come_from_parse_retries_and_revisions(trajectories):
    pairs = [p for t in trajectories for p in preference_pairs(t)]
    kinds = {p["meta"]["kind"] for p in pairs}
    assert kinds == {"parse_retry", "revision"}
    for p in pairs:
        assert p["chosen"] != p["rejected"]
        if p["meta"]["kind"] == "parse_retry":
            assert p["rejected"][0]["content"].startswith("Sure!") and "subgoals" in p["chosen"][0]["content"]
        else:
            assert p["chosen"][0]["content"].endswith("(revised)")


def test_export_split_is_by_question_and_files_are_complete(runs_dir, tmp_path):
    out = tmp_path / "sft.jsonl"
    summary = export(runs_dir, out, ExportOptions(val_fraction=0.3))
    train = [json.loads(x) for x in (tmp_path / "sft.train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (tmp_path / "sft.val.jsonl").read_text().splitlines()]
    assert len(train) + len(val) == 30 and train and val
    assert not {s["meta"]["question"] for s in train} & {s["meta"]["question"] for s in val}
    assert summary.files == {str(tmp_path / "sft.train.jsonl"): len(train), str(tmp_path / "sft.val.jsonl"): len(val)}
    p = summary.token_percentiles
    assert 0 < p["p50"] <= p["p90"] <= p["p99"] <= p["max"]
    assert not list(tmp_path.glob("*.part"))
    again = export(runs_dir, tmp_path / "again.jsonl", ExportOptions(val_fraction=0.3))
    assert sorted(again.files.values()) == sorted(summary.files.values())


def test_roles_export_writes_one_file_per_role(runs_dir, tmp_path):
    summary = export(runs_dir, tmp_path / "roles", ExportOptions(format="roles", roles=["planner", "answerer"]))
    assert sorted(p.name for p in (tmp_path / "roles").iterdir()) == ["answerer.jsonl", "planner.jsonl"]
    assert sum(summary.files.values()) == sum(1 for p in (tmp_path / "roles").iterdir() for _ in p.open())


def test_parquet_beside_jsonl(runs_dir, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    export(runs_dir, tmp_path / "m.jsonl", ExportOptions(parquet=True, filter=RunFilter(correct_only=True)))
    table = pq.read_table(tmp_path / "m.parquet")
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert table.num_rows == len(lines) > 0 and "messages" in table.column_names
