"""kill -9 at random moments, then --resume: every id exactly once, every trajectory readable.

The batch runs in a forked child (the CLI's own `main`, modules already imported by this process), so
each start costs milliseconds rather than the seconds of a fresh interpreter; SIGKILL is as abrupt.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import deepsearch.agent.graph  # noqa: F401 - imported before forking so the children start at once
from deepsearch.agent.cli import main
from deepsearch.traces.reader import log_paths, read_log

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import SAMPLE, ScriptedModel, build_sample_index, server_responder

KILLS = 5


def complete_rows(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def spawn(args: list[str], env: dict[str, str]) -> int:
    """Run `deepsearch ARGS` in a forked child; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.environ.clear()
        os.environ.update(env)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sys.argv = ["deepsearch", *args]
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        os._exit(code)


def test_sigkill_at_random_points_then_resume_loses_and_repeats_nothing(tmp_path, cli_env):
    index = build_sample_index(tmp_path)
    samples = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    questions = tmp_path / "in.jsonl"
    with questions.open("w") as f:
        for n in range(24):
            f.write(json.dumps({**samples[n % len(samples)], "id": f"q{n}"}) + "\n")
    out = tmp_path / "out.jsonl"
    rng = random.Random(7)
    with FakeOpenAIServer(responder=server_responder(ScriptedModel()), latency_s=0.03) as server:
        args = ["batch", str(questions), "-o", str(out), "--resume", "--index", str(index), "--no-web",
                "--llm-base-url", server.base_url, "-c", "3", "-q"]  # fmt: skip
        for _ in range(KILLS):
            before = complete_rows(out)
            pid = spawn(args, cli_env)
            deadline = time.monotonic() + 60
            while complete_rows(out) == before and time.monotonic() < deadline:
                time.sleep(0.01)  # kill only once this run has written a row: the kill lands mid-batch
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status), f"the batch exited ({os.waitstatus_to_exitcode(status)}) before the kill"
        assert complete_rows(out) < 24, "the batch finished before the last kill; make it longer"
        _, status = os.waitpid(spawn(args, cli_env), 0)
    assert os.waitstatus_to_exitcode(status) == 0

    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{n}" for n in range(24))  # each exactly once
    logs = log_paths(tmp_path / "traces")
    assert len(logs) >= 24
    for path in logs:
        trajectory, report = read_log(path)
        assert trajectory is not None and not report.errors, (path.name, report.errors)
    finished = {p.stem for p in logs if read_log(p)[0].status == "complete"}
    assert {json.loads(line)["trace_id"] for line in out.read_text().splitlines()} <= finished
