"""Batch throughput against the fake OpenAI-compatible server with a fixed latency per call.

For each concurrency (questions in flight, and requests in flight to the server), answers a batch of
sample-corpus questions with the research graph (scripted replies, real BM25 index, real trajectories)
and closed-book, and prints questions/s against the ideal concurrency ÷ (calls per question × latency)
with their ratio, and the client's CPU per question. Then the peak RSS of a `deepsearch batch` process answering
1,000 questions.

Client CPU per question is the process time (user + system, all threads) of this process over a batch, divided by
its questions, over a batch that follows an untimed warm-up batch (both modes, 2 questions): the one-time costs of a
process's first question (lazy imports of the openai SDK, langchain_core and the graph modules, pydantic schema
building, the tokenizer's BPE load: ~1.8 s of CPU here) belong to start-up, not to each question, and at 64
questions they were ~28 ms of the first mode's figure and a quarter of its wall time. The fake server runs in a
spawned child process (FakeOpenAIServerProcess), so neither its CPU nor its share of the GIL is the client's: the
figure is the agent's own cost per question, and the throughput ratio is not held down by a server competing for the
client's interpreter. (Per-thread CPU clocks would exclude the server's
time but not its GIL contention.)

    python -m bench.batch_throughput [--latency-ms 200] [--concurrency 1 8 32 64] [--memory-questions 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepsearch.agent.batch.execute import BatchJob
from deepsearch.agent.batch.inputs import BatchQuestion

from bench.stats import print_table
from tests.fakes.openai_server import FakeOpenAIServerProcess
from tests.graph_support import SAMPLE, ScriptedModel, build_sample_index, server_responder, settings_for


def scripted_responder():
    """The server's responder (built in the server's process): scripted replies per role."""
    return server_responder(ScriptedModel())


def sample_questions(n: int) -> list[BatchQuestion]:
    rows = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    return [BatchQuestion(id=f"q{i}", question=rows[i % len(rows)]["question"], answers=rows[i % len(rows)]["answers"])
            for i in range(n)]  # fmt: skip


def _measure(tmp: Path, server: FakeOpenAIServerProcess, index: Path, concurrency: int, closed_book: bool, n: int,
             latency_s: float) -> dict:  # fmt: skip
    url = server.base_url
    settings = settings_for(tmp / f"run-{concurrency}-{closed_book}", indexes=[str(index)], web=False)
    settings.llm.base_url, settings.llm.model, settings.llm.server_kind = [url], "fake-model", "vllm"
    settings.llm.concurrency = concurrency
    output = tmp / f"out-{concurrency}-{closed_book}.jsonl"
    job = BatchJob(settings, output, closed_book=closed_book, concurrency=concurrency, quiet=True)
    questions = sample_questions(n)
    started, cpu_started, server_started = time.perf_counter(), time.process_time(), server.cpu_seconds()
    rows = asyncio.run(job.run(questions))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    server_cpu = server.cpu_seconds()
    calls = sum(r["usage"]["llm_calls"] for r in rows) / len(rows)
    ideal = concurrency / (calls * latency_s)
    measured = len(rows) / wall
    return {"questions": len(rows), "errors": sum(1 for r in rows if r["error"]), "calls_per_question": calls,
            "questions_per_s": measured, "ideal_questions_per_s": ideal, "ratio": measured / ideal,
            "client_cpu_ms_per_question": cpu / len(rows) * 1000,
            # The fake server's own CPU per question (its process): where it nears wall / questions × cores left
            # to it, the server, not the client, bounds the ratio.
            "server_cpu_ms_per_question": None if server_cpu is None or server_started is None
            else (server_cpu - server_started) / len(rows) * 1000}  # fmt: skip


def peak_rss_mb(tmp: Path, url: str, index: Path, questions: int, concurrency: int) -> float:
    """Peak RSS of a `deepsearch batch` process (research mode) over `questions` questions."""
    path = tmp / "memory.jsonl"
    path.write_text("".join(q.model_dump_json(include={"id", "question", "answers"}) + "\n"
                            for q in sample_questions(questions)))  # fmt: skip
    env = {**os.environ, "DEEPSEARCH_TRACES_DIR": str(tmp / "memory-traces")}
    cmd = [sys.executable, "-m", "deepsearch.agent", "batch", str(path), "-o", str(tmp / "memory-out.jsonl"),
           "--index", str(index), "--no-web", "--llm-base-url", url, "-c", str(concurrency), "-q"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024  # ru_maxrss is in KiB on Linux


def run(latency_ms: float = 200.0, concurrency: tuple[int, ...] = (1, 8, 32, 64), memory_questions: int = 1000) -> dict:
    latency_s = latency_ms / 1000
    figures: dict = {"latency_ms": latency_ms, "throughput": {}}
    with (
        tempfile.TemporaryDirectory() as d,
        FakeOpenAIServerProcess("bench.batch_throughput:scripted_responder", latency_s=latency_s) as server,
    ):
        tmp = Path(d)
        index = build_sample_index(tmp)
        (tmp / "warm-up").mkdir()
        for closed in (False, True):  # warm-up, untimed: see the module docstring
            _measure(tmp / "warm-up", server, index, 2, closed, 2, latency_s)
        for c in concurrency:
            n = max(4, 2 * c)  # two waves: the steady state dominates the ramp-up and the tail
            for mode, closed in (("research", False), ("closed_book", True)):
                figures["throughput"][f"{mode}@{c}"] = _measure(tmp, server, index, c, closed, n, latency_s)
        if memory_questions:
            figures["peak_rss_mb"] = peak_rss_mb(tmp, server.base_url, index, memory_questions, max(concurrency))
            figures["memory_questions"] = memory_questions
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--memory-questions", type=int, default=1000, help="0 = skip the memory run")
    args = parser.parse_args()
    f = run(args.latency_ms, tuple(args.concurrency), args.memory_questions)
    rows = [
        (f"{key:<16}", f"{t['questions_per_s']:7.2f} q/s  ideal {t['ideal_questions_per_s']:7.2f}  ratio "
         f"{t['ratio']:.2f}  client CPU {t['client_cpu_ms_per_question']:6.1f} ms/question  (server "
         f"{t['server_cpu_ms_per_question'] or 0:5.1f})  "
         f"({t['calls_per_question']:.1f} calls/question, n={t['questions']}, {t['errors']} failed)")
        for key, t in f["throughput"].items()
    ]  # fmt: skip
    if "peak_rss_mb" in f:
        rows.append((f"peak RSS, {f['memory_questions']} questions", f"{f['peak_rss_mb']:.0f} MB"))
    print_table(f"batch throughput @ {args.latency_ms:.0f} ms per LLM call", rows)


if __name__ == "__main__":
    main()
