"""`deepsearch batch --ray` on a real local Ray cluster (2 CPUs on 127.0.0.1, shared by this module's tests)
against the fake OpenAI-compatible server answering like the scripted research model.

A 50-question batch; a worker process SIGKILLed mid-batch; the driver process SIGKILLed mid-batch and
resumed: each time every id exactly once in the output and one complete trajectory per question.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from deepsearch.agent.batch.inputs import read_questions
from deepsearch.agent.distributed.ray_runner import RayBatchJob
from deepsearch.agent.distributed.trajectories import stable_trace_id
from deepsearch.traces.reader import log_paths, read_log

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import SAMPLE, ScriptedModel, build_sample_index, server_responder, settings_for
from tests.ray_support import ray, start_local_cluster
from tests.test_eval_cli import ircot_file


@pytest.fixture(scope="module")
def cluster():
    yield start_local_cluster(cpus=2)
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_sample_index(tmp_path_factory.mktemp("ray-index"))


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(responder=server_responder(ScriptedModel()), latency_s=0.02) as s:
        yield s


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """`deepsearch ARGS` in this process (it reuses the module's Ray cluster); exit code and output."""
    from deepsearch.agent.cli import main

    monkeypatch.setattr(sys, "argv", ["deepsearch", *args])
    monkeypatch.setenv("COLUMNS", "160")
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def write_questions(path: Path, n: int) -> Path:
    samples = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    path.write_text("".join(json.dumps({**samples[i % len(samples)], "id": f"q{i}"}) + "\n" for i in range(n)))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_one_complete_trajectory_per_row(traces: Path, output: Path, n: int) -> None:
    written = rows(output)
    assert sorted(r["id"] for r in written) == sorted(f"q{i}" for i in range(n))  # every id exactly once
    logs = {p.stem: p for p in log_paths(traces)}
    assert sorted(logs) == sorted(r["trace_id"] for r in written)  # no trajectory without its row, none twice
    for r in written:
        assert r["trace_id"] == stable_trace_id(str(output), r["id"])
        trajectory, report = read_log(logs[r["trace_id"]])
        assert not report.errors and trajectory.status == "complete" and trajectory.question == r["question"]
    assert not list((traces / "runs").glob(".*")), "a half-written trajectory was left behind"


def test_fifty_questions_on_two_workers(tmp_path, cluster, corpus, server, capsys, monkeypatch):
    questions = write_questions(tmp_path / "in.jsonl", 50)
    out, traces = tmp_path / "out.jsonl", tmp_path / "traces"
    code, output = run_cli([
        "batch", str(questions), "-o", str(out), "--ray", cluster, "-c", "8", "--index", str(corpus), "--no-web",
        "--llm-base-url", server.base_url, "--traces-dir", str(traces),
    ], capsys, monkeypatch)  # fmt: skip
    assert code == 0, output
    assert "[50/50]" in output and "Ray workers" in output and "50 (0 failed)" in output
    assert_one_complete_trajectory_per_row(traces, out, 50)
    written = rows(out)
    assert all(r["error"] is None and r["mode"] == "research" and r["usage"]["llm_calls"] > 3 for r in written)
    assert sum(r["scores"]["em"] for r in written) > 0
    table = output[output.index("Ray workers") :]
    answered = [int(line.split("│")[4]) for line in table.splitlines() if line.count("│") == 9]
    assert len(answered) == 2 and sum(answered) == 50 and min(answered) > 0  # both workers took a share


def kill_a_worker_once_rows_appear(job: RayBatchJob, out: Path, after_rows: int, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pool = job.pool
        if pool is not None and out.exists() and out.read_bytes().count(b"\n") >= after_rows:
            worker = pool.workers[0]
            if worker.outstanding:  # questions in flight: they must come back and be redone
                killed.append(worker.pids[-1])
                os.kill(worker.pids[-1], signal.SIGKILL)
                return
        time.sleep(0.005)


def test_worker_killed_mid_batch_has_its_questions_retried(tmp_path, cluster, corpus, server):
    n = 30
    questions, _ = read_questions(write_questions(tmp_path / "in.jsonl", n))
    out, traces = tmp_path / "out.jsonl", tmp_path / "traces"
    settings = settings_for(tmp_path, indexes=[str(corpus)], web=False)
    settings.llm.base_url, settings.llm.model, settings.llm.server_kind = [server.base_url], "fake-model", "vllm"
    settings.traces.dir = traces
    job = RayBatchJob(settings, out, address=cluster, concurrency=6, quiet=True)
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_worker_once_rows_appear, args=(job, out, 5, killed), daemon=True)
    killer.start()
    asyncio.run(job.run(questions))
    killer.join()

    assert killed, "no worker was killed"
    assert_one_complete_trajectory_per_row(traces, out, n)
    assert not any(r["error"] for r in rows(out))
    victim = job.pool.workers[0]
    assert victim.lost >= 1 and victim.restarts == 1 and victim.pids[0] == killed[0] and len(victim.pids) == 2
    assert sum(w.answered for w in job.pool.workers) == n


def deepsearch_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deepsearch.agent", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_driver_killed_then_resumed_repeats_and_loses_nothing(tmp_path, cluster, corpus, server, cli_env):
    n = 40
    questions = write_questions(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    args = ["batch", str(questions), "-o", str(out), "--resume", "--ray", cluster, "-c", "4", "--index", str(corpus),
            "--no-web", "--llm-base-url", server.base_url, "-q"]  # fmt: skip
    driver = deepsearch_process(args, cli_env)
    deadline = time.monotonic() + 90
    while not (out.exists() and out.read_bytes().count(b"\n") >= 8) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.stderr.read()
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    written = out.read_bytes().count(b"\n")
    assert 8 <= written < n, "the kill did not land mid-batch"

    resumed = deepsearch_process(args, cli_env)
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert_one_complete_trajectory_per_row(Path(cli_env["DEEPSEARCH_TRACES_DIR"]), out, n)


def test_cli_errors_are_one_line(tmp_path, cluster, server, capsys, monkeypatch):
    questions = write_questions(tmp_path / "in.jsonl", 3)
    common = ["batch", str(questions), "-o", str(tmp_path / "out.jsonl"), "--ray", cluster,
              "--llm-base-url", server.base_url, "--no-web"]  # fmt: skip
    code, output = run_cli([*common, "--ray-workers", "8", "--index", "x"], capsys, monkeypatch)
    assert code == 2 and output.startswith("deepsearch: error: 8 Ray worker(s)") and output.count("\n") == 1
    code, output = run_cli([*common, "--index", str(tmp_path / "no-such-index")], capsys, monkeypatch)
    assert code == 2 and "deepsearch: error: no index at" in output  # raised on a worker, told by the driver
    assert "Traceback" not in output


def test_eval_with_baseline_and_judge_on_ray(tmp_path, cluster, server, capsys, monkeypatch):
    data = ircot_file(tmp_path)
    out = tmp_path / "ev.jsonl"
    code, output = run_cli(["eval", str(data), "--baseline", "--judge", "--ray", cluster, "-c", "4", "-o", str(out),
                            "--llm-base-url", server.base_url, "--summary-json", str(tmp_path / "s.json")],
                           capsys, monkeypatch)  # fmt: skip
    assert code == 0, output
    assert output.count("Ray workers") == 2  # one pool per mode: research, then the closed-book baseline
    research, closed = json.loads((tmp_path / "s.json").read_text())["modes"]
    assert research["summary"]["questions"] == closed["summary"]["questions"] == 4
    assert research["summary"]["judged"] == 4 and research["evidence_recall"] > 0
    assert len(rows(out)) == len(rows(tmp_path / "ev.closed_book.jsonl")) == 4
