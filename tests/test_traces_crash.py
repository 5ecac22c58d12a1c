"""Crash safety: a writer killed with SIGKILL leaves a log that validates and reads as `incomplete`."""

import json
import os
import signal
import subprocess
import sys
import time

from deepsearch.traces.reader import log_paths, read_log
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header

from tests.fakes.openai_server import FakeOpenAIServer

# Writes steps with 64 KB payloads as fast as it can, so the kill lands mid-stream (often mid-write).
WRITER = """
import sys
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header
rec = TraceRecorder.start(sys.argv[1], Header(question="killed mid-run"))
print(rec.path, flush=True)
i = 0
while True:
    rec.tool_call("fetch_page", {"url": f"https://x.example/{i}"}, results=[{"id": str(i), "text": f"{i:08d}" * 8192}])
    rec.step("budget", used={"fetches": i})
    i += 1
"""


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _deepsearch(*args, env):
    return subprocess.run([sys.executable, "-m", "deepsearch.agent", *args], env=env, capture_output=True, text=True)


def test_writer_killed_mid_stream_leaves_a_readable_incomplete_log(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    path = tmp_path / "runs" / os.path.basename(child.stdout.readline().strip())
    _wait_for(lambda: path.stat().st_size > 2_000_000)
    child.send_signal(signal.SIGKILL)
    child.wait()
    traj, report = read_log(path)
    assert report.ok, report.errors
    assert traj.status == "incomplete" and report.incomplete and traj.final is None
    assert len(traj.steps) >= 10
    # every stored page is whole: a content line is either complete or dropped as the torn tail
    assert traj.contents and all(len(c.text) == 65536 for c in traj.contents.values())


def test_torn_last_line_is_dropped_with_a_warning(tmp_path):
    rec = TraceRecorder.start(tmp_path, Header(question="q"))
    rec.step("budget", used={"llm_calls": 1})
    rec.close()
    with rec.path.open("ab") as f:
        f.write(b'{"ev":"step","seq":2,"step":{"kind":"bud')
    traj, report = read_log(rec.path)
    assert report.ok and "torn last line" in report.warnings[0]
    assert traj.status == "incomplete" and len(traj.steps) == 1


def test_ask_killed_with_sigkill_then_validate_ls_and_export(cli_env, tmp_path):
    """The contract check: a closed-book ask killed mid-call still leaves a valid, listed, exportable set."""
    answer = lambda body: json.dumps({"answer": "William Shakespeare"})  # noqa: E731
    with FakeOpenAIServer(responder=answer) as fast, FakeOpenAIServer(responder=answer, latency_s=30) as slow:
        done = _deepsearch(
            "ask", "Who wrote Hamlet?", "--closed-book", "--json", "--llm-base-url", fast.base_url, env=cli_env
        )
        assert done.returncode == 0, done.stderr
        trace_id = json.loads(done.stdout)["trace_id"]
        cmd = [
            sys.executable,
            "-m",
            "deepsearch.agent",
            "ask",
            "Who painted the Mona Lisa?",
            "--closed-book",
            "--json",
            "--llm-base-url",
            slow.base_url,
        ]
        child = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: len(slow.requests) == 1)  # the run is waiting on its LLM call
        child.send_signal(signal.SIGKILL)
        child.wait()

    traces_dir = cli_env["DEEPSEARCH_TRACES_DIR"]
    assert len(log_paths(traces_dir)) == 2
    assert _deepsearch("traces", "validate", env=cli_env).returncode == 0
    runs = {r["id"]: r for r in json.loads(_deepsearch("traces", "ls", "--json", env=cli_env).stdout)}
    assert runs[trace_id]["status"] == "complete" and runs[trace_id]["termination"] == "answered"
    (killed,) = [r for i, r in runs.items() if i != trace_id]
    assert killed["status"] == "incomplete" and killed["question"] == "Who painted the Mona Lisa?"

    out = tmp_path / "msgs.jsonl"
    assert _deepsearch("traces", "export", "--format", "messages", "-o", str(out), env=cli_env).returncode == 0
    (sample,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert sample["id"] == trace_id and sample["messages"][-1] == {
        "role": "assistant",
        "content": "William Shakespeare",
    }
