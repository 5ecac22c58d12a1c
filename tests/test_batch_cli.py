"""`deepsearch batch` as a user runs it: a subprocess against the fake OpenAI server and the sample index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import SAMPLE, ScriptedModel, build_sample_index, server_responder


def deepsearch(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepsearch.agent", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def graph_server():
    with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as server:
        yield server


def test_research_batch_with_scores_summary_and_resume(tmp_path, cli_env, graph_server):
    index = build_sample_index(tmp_path)
    questions = tmp_path / "in.jsonl"
    questions.write_text((SAMPLE / "questions.jsonl").read_text() + "not json\n")
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    common = ["--index", str(index), "--no-web", "--llm-base-url", graph_server.base_url, "-c", "2"]
    done = deepsearch("batch", str(questions), "-o", str(out), *common, "--summary-json", str(summary), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "in.jsonl line 5: not JSON" in done.stderr and "[4/4]" in done.stderr
    written = rows(out)
    assert len(written) == 4 and {r["mode"] for r in written} == {"research"}
    first = next(r for r in written if r["id"] == "5a8c7595554299585d9e36b6")
    assert first["short_answer"] == "Chief of Protocol" and first["scores"]["em"] == 1.0 and first["citations"]
    assert first["gold"] == ["Chief of Protocol"] and first["trace_id"] and first["usage"]["searches"] > 0
    figures = json.loads(summary.read_text())
    assert figures["questions"] == 4 and figures["errors"] == 0 and figures["em"] == 0.25
    assert figures["llm_calls"] > 3 and figures["terminations"]
    assert "exact match" in done.stdout and "25.0%" in done.stdout

    again = deepsearch("batch", str(questions), "-o", str(out), *common, env=cli_env)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    resumed = deepsearch("batch", str(questions), "-o", str(out), *common, "--resume", env=cli_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "4 already done" in resumed.stderr and len(rows(out)) == 4


def test_closed_book_failed_rows_are_retried_on_request(tmp_path, cli_env):
    questions = tmp_path / "in.csv"
    questions.write_text("id,question,answer\na,Capital of France?,Paris\nb,Capital of Peru?,Lima\n")
    out = tmp_path / "out.jsonl"
    every_call_fails = {n: "500" for n in range(1, 20)}  # until the faults are cleared
    with FakeOpenAIServer(responder=lambda body: json.dumps({"answer": "Paris"}), faults=every_call_fails) as srv:
        env = {**cli_env, "DEEPSEARCH_LLM_MAX_RETRIES": "0"}
        failed = deepsearch("batch", str(questions), "-o", str(out), "--closed-book", "--llm-base-url", srv.base_url,
                            "-c", "1", env=env)  # fmt: skip
        assert failed.returncode == 0, failed.stderr
        assert {r["termination"] for r in rows(out)} == {"error_llm_server"} and all(r["error"] for r in rows(out))
        srv.faults = {}
        retried = deepsearch("batch", str(questions), "-o", str(out), "--closed-book", "--llm-base-url", srv.base_url,
                             "--resume", "--retry-errors", env=env)  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    final = {r["id"]: r for r in rows(out)}
    assert len(rows(out)) == 2 and final["a"]["scores"]["em"] == 1.0 and final["b"]["scores"]["em"] == 0.0
    assert not any(r["error"] for r in final.values())


def test_unreachable_backend_stops_with_one_line(tmp_path, cli_env):
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "a", "question": "Capital of France?"}\n')
    out = tmp_path / "out.jsonl"
    env = {**cli_env, "DEEPSEARCH_LLM_MAX_RETRIES": "0"}
    done = deepsearch("batch", str(questions), "-o", str(out), "--closed-book", "--llm-base-url",
                      "http://127.0.0.1:9/v1", env=env)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("deepsearch: error: cannot reach the LLM")
    assert out.read_text() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "-o", "out.jsonl"], "no input file"),
        (["empty.jsonl", "-o", "out.jsonl"], "no questions in"),
        (["empty.jsonl", "-o", "out.jsonl", "--retry-errors"], "--retry-errors needs --resume"),
        (["empty.jsonl", "-o", "empty.jsonl"], "must not be the INPUT"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, cli_env, args, message):
    (tmp_path / "empty.jsonl").write_text("oops\n")
    done = subprocess.run([sys.executable, "-m", "deepsearch.agent", "batch", *args, "--closed-book"], cwd=tmp_path,
                          env=cli_env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_help_explains_with_an_example(cli_env):
    done = deepsearch("batch", "--help", env=cli_env)
    assert done.returncode == 0 and "--resume" in done.stdout and "deepsearch batch questions.jsonl" in done.stdout
