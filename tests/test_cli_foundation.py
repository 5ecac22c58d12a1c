"""The CLI as a user meets it: a real subprocess, its exit code, stdout and stderr."""

import json
import subprocess
import sys

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


def deepsearch(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepsearch.agent", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def answer_paris(body):
    return json.dumps({"answer": "Paris"})


def test_closed_book_json_against_an_openai_compatible_server(cli_env):
    with FakeOpenAIServer(responder=answer_paris, model="served-model") as server:
        out = deepsearch(
            "ask",
            "What is the capital of France?",
            "--closed-book",
            "--json",
            "--llm-base-url",
            server.base_url,
            "--llm-model",
            "served-model",
            env=cli_env,
        )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["answer"] == "Paris" and result["termination"] == "answered"
    assert result["backend"] == "openai" and result["model"] == "served-model"
    assert result["usage"]["llm_calls"] == 1 and result["usage"]["prompt_tokens"] > 0
    assert "completion_tokens" in result["usage"]


def test_env_selects_the_server_too(cli_env):
    with FakeOpenAIServer(responder=answer_paris) as server:
        env = {**cli_env, "DEEPSEARCH_LLM_BASE_URL": server.base_url}
        out = deepsearch("ask", "Capital of France?", "--closed-book", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"] == "fake-model"


def test_unreachable_endpoint_is_one_line_exit_2(cli_env):
    env = {**cli_env, "DEEPSEARCH_LLM_MAX_RETRIES": "1"}
    out = deepsearch("ask", "x", "--closed-book", "--llm-base-url", "http://127.0.0.1:9/v1", env=env)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "http://127.0.0.1:9/v1" in lines[0] and "deepsearch doctor" in lines[0]


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question_is_a_usage_error(cli_env, question):
    out = deepsearch("ask", question, "--closed-book", env=cli_env)
    assert out.returncode == 2 and "question is empty" in out.stderr and "Traceback" not in out.stderr


def test_bad_config_value_names_key_and_type(cli_env, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[llm]\nmax_retries = 'often'\n")
    out = deepsearch("config", "show", "--config", str(cfg), env=cli_env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "llm.max_retries" in out.stderr and "expected int" in out.stderr


def test_config_show_sources_and_masked_secret(cli_env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[llm]\nmodel = "m-from-file"\n')
    env = {**cli_env, "DEEPSEARCH_LLM_API_KEY": "sk-very-secret", "DEEPSEARCH_LLM_TIMEOUT_S": "9"}
    out = deepsearch("config", "show", "--config", str(cfg), "--json", env=env)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["llm.model"] == {"value": "m-from-file", "source": f"file {cfg}"}
    assert shown["llm.timeout_s"]["source"] == "env DEEPSEARCH_LLM_TIMEOUT_S"
    assert shown["llm.api_key"]["value"] == "***"
    assert "sk-very-secret" not in out.stdout + out.stderr


def test_doctor_passes_against_a_healthy_server(cli_env):
    with FakeOpenAIServer() as server:
        out = deepsearch("doctor", "--llm-base-url", server.base_url, "--json", env=cli_env)
    checks = {c["name"].split(" ")[0]: c for c in json.loads(out.stdout)}
    assert out.returncode == 0, out.stdout
    assert checks["guided"]["ok"] and checks["logprobs"]["ok"] and checks["model"]["ok"]


def test_doctor_fails_on_a_missing_model_and_a_dead_server(cli_env):
    with FakeOpenAIServer() as server:
        out = deepsearch("doctor", "--llm-base-url", server.base_url, "--llm-model", "other", env=cli_env)
    assert out.returncode == 1 and "not in" in out.stdout
    out = deepsearch("doctor", "--llm-base-url", "http://127.0.0.1:9/v1", env=cli_env)
    assert out.returncode == 1 and "cannot reach" in out.stdout and "Traceback" not in out.stderr


def test_every_command_and_subcommand_has_help(cli_env):
    import click
    import typer.main
    from deepsearch.agent.cli import app
    from typer.testing import CliRunner

    top = deepsearch("--help", env=cli_env)  # the real entry point, once
    assert top.returncode == 0 and "Agentic deep search" in top.stdout
    runner = CliRunner()

    def walk(command: click.Command, path: list[str]):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    seen = []
    for path, command in walk(typer.main.get_command(app), []):
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160", "NO_COLOR": "1"})
        assert out.exit_code == 0, path
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        seen.append(" ".join(path))
    assert {"ask", "doctor", "config show"} <= set(seen)
