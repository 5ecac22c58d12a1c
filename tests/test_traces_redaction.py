"""Secrets never reach disk: the configured API key, secret env vars, auth headers, configured patterns."""

import json
import os
import subprocess
import sys
from pathlib import Path

from deepsearch.agent.config import load_settings
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.traces.redact import MASK, Redactor
from deepsearch.traces.session import start_run_recording

from tests.fakes.openai_server import FakeOpenAIServer

API_KEY = "sk-live-0123456789abcdefXYZ"
ENV_TOKEN = "ghp_envtoken_998877665544"
CUSTOM = "ACME-CUSTOMER-4242-4242"


def _all_bytes(directory) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def test_secrets_in_every_field_are_masked_on_disk(tmp_path):
    env = {
        "DEEPSEARCH_LLM_API_KEY": API_KEY,
        "GITHUB_TOKEN": ENV_TOKEN,
        "DEEPSEARCH_TRACES_REDACT_PATTERNS": r'["ACME-CUSTOMER-\\d+-\\d+"]',
    }
    settings = load_settings(environ=env).settings
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        rec = start_run_recording(
            settings, f"question mentioning {API_KEY}", mode="research", backend=FakeBackend([]), traces_dir=tmp_path
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rec.tool_call(
        "fetch_page",
        {"url": f"https://x.example/?api_key={API_KEY}", "headers": {"Authorization": f"Bearer {API_KEY}"}},
        results=[{"id": "1", "url": "https://x.example/", "text": f"page with {ENV_TOKEN} and customer {CUSTOM}"}],
    )
    rec.step(
        "judge", target="sg1", rationale="Authorization: Basic dXNlcjpwYXNzd29yZA==", labels={"password": "hunter22"}
    )
    rec.finish(f"the key is {API_KEY}", termination="answered")

    on_disk = _all_bytes(tmp_path)
    for secret in (API_KEY, ENV_TOKEN, CUSTOM, "dXNlcjpwYXNzd29yZA==", "hunter22"):
        assert secret.encode() not in on_disk, secret
    assert MASK.encode() in on_disk
    header = json.loads(rec.path.read_text().splitlines()[0])["header"]
    assert header["config"]["llm"]["api_key"] == MASK and header["question"] == f"question mentioning {MASK}"


def test_redactor_keeps_ordinary_text_and_structure():
    r = Redactor(secrets=["s3cr3t-value"], patterns=[r"(?i)internal-\w+"])
    data = {
        "a": ["plain text", 3, None, {"b": "has s3cr3t-value inside", "label": "x", "X-Api-Key": "kkkkkkkk"}],
        "note": "INTERNAL-host is private",
        "tokens": 12,
    }
    out = r.redact(data)
    assert out["a"][:3] == ["plain text", 3, None]
    assert out["a"][3] == {"b": f"has {MASK} inside", "label": "x", "X-Api-Key": MASK}
    assert out["note"] == f"{MASK} is private" and out["tokens"] == 12


def test_ask_with_an_api_key_never_writes_it(cli_env):
    key = "sk-served-abcdef0123456789"
    with FakeOpenAIServer(api_key=key, responder=lambda body: json.dumps({"answer": "Paris"})) as server:
        env = {**cli_env, "DEEPSEARCH_LLM_API_KEY": key, "DEEPSEARCH_LLM_BASE_URL": server.base_url}
        out = subprocess.run(
            [sys.executable, "-m", "deepsearch.agent", "ask", "Capital of France?", "--closed-book", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        sent = {k.lower(): v for k, v in server.headers[-1].items()}
        assert sent["authorization"] == f"Bearer {key}"  # the key was really in use
    traces = Path(cli_env["DEEPSEARCH_TRACES_DIR"])
    assert json.loads(out.stdout)["trace_id"] and key.encode() not in _all_bytes(traces)
