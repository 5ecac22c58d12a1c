"""`deepsearch chat` as a command: help, --list, --resume errors, and piped input (plain progress lines)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent.cli import app
from typer.testing import CliRunner

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

DEEPSEARCH = str(Path(sys.executable).with_name("deepsearch"))
QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


def chat(env, *args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([DEEPSEARCH, "chat", *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_help_explains_the_session_with_examples():
    out = CliRunner().invoke(app, ["chat", "--help"], env={"COLUMNS": "160"})
    assert out.exit_code == 0
    for text in ("/sources", "/export", "Ctrl-C", "--resume", "deepsearch chat --index wiki --no-web"):
        assert text in out.output


def test_list_and_resume_errors_before_any_session(cli_env):
    listed = chat(cli_env, "--list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    missing = chat(cli_env, "--resume", "nope")
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [
        "deepsearch: error: no chat session 'nope'; `deepsearch chat --list` shows them"
    ]
    bad_index = chat(cli_env, "--index", "no-such-index", "--no-web")
    assert bad_index.returncode != 0 and len(bad_index.stderr.strip().splitlines()) == 1
    assert bad_index.stderr.startswith("deepsearch: error: ") and "Traceback" not in bad_index.stderr


def test_piped_input_gets_plain_progress_and_the_session_is_listed(cli_env, index_dir):
    with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as server:
        llm = ["--llm-base-url", server.base_url, "--backend", "openai", "--llm-model", "fake-model"]
        out = chat(cli_env, "--index", str(index_dir), "--no-web", *llm, stdin=f"{QUESTION}\n/budget\n")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\x1b[" not in text  # not a terminal: no escape codes at all
    for line in ("intake", "g1 planned: ", "local search: ", "g1 evidence: kept 2, dropped 3", "judge g1: done",
                 "judge answer: accept", "Shirley Temple served as Chief of Protocol", "[1] ", "budget of turn 1"):
        assert line in text, line
    assert f"> {QUESTION}" in text  # piped lines are echoed, like a transcript
    session_id = re.search(r"session (\w+) saved", text).group(1)
    row = next(line for line in chat(cli_env, "--list").stdout.splitlines() if session_id in line)
    assert "│ 1 " in row and "What government position" in row  # one turn, titled by its first question
