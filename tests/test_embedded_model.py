"""The real embedded model (llama.cpp + SmolLM2 GGUF from a PyPI package), in-process and behind llama.cpp's server."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm import ChatMessage, LLMClient, LLMRequest, generate_structured
from deepsearch.agent.llm.llamacpp_backend import LlamaCppBackend, packaged_model_path
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from pydantic import BaseModel

MODEL = packaged_model_path()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MODEL is None, reason='embedded model not installed (pip install -e ".[embedded]")'),
]


class SubQuestions(BaseModel):
    questions: list[str]


@pytest.fixture(scope="module")
def backend():
    return LlamaCppBackend(LLMSettings(n_ctx=2048, max_tokens=64))


async def test_schema_constrained_output_is_valid(backend):
    messages = [
        ChatMessage(
            role="user",
            content="Split into two simpler questions: Who directed the film that won "
            "Best Picture in 1998, and where was that director born?",
        )
    ]
    outcome = await generate_structured(
        LLMClient(backend), messages, SubQuestions, role="planner", fallback=SubQuestions(questions=[]), max_tokens=96
    )
    assert outcome.status in ("ok", "repaired"), outcome.failures
    assert outcome.responses[0].guided and outcome.responses[0].usage.completion_tokens > 0


async def test_logprobs_from_the_embedded_model(backend):
    r = await backend.complete(
        LLMRequest(
            messages=[ChatMessage(role="user", content="Capital of France?")],
            max_tokens=8,
            logprobs=True,
            top_logprobs=3,
        )
    )
    summary = r.logprob_summary()
    assert summary and summary["tokens"] == len(r.logprobs) and summary["mean_logprob"] <= 0
    assert all(len(t.top) == 3 for t in r.logprobs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    pytest.importorskip("llama_cpp.server")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(MODEL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama.cpp server did not start")
                time.sleep(0.5)
        yield base
    finally:
        # llama.cpp's server finishes abandoned generations before honouring SIGTERM: kill it hard.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_closed_book_ask_through_llama_cpp_server(llama_server, cli_env):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsearch.agent",
            "ask",
            "What is the capital of France?",
            "--closed-book",
            "--json",
            "--llm-base-url",
            llama_server,
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["backend"] == "openai" and result["usage"]["llm_calls"] >= 1
    assert result["answer"], result


class CityPopulation(BaseModel):
    city: str  # unbounded, like doctor's probe was: the backend must bound it for llama.cpp's grammar
    population_millions: float


async def test_a_structured_call_to_the_llama_cpp_server_parses_on_the_first_attempt(llama_server):
    """Issue 13: the server's repeat_penalty 1.1 and an unbounded string sent this to max_tokens, then a retry."""
    backend = OpenAIBackend(LLMSettings(base_url=[llama_server], max_tokens=512))
    try:
        question = [ChatMessage(role="user", content="Name the largest city of Japan and its population.")]
        fallback = CityPopulation(city="", population_millions=0)
        outcome = await generate_structured(LLMClient(backend), question, CityPopulation, role="t", fallback=fallback)
    finally:
        await backend.aclose()
    assert backend.server_kind == "llamacpp"
    assert outcome.status == "ok" and len(outcome.responses) == 1, outcome.failures
    assert outcome.responses[0].usage.completion_tokens < 100 and outcome.responses[0].finish_reason == "stop"


def test_doctor_guided_json_passes_first_try_against_the_llama_cpp_server(llama_server, cli_env):
    out = subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", "doctor", "--json", "--llm-base-url", llama_server],
        env=cli_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert out.returncode == 0, out.stdout + out.stderr
    assert checks["guided JSON"]["detail"].startswith("ok via llamacpp:"), checks["guided JSON"]


def test_closed_book_ask_embedded_default(cli_env):
    out = subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", "ask", "What is the capital of France?", "--closed-book", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["backend"] == "llamacpp" and "Paris" in result["answer"]
    assert result["usage"]["completion_tokens"] > 0


async def test_cancelling_a_call_stops_the_generation(backend):
    import asyncio

    story = LLMRequest(messages=[ChatMessage(role="user", content="Write a very long story about the sea.")],
                       max_tokens=1500, temperature=0.0)  # fmt: skip
    task = asyncio.create_task(backend.complete(story))
    await asyncio.sleep(1.5)  # the story is being generated
    at_cancel = backend._llama.n_tokens
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The next call waits for the model's lock: by the time it answers, the story's thread has stopped.
    await backend.complete(LLMRequest(messages=[ChatMessage(role="user", content="Say hi.")], max_tokens=4))
    assert backend.aborted_calls == 1
    assert backend.aborted_at_tokens is not None and backend.aborted_at_tokens - at_cancel <= 2
