"""Runs started by the LangGraph API server (`langgraph dev`'s in-memory runtime) work end to end.

The server runs in a subprocess on 127.0.0.1 as `langgraph dev` would start it from this repo's langgraph.json
(`langgraph dev --allow-blocking --no-reload --no-browser`, without persistence files), with the
settings a user gives it: `DEEPSEARCH_*` env pointing at the fake OpenAI-compatible server and the sample index.
The LangGraph SDK starts the runs. Nothing may leave loopback: in the server, Python's socket connect (what
urllib, http.client and requests use: the CLI's analytics, the version check, LangSmith) refuses other addresses
and notes each attempt, which the fixture's teardown reads; the server's own event loops (uvloop) connect below
that layer, and the environment switches off what would use them (no licence key, no LangSmith).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("langgraph_api")
langgraph_sdk = pytest.importorskip("langgraph_sdk")

from deepsearch.tools.local_index import update_index  # noqa: E402
from deepsearch.traces.reader import find_log, load_trajectory  # noqa: E402

from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402
from tests.graph_support import ScriptedModel, section, server_responder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
AMBIGUOUS = "Who played Corliss Archer?"
READING = "Who played Corliss Archer in the film Kiss and Tell?"

# `langgraph dev`, minus the CLI's own start-up: the graphs of the repo's langgraph.json (validated by the CLI's
# own reader), resolved against the repo as the CLI resolves them against its working directory.
LAUNCHER = r"""
import ipaddress, pathlib, socket, sys
blocked, repo, port = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

def loopback_only(address):
    if isinstance(address, tuple):
        try:
            ok = ipaddress.ip_address(address[0]).is_loopback
        except ValueError:
            ok = False
        if not ok:
            with blocked.open("a") as f:
                f.write(f"{address[0]}\n")
            raise OSError(f"offline test: {address[0]} refused")

socket.socket.connect = lambda self, a: (loopback_only(a), real_connect(self, a))[1]
socket.socket.connect_ex = lambda self, a: (loopback_only(a), real_connect_ex(self, a))[1]

from langgraph_cli.config import validate_config_file
from langgraph_api.cli import run_server

config = validate_config_file(repo / "langgraph.json")
graphs = {}
for graph_id, spec in config["graphs"].items():
    path, variable = spec.rsplit(":", 1)
    graphs[graph_id] = f"{(repo / path).resolve()}:{variable}"
sys.path.append(str(repo))
run_server(host="127.0.0.1", port=port, reload=False, graphs=graphs, open_browser=False,
           disable_persistence=True, env=config.get("env"), server_level="WARNING", allow_blocking=True)
"""


def ambiguous_intake(request):
    if section(request, "New question") == AMBIGUOUS:
        return {"standalone_question": AMBIGUOUS, "ambiguous": True, "assumption": "the 1945 film",
                "clarifying_question": "The film or the radio show?"}  # fmt: skip
    return {"standalone_question": READING, "ambiguous": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The LangGraph server with the fake LLM and the sample index; yields (url, traces dir, index dir, log)."""
    tmp = tmp_path_factory.mktemp("langgraph")
    index_dir = tmp / "idx"
    update_index(index_dir, [REPO / "tests" / "fixtures" / "sample_corpus" / "hotpot_sample.jsonl"])
    config = tmp / "config.toml"  # the same config file the CLI reads
    config.write_text('[agent]\nindexes = ["idx"]\nweb = false\n')
    llm = FakeOpenAIServer(responder=server_responder(ScriptedModel(intake=ambiguous_intake))).start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEEPSEARCH_", "LANGSMITH_", "LANGCHAIN_"))}
    env |= {
        "HOME": str(tmp / "home"), "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "DEEPSEARCH_LLM_BACKEND": "openai", "DEEPSEARCH_LLM_BASE_URL": llm.base_url,
        "DEEPSEARCH_LLM_MODEL": "fake-model", "DEEPSEARCH_LLM_SERVER_KIND": "vllm", "DEEPSEARCH_LLM_MAX_RETRIES": "0",
        "DEEPSEARCH_TRACES_DIR": str(tmp / "traces"), "DEEPSEARCH_INDEX_DIR": str(tmp),
        "DEEPSEARCH_CONFIG": str(config),
        "DEEPSEARCH_AGENT_CHECKPOINT_DB": str(tmp / "ckpt.sqlite"),
        # What a machine without internet needs: no version check, no LangSmith tracing, no CLI analytics.
        "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }  # fmt: skip
    blocked = tmp / "blocked.txt"
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(blocked), str(REPO), str(port)], cwd=tmp,
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the LangGraph server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield {"url": url, "traces": tmp / "traces", "index": index_dir, "llm": llm, "log": tmp / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        llm.stop()
    assert not blocked.exists() or not blocked.read_text().strip(), f"tried to leave loopback: {blocked.read_text()}"


def trajectory(traces: Path, trace_id: str):
    return load_trajectory(find_log(traces, trace_id))


def runs_of(traces: Path, thread_id: str) -> list:
    found = []
    for path in sorted((traces / "runs").glob("*.jsonl")):
        traj = load_trajectory(path)
        if traj.meta.get("langgraph", {}).get("thread_id") == thread_id:
            found.append(traj)
    return found


async def test_an_sdk_run_answers_and_records_its_trajectory(served):
    client = langgraph_sdk.get_client(url=served["url"])
    thread = await client.threads.create()
    parts = []
    async for part in client.runs.stream(thread["thread_id"], "deepsearch", input={"question": QUESTION},
                                         context={"max_rounds": 2}, stream_mode=["values", "custom"],
                                         stream_subgraphs=True):  # fmt: skip
        parts.append(part)
    assert not [p for p in parts if p.event == "error"], [p.data for p in parts if p.event == "error"]
    final = [p.data for p in parts if p.event == "values"][-1]
    assert "Chief of Protocol" in final["answer"] and final["termination"] == "answered"
    assert final["citations"] and final["citations"][0]["source"]
    # The live view `deepsearch ask` shows: the graph's own events, and (with stream_subgraphs) each research round's.
    progress = [p.data["deepsearch"] for p in parts if p.event.split("|")[0] == "custom"]
    assert {"node", "subgoal", "query", "evidence", "verdict"} <= {e["kind"] for e in progress}
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == [] and state["values"]["answer"] == final["answer"]

    (traj,) = runs_of(served["traces"], thread["thread_id"])
    assert traj.question == QUESTION and traj.status == "complete"
    assert traj.final.termination == "answered" and traj.final.answer == final["answer"]
    assert [c.evidence_id for c in traj.final.citations] == [c["evidence_id"] for c in final["citations"]]
    assert traj.config["agent"]["max_rounds"] == 2 and traj.config["agent"]["indexes"] == ["idx"]
    assert {s.kind for s in traj.steps} >= {"llm_call", "tool_call", "judge"}
    assert traj.meta["langgraph"]["graph_id"] == "deepsearch"

    # A thread holds one question (the state accumulates plan, results and evidence): a second one is refused.
    again = [p async for p in client.runs.stream(thread["thread_id"], "deepsearch", input={"question": "Why?"})]
    assert "start each question on a new thread" in json.dumps([p.data for p in again if p.event == "error"])


async def test_a_report_run_through_the_server(served):
    client = langgraph_sdk.get_client(url=served["url"])
    thread = await client.threads.create()
    final = await client.runs.wait(thread["thread_id"], "deepsearch", context={"max_rounds": 2},
                                   input={"question": QUESTION, "report": {"words": 300}})  # fmt: skip
    assert final["answer"].startswith("# ") and "\n## Sources\n" in final["answer"]
    info = final["report_info"]
    assert info["cited_sentences"] >= 1 and info["verified_sentences"] == info["cited_sentences"]
    (traj,) = runs_of(served["traces"], thread["thread_id"])
    assert {s.stage for s in traj.steps if s.kind == "report"} == {"outline", "section", "checks"}


async def test_a_rerun_from_an_earlier_checkpoint_is_recorded_as_a_resumed_run(served):
    # What Studio's fork / replay does: a run of the thread with no input from one of its checkpoints.
    client = langgraph_sdk.get_client(url=served["url"])
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "deepsearch", input={"question": QUESTION})
    after_plan = next(h for h in await client.threads.get_history(thread_id, limit=100) if h["next"] == ["dispatch"])
    final = await client.runs.wait(thread_id, "deepsearch", input=None, checkpoint_id=after_plan["checkpoint_id"])
    assert final["termination"] == "answered"
    first, rerun = runs_of(served["traces"], thread_id)
    assert "resumed_thread" not in first.meta and rerun.meta["resumed_thread"] == thread_id
    assert rerun.question == QUESTION and rerun.final.termination == "answered"
    assert "planner" not in {s.role for s in rerun.steps if s.kind == "llm_call"}  # the plan was not redone


async def test_studio_sees_the_graph_and_the_run_options(served):
    client = langgraph_sdk.get_client(url=served["url"])
    (assistant,) = await client.assistants.search(graph_id="deepsearch")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    options = schemas["context_schema"]["properties"]  # Studio's context form
    assert {"indexes", "web", "interactive", "max_rounds", "llm_base_url"} <= set(options)
    assert schemas["input_schema"]["required"] == ["question"]
    assert {"answer", "citations", "termination"} <= set(schemas["output_schema"]["properties"])
    drawn = await client.assistants.get_graph(assistant["assistant_id"], xray=True)
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"intake", "clarify", "plan", "dispatch", "reflect", "answer", "verify"} <= nodes
    assert any(n.startswith("research:") for n in nodes), nodes  # the research subgraph's steps


async def test_a_cancelled_run_records_its_termination(served):
    client = langgraph_sdk.get_client(url=served["url"])
    thread_id = (await client.threads.create())["thread_id"]
    served["llm"].latency_s = 0.5
    try:
        run = await client.runs.create(thread_id, "deepsearch", input={"question": QUESTION})
        deadline = time.monotonic() + 20
        while not runs_of(served["traces"], thread_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await client.runs.cancel(thread_id, run["run_id"], wait=True)
    finally:
        served["llm"].latency_s = 0.0
    (traj,) = runs_of(served["traces"], thread_id)
    assert traj.final.termination == "cancelled" and traj.final.answer == ""


async def test_options_as_configurable_and_a_stateless_run(served):
    client = langgraph_sdk.get_client(url=served["url"])
    # config={"configurable": ...} is the older way to give the same options; a run with no thread is stateless.
    final = await client.runs.wait(None, "deepsearch", input={"question": QUESTION},
                                   config={"configurable": {"indexes": [str(served["index"])], "max_rounds": 1,
                                                            "trace_id": "lg-stateless"}})  # fmt: skip
    assert "Chief of Protocol" in final["answer"]
    traj = trajectory(served["traces"], "lg-stateless")
    assert traj.final.termination == final["termination"] and traj.config["agent"]["max_rounds"] == 1
    assert traj.config["agent"]["indexes"] == [str(served["index"])]


async def test_a_clarifying_question_is_an_interrupt_and_the_resume_goes_on(served):
    client = langgraph_sdk.get_client(url=served["url"])
    thread_id = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(thread_id, "deepsearch", input={"question": AMBIGUOUS},
                                                 context={"interactive": True}, stream_mode="updates")]  # fmt: skip
    interrupts = [p.data["__interrupt__"] for p in parts if p.event == "updates" and "__interrupt__" in p.data]
    assert interrupts and interrupts[0][0]["value"]["question"] == "The film or the radio show?"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["clarify"] and not state["values"].get("answer")
    assert not runs_of(served["traces"], thread_id)[0].final  # paused: its trajectory is still open

    final = await client.runs.wait(thread_id, "deepsearch", command={"resume": "the 1945 film"})
    assert "Chief of Protocol" in final["answer"] and final["termination"] == "answered"
    (traj,) = runs_of(served["traces"], thread_id)  # one run, one trajectory, across the pause
    assert traj.question == AMBIGUOUS and traj.final.termination == "answered"
    asked = [s for s in traj.steps if s.kind == "judge" and s.target == "question"]
    assert [s.decision for s in asked] == ["ask"] and asked[0].labels["reply"] == "the 1945 film"
    assert traj.resolved_question and traj.resolved_question != AMBIGUOUS

    # A stateless run (no thread) cannot be resumed: its pause ends it, recorded as cancelled.
    await client.runs.wait(None, "deepsearch", input={"question": AMBIGUOUS},
                           context={"interactive": True, "trace_id": "lg-stateless-pause"})  # fmt: skip
    assert trajectory(served["traces"], "lg-stateless-pause").final.termination == "cancelled"


async def test_a_run_that_cannot_start_tells_the_client_why(served):
    client = langgraph_sdk.get_client(url=served["url"])
    thread_id = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(thread_id, "deepsearch", input={"question": QUESTION},
                                                 context={"indexes": ["no-such-index"]})]  # fmt: skip
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and "no index at" in json.dumps(errors) and "no-such-index" in json.dumps(errors)
    parts = [p async for p in client.runs.stream(None, "deepsearch", input={"question": QUESTION},
                                                 context={"max_rounds": 0})]  # fmt: skip
    assert [p.data for p in parts if p.event == "error"] == [
        {"error": "ServerRunError", "message": "deepsearch: bad run option max_rounds: Input should be greater than or "
         "equal to 1"}]  # fmt: skip


async def test_langgraph_dev_without_allow_blocking_gets_the_remedy_at_once():
    # `langgraph dev` without --allow-blocking installs blockbuster like this (its own function, in-process here):
    # a run refuses to start, naming the flag, instead of failing at its first trajectory write.
    from deepsearch.agent.serving.langgraph_entry import graph
    from langgraph_runtime_inmem.queue import _enable_blockbuster

    blockbuster = _enable_blockbuster()
    try:
        with pytest.raises(ValueError, match="langgraph dev --allow-blocking"):
            await graph.ainvoke({"question": QUESTION})
    finally:
        blockbuster.deactivate()


# ---- without the server: the options a run request may give, and callers that bring their own RunContext ----


def test_run_options_come_from_context_or_configurable_and_are_checked():
    from deepsearch.agent.serving.langgraph_context import run_options

    assert run_options({}, {"max_rounds": 2, "thread_id": "t1", "run_id": "r1"}).max_rounds == 2
    assert run_options({"max_rounds": 3}, {"max_rounds": 2}).max_rounds == 3  # context wins
    with pytest.raises(ValueError, match="max_round"):  # misspelt: an error, not silently ignored
        run_options({"max_round": 2})


def test_a_run_request_never_sends_the_servers_api_key_to_a_url_it_names(monkeypatch):
    from deepsearch.agent.serving.langgraph_context import ServerRunOptions, run_settings

    monkeypatch.setenv("DEEPSEARCH_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("DEEPSEARCH_LLM_API_KEY", "sk-server-secret")
    own = run_settings(ServerRunOptions(max_rounds=1))
    assert own.llm.api_key.get_secret_value() == "sk-server-secret" and own.agent.max_rounds == 1
    same = run_settings(ServerRunOptions(llm_base_url="http://127.0.0.1:8000/v1"))
    assert same.llm.api_key is not None
    other = run_settings(ServerRunOptions(llm_base_url="http://127.0.0.1:9999/v1", llm_model="m"))
    assert other.llm.base_url == ["http://127.0.0.1:9999/v1"] and other.llm.model == "m" and other.llm.api_key is None


async def test_a_caller_with_its_own_run_context_gets_the_plain_graph(tmp_path):
    from deepsearch.agent.budget import Budget
    from deepsearch.agent.context import RunContext
    from deepsearch.agent.llm import LLMClient
    from deepsearch.agent.run import budget_limits
    from deepsearch.agent.serving.langgraph_entry import graph

    from tests.graph_support import build_sample_index, fake_backend, local_tools, settings_for

    settings = settings_for(tmp_path)
    tools = local_tools(build_sample_index(tmp_path), settings)
    client = LLMClient(fake_backend(ScriptedModel()))
    budget = Budget(budget_limits(settings), client.usage)
    tools.bind(budget, None, lambda e: None)
    state = await graph.ainvoke({"question": QUESTION}, context=RunContext(settings, client, tools, budget))
    assert "Chief of Protocol" in state["answer"]
    assert not (tmp_path / "traces").exists()  # no recorder given, none made: the caller's context is used as is
    with pytest.raises(ValueError, match="asynchronously"):  # no context, sync: a clear error, not a crash inside
        graph.invoke({"question": QUESTION})
