"""An API key from env or a config file never reaches traces, exports, logs, `--json` or error lines.

Every command runs as a user runs it (a subprocess) against the fake OpenAI server, which checks the
bearer header; afterwards every file under the temp dirs and all stdout/stderr are searched for the key.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent.masking import display_url

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

KEY = "Zq8xW3vT9pL2mN7rQkey4dstnct"  # no "sk-" prefix: only knowing the key can mask it, not a pattern
CLOSED = lambda body: json.dumps({"answer": "Paris"})  # noqa: E731


def deepsearch(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepsearch.agent", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_no_key(*outputs: subprocess.CompletedProcess, dirs: tuple[Path, ...] = (), secret: str = KEY) -> int:
    """The key is in no output and no file under `dirs`; returns how many files were searched."""
    for done in outputs:
        assert secret not in done.stdout and secret not in done.stderr, (done.args, done.stdout, done.stderr)
    searched = 0
    for d in dirs:
        for f in d.rglob("*"):
            if f.is_file() and f.suffix != ".toml":  # the user's own config file holds it, of course
                searched += 1
                assert secret.encode() not in f.read_bytes(), f
    return searched


@pytest.fixture
def env_with_key(cli_env):
    return {**cli_env, "DEEPSEARCH_LLM_API_KEY": KEY, "DEEPSEARCH_LLM_MAX_RETRIES": "0"}


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("deepsearch: error: "), done.stderr
    return last


def test_closed_book_ask_then_every_trace_command_and_export_format(tmp_path, env_with_key):
    with FakeOpenAIServer(api_key=KEY, responder=CLOSED) as server:
        asked = deepsearch("ask", "Capital of France?", "--closed-book", "--json", "--llm-base-url", server.base_url,
                           env=env_with_key)  # fmt: skip
        assert server.headers and all(h.get("authorization") == f"Bearer {KEY}" for h in server.headers)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["short_answer"] == "Paris"
    runs = [
        deepsearch("traces", "show", "last", env=env_with_key),
        deepsearch("traces", "show", "last", "--json", env=env_with_key),
        deepsearch("traces", "ls", "--json", env=env_with_key),
        deepsearch("traces", "stats", "--json", env=env_with_key),
    ]
    out = tmp_path / "exports"
    out.mkdir()
    for fmt in ("messages", "sharegpt", "roles", "dpo"):
        target = out / (fmt if fmt == "roles" else f"{fmt}.jsonl")
        runs.append(deepsearch("traces", "export", "-f", fmt, "-o", str(target), "--json", env=env_with_key))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs if r.returncode]
    assert "Capital of France" in runs[0].stdout
    assert (out / "messages.jsonl").read_text().strip()  # the export wrote the run
    assert assert_no_key(asked, *runs, dirs=(tmp_path,)) >= 5


def test_research_run_with_the_key_in_a_config_file(tmp_path, cli_env):
    index = build_sample_index(tmp_path)
    config = tmp_path / "deepsearch.toml"
    with FakeOpenAIServer(api_key=KEY, responder=server_responder(ScriptedModel())) as server:
        config.write_text(f'[llm]\nbase_url = "{server.base_url}"\napi_key = "{KEY}"\n')
        question = "What government position was held by the woman who portrayed Corliss Archer?"
        asked = deepsearch("ask", question, "--index", str(index), "--no-web", "--json", "--config", str(config),
                           env=cli_env)  # fmt: skip
        assert len(server.requests) > 3
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["short_answer"] == "Chief of Protocol" and result["citations"]
    shown = deepsearch("traces", "show", "last", "--json", "--config", str(config), env=cli_env)
    exported = deepsearch("traces", "export", "-o", str(tmp_path / "t.jsonl"), "--config", str(config), env=cli_env)
    assert shown.returncode == 0 and exported.returncode == 0, (shown.stderr, exported.stderr)
    assert "Corliss Archer" in shown.stdout
    assert assert_no_key(asked, shown, exported, dirs=(tmp_path,)) >= 3


def test_config_show_masks_the_key_from_env_and_from_file(tmp_path, cli_env):
    config = tmp_path / "deepsearch.toml"
    config.write_text(f'[llm]\napi_key = "{KEY}"\nbase_url = "http://me:{KEY}@127.0.0.1:9/v1?api_key={KEY}"\n')
    from_file = [deepsearch("config", "show", *j, "--config", str(config), env=cli_env) for j in ([], ["--json"])]
    keyed = {**cli_env, "DEEPSEARCH_LLM_API_KEY": KEY}
    from_env = [deepsearch("config", "show", *j, env=keyed) for j in ([], ["--json"])]
    assert all(r.returncode == 0 for r in from_file + from_env), [r.stderr for r in from_file + from_env]
    for done in (from_file[1], from_env[1]):
        assert json.loads(done.stdout)["llm.api_key"]["value"] == "***"
    assert json.loads(from_file[1].stdout)["llm.base_url"]["value"] == "http://***@127.0.0.1:9/v1?api_key=***"
    assert "DEEPSEARCH_LLM_API_KEY" in json.loads(from_env[1].stdout)["llm.api_key"]["source"]
    assert_no_key(*from_file, *from_env)


def test_batch_rows_and_summary(tmp_path, env_with_key):
    questions = tmp_path / "in.csv"
    questions.write_text("id,question,answer\na,Capital of France?,Paris\nb,Capital of Peru?,Lima\n")
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    with FakeOpenAIServer(api_key=KEY, responder=CLOSED) as server:
        done = deepsearch("batch", str(questions), "-o", str(out), "--closed-book", "--llm-base-url", server.base_url,
                          "--summary-json", str(summary), env=env_with_key)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 2 and json.loads(summary.read_text())["questions"] == 2
    assert not any(json.loads(line)["error"] for line in out.read_text().splitlines())
    assert_no_key(done, dirs=(tmp_path,))


def test_batch_error_rows_do_not_echo_the_key(tmp_path, env_with_key):
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "a", "question": "Capital of France?"}\n')
    out = tmp_path / "out.jsonl"
    with FakeOpenAIServer(api_key="another-key-entirely", responder=CLOSED) as server:
        done = deepsearch("batch", str(questions), "-o", str(out), "--closed-book", "--llm-base-url",
                          server.base_url + f"?api_key={KEY}", env=env_with_key)  # fmt: skip
    row = json.loads(out.read_text())
    assert "401" in row["error"] and "api_key=***" in row["error"]
    assert_no_key(done, dirs=(tmp_path,))


def test_doctor_json_against_a_right_and_a_wrong_key(tmp_path, env_with_key):
    with FakeOpenAIServer(api_key=KEY) as server:
        good = deepsearch("doctor", "--json", "--llm-base-url", server.base_url, env=env_with_key)
    with FakeOpenAIServer(api_key="another-key-entirely") as server:
        bad = deepsearch("doctor", "--json", "--llm-base-url", f"http://u:{KEY}@127.0.0.1:{server.port}/v1",
                         env=env_with_key)  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    assert all(c["ok"] for c in json.loads(good.stdout) if c["required"])
    assert bad.returncode == 1
    failed = [c for c in json.loads(bad.stdout) if not c["ok"]]
    assert failed and "401" in failed[0]["detail"] and "http://***@127.0.0.1" in failed[0]["name"]
    assert_no_key(good, bad, dirs=(tmp_path,))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://user:{KEY}@127.0.0.1:9/v1", "http://***@127.0.0.1:9/v1"),
        (f"http://{KEY}@127.0.0.1:9/v1", "http://***@127.0.0.1:9/v1"),
        (f"http://127.0.0.1:9/v1?api_key={KEY}&x=1", "http://127.0.0.1:9/v1?api_key=***&x=1"),
    ],
)
def test_unreachable_url_carrying_the_key_is_masked_in_the_error(tmp_path, cli_env, url, shown):
    env = {**cli_env, "DEEPSEARCH_LLM_MAX_RETRIES": "0"}
    done = deepsearch("ask", "Capital of France?", "--closed-book", "--json", "--llm-base-url", url, env=env)
    line = one_error_line(done)
    assert "cannot reach the LLM" in line and shown in line
    assert_no_key(done, dirs=(tmp_path,))


def test_a_401_from_a_server_with_another_key(tmp_path, env_with_key):
    with FakeOpenAIServer(api_key="another-key-entirely", responder=CLOSED) as server:
        done = deepsearch("ask", "Capital of France?", "--closed-book", "--json", "--llm-base-url", server.base_url,
                          env=env_with_key)  # fmt: skip
    assert "401" in one_error_line(done)
    assert_no_key(done, dirs=(tmp_path,))


def test_a_server_echoing_the_key_in_its_error_message_is_scrubbed(tmp_path, env_with_key):
    """Some servers quote the rejected key ("Incorrect API key provided: …"); the line must not."""
    with FakeOpenAIServer(api_key="another-key-entirely", responder=CLOSED) as server:
        server.auth_error = f"Incorrect API key provided: {KEY}"
        done = deepsearch("ask", "Capital of France?", "--closed-book", "--llm-base-url", server.base_url,
                          env=env_with_key)  # fmt: skip
    line = one_error_line(done)
    assert "Incorrect API key provided: ***" in line
    assert_no_key(done, dirs=(tmp_path,))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://user:pw@host.example/v1", "https://***@host.example/v1"),
        ("http://h/v1?token=abc&api-version=2024-01-01", "http://h/v1?token=***&api-version=2024-01-01"),
        ("http://h/v1?sig=abc#frag", "http://h/v1?sig=***#frag"),
        ("not a url", "not a url"),
    ],
)
def test_display_url(url, shown):
    assert display_url(url) == shown
