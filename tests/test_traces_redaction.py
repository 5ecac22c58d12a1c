"""Secrets never reach disk: the configured API key, secret env vars, auth headers, configured patterns, the
credential patterns of issue 13; page text keeps its words."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent.config import load_settings
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.agent.masking import TELLTALE_FORMS, has_telltale, mask_text
from deepsearch.traces.redact import MASK, Redactor, secrets_from_env
from deepsearch.traces.session import start_run_recording

from tests.fakes.openai_server import FakeOpenAIServer
from tests.redaction_cases import ENV, ENV_SECRETS, FREE_TEXT, LEAK, LEAK_STORED, PAGE, SECRET_KEYS

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


# ---- the patterns (issue 13): each masked, names kept, ordinary text and page text left alone ------------------


@pytest.mark.parametrize("label", FREE_TEXT)
def test_each_credential_pattern_is_masked_in_free_text(label):
    text, secret = FREE_TEXT[label]
    r = Redactor()
    for masked in (r.text(text), mask_text(text), r.serialize({"note": text})):  # serialize: the pre-check sees it
        assert secret not in masked and MASK in masked, (label, masked)


def test_the_short_telltale_list_still_covers_every_spelling_of_every_name():
    """The pre-check looks for a reduced list of anchors (one pass each over a long line): it must miss none."""
    missed = [form for form in TELLTALE_FORMS if not has_telltale(form)]
    assert missed == []
    assert not has_telltale("prompt_tokens and file_path and a passage")  # what every event holds


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("export OPENAI_API_KEY=Zq8xW3vT9pL2mN7rQ", "export OPENAI_API_KEY=***"),
        ("GET https://api.example.com/v1?token=q7Yw2Lx9Kp4&page=2", "GET https://api.example.com/v1?token=***&page=2"),
        ("connect to https://alice:Tr0ub4dor3x@db.example.com/x", "connect to https://***@db.example.com/x"),
        ("Cookie: sessionid=c00k1eV4lue; theme=dark", "Cookie: ***"),
        (
            "401 (OPENAI_API_KEY=Zq8xW3vT9pL2mN7rQ) from [GITHUB_PAT=patV4lue9x8y7z]",
            "401 (OPENAI_API_KEY=***) from [GITHUB_PAT=***]",
        ),
    ],
)
def test_masking_keeps_the_names_so_the_line_still_reads(text, shown):
    assert Redactor().text(text) == shown


def test_secret_named_keys_are_masked_and_counts_are_not():
    data = {**SECRET_KEYS, "max_tokens": 512, "prompt_tokens": 3, "tokens": 7, "author": "Jane", "tokenizer": "o200k"}
    out = Redactor().redact(data)
    assert all(out[k] == MASK for k in SECRET_KEYS)
    assert {k: out[k] for k in data if k not in SECRET_KEYS} == {k: data[k] for k in data if k not in SECRET_KEYS}


def test_secret_env_names_give_their_values_but_the_working_directory_is_not_one():
    found = secrets_from_env(ENV)
    assert set(ENV_SECRETS) <= set(found) and ENV["DATABASE_URL"] in found
    assert ENV["PWD"] not in found
    masked = Redactor(found).text(f"cd {ENV['PWD']}; key {ENV_SECRETS[0]}, pat {ENV_SECRETS[1]}, db {ENV_SECRETS[2]}")
    assert masked == f"cd {ENV['PWD']}; key ***, pat ***, db ***"


@pytest.mark.parametrize(
    "text",
    [
        "Token: the smallest unit a tokenizer emits",
        "prompt_tokens: 220, evidence_token_budget=400",
        "the author=Smith wrote it; secretary: John Smith",
        "https://example.org/a?page=2&api-version=2024-01-01",
        "Trade with Asia grew; see the passage on keys.",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert Redactor().text(text) == text


def test_page_text_keeps_its_words_and_loses_only_credential_shapes():
    r = Redactor()
    assert r.text(PAGE) != PAGE  # as our own text the context patterns would fire on it...
    stored = r.redact({"hash": "h1", "text": PAGE + LEAK, "url": "https://x.example/?token=q7Yw2Lx9Kp4"})
    assert stored["text"] == PAGE + LEAK_STORED  # ...as page text only the AWS key id goes
    assert stored["url"] == "https://x.example/?token=***"  # the record's other fields are ours
    result = r.redact({"url": "https://x.example/", "title": "Password: reset", "snippet": PAGE, "content_hash": None})
    quote = r.redact({"n": 1, "evidence_id": "e1", "source": "s", "quote": PAGE})
    assert result["snippet"] == PAGE and result["title"] == "Password: reset" and quote["quote"] == PAGE


@pytest.mark.parametrize("tag", ["evidence", "passage"])
def test_the_body_of_an_evidence_block_in_a_prompt_is_page_text(tag):
    prompt = (
        f'Our password: hunter2x\n<{tag} id="1" source="https://x.example/?token=q7Yw2Lx9Kp4">\n{PAGE}\n</{tag}>\nEnd.'
    )
    out = Redactor().text(prompt)
    assert f"\n{PAGE}\n" in out
    assert "hunter2x" not in out and "q7Yw2Lx9Kp4" not in out
