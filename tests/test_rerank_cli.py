"""`deepsearch rerank` end to end in a subprocess: a real local index, the fake OpenAI-compatible server as model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from deepsearch.agent.llm.types import ChatMessage, LLMRequest

from tests.fakes.openai_server import FakeOpenAIServer, requested_schema
from tests.fakes.rerank_oracle import Oracle

QUERY = "Who portrayed Corliss Archer in Kiss and Tell?"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", *args], env=env, capture_output=True, text=True, timeout=120
    )


def oracle_responder(body: dict) -> str:
    schema = requested_schema(body) or {}
    messages = [ChatMessage(role=m["role"], content=m["content"]) for m in body["messages"]]
    return Oracle()(LLMRequest(messages=messages, schema_name=schema.get("title", "")))


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """An isolated CLI environment with one small index named `rr`, built once for the module."""
    home = tmp_path_factory.mktemp("rerank_cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSEARCH_")}
    env |= {
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "DEEPSEARCH_TRACES_DIR": str(home / "traces"),
        "NO_COLOR": "1",
        "COLUMNS": "160",
    }
    records = [
        ("p1", "Kiss and Tell", "Kiss and Tell is a 1945 comedy film. Shirley Temple played Corliss Archer in it."),
        ("p2", "Corliss Archer", "Corliss Archer is a fictional teenage girl from stories by F. Hugh Herbert."),
        ("p3", "Kiss (band)", "Kiss is an American rock band formed in New York City in 1973."),
        ("p4", "Danube", "The Danube is the second-longest river in Europe."),
    ]
    corpus = home / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in records))
    built = _run(env, "index", str(corpus), "--name", "rr")
    assert built.returncode == 0, built.stderr
    return env


def test_rerank_json_has_rationales_cut_and_verified_evidence(env):
    with FakeOpenAIServer(responder=oracle_responder) as server:
        done = _run(
            env,
            "rerank",
            QUERY,
            "--index",
            "rr",
            "--mode",
            "pointwise",
            "--json",
            "--llm-base-url",
            server.base_url,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mode"] == "pointwise" and out["ranked"][0]["id"] == "p1#0"
    assert out["ranked"][0]["rationale"] == "names the actor" and out["cut"]["keep"] == 1
    assert out["cut"]["method"] == "knee" and len(out["cut"]["curve"]) == len(out["ranked"])
    (passage,) = out["evidence"]
    assert (
        passage["evidence"] == "Shirley Temple played Corliss Archer in it." and passage["verification"] == "verified"
    )
    assert out["titles"]["p1#0"] == "Kiss and Tell"


def test_rerank_prints_the_ranking_and_the_cut(env):
    with FakeOpenAIServer(responder=oracle_responder) as server:
        done = _run(env, "rerank", QUERY, "--index", "rr", "--llm-base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    assert "knee cut" in done.stdout and "cut: kept 1 of" in done.stdout and "names the actor" in done.stdout
    assert "verified" in done.stdout


def test_a_dead_server_gives_the_fusion_order_with_a_warning(env):
    done = _run(env, "rerank", QUERY, "--index", "rr", "--json", "--llm-base-url", "http://127.0.0.1:9/v1")
    assert done.returncode == 0 and "fusion order shown" in done.stderr and "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert out["mode"] == "fusion" and out["evidence"] and any("the model failed" in n for n in out["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["  ", "--index", "rr"], "the query is empty"),
        ([QUERY, "--index", "missing"], "no index at"),
        ([QUERY, "--index", "rr", "--mode", "best"], "rerank.mode"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(env, args, message):
    done = _run(env, "rerank", *args)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
