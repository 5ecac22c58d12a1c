"""Batch throughput on Ray (1 and 2 workers) beside the local asyncio batch, at equal total concurrency.

Every mode answers the same sample-corpus questions against the fake OpenAI-compatible server with a
fixed latency per call (research: scripted replies, real BM25 index, real trajectories shipped back;
closed-book: one call per question). Ray figures leave out joining the cluster and starting the
workers (printed apart): they are paid once per batch. Printed per mode: questions/s, the ideal
concurrency ÷ (calls per question × latency) and their ratio, and Ray's overhead per question: the
extra wall time per question beside the local batch, × concurrency (the time a slot spends on Ray).

Each mode runs `--repeats` times (interleaved, so a busy machine slows every mode alike); medians are printed.

    python -m bench.ray_throughput [--latency-ms 100] [--concurrency 16] [--questions 96] [--workers 1 2] [--repeats 3]
"""

from __future__ import annotations

import os

# A local cluster on 127.0.0.1 (see tests/ray_support.py); set before Ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from deepsearch.agent.batch.execute import BatchJob  # noqa: E402
from deepsearch.agent.distributed.ray_runner import RayBatchJob  # noqa: E402

from bench.batch_throughput import sample_questions  # noqa: E402
from bench.stats import print_table  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402
from tests.graph_support import ScriptedModel, build_sample_index, server_responder, settings_for  # noqa: E402


def _settings(tmp: Path, name: str, url: str, index: Path, concurrency: int, workers: int):
    settings = settings_for(tmp / name, indexes=[str(index)], web=False)
    settings.llm.base_url, settings.llm.model, settings.llm.server_kind = [url], "fake-model", "vllm"
    settings.llm.concurrency = concurrency
    settings.ray.workers = workers
    return settings


def _measure(tmp: Path, url: str, index: Path, *, closed_book: bool, workers: int, concurrency: int, n: int) -> dict:
    """workers = 0: the local asyncio batch; else a Ray batch on that many workers."""
    name = f"{'cb' if closed_book else 'rs'}-{workers}"
    settings = _settings(tmp, name, url, index, concurrency, workers)
    options = {"closed_book": closed_book, "concurrency": concurrency, "quiet": True}
    output = tmp / f"{name}.jsonl"
    local = not workers
    job = BatchJob(settings, output, **options) if local else RayBatchJob(settings, output, address="local", **options)
    started = time.perf_counter()
    rows = asyncio.run(job.run(sample_questions(n)))
    wall = job.answering_s if isinstance(job, RayBatchJob) else time.perf_counter() - started
    return {
        "questions": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "calls_per_question": sum(r["usage"]["llm_calls"] for r in rows) / len(rows),
        "seconds": wall,
        "startup_s": job.startup_s if isinstance(job, RayBatchJob) else 0.0,
        "questions_per_s": len(rows) / wall,
    }


def _median_run(samples: list[dict]) -> dict:
    """The run with the median wall time (its other figures belong to it), with every wall time kept."""
    ranked = sorted(samples, key=lambda f: f["seconds"])
    return {**ranked[(len(ranked) - 1) // 2], "seconds_all": [round(f["seconds"], 3) for f in samples],
            "startup_s": statistics.median(f["startup_s"] for f in samples)}  # fmt: skip


def run(
    latency_ms: float = 100.0,
    concurrency: int = 16,
    questions: int = 96,
    workers: tuple[int, ...] = (1, 2),
    repeats: int = 3,
) -> dict:
    latency_s = latency_ms / 1000
    figures: dict = {"latency_ms": latency_ms, "concurrency": concurrency, "questions": questions, "modes": {}}
    with (
        tempfile.TemporaryDirectory() as d,
        FakeOpenAIServer(responder=server_responder(ScriptedModel()), latency_s=latency_s) as server,
    ):
        tmp = Path(d)
        index = build_sample_index(tmp)
        for mode, closed in (("research", False), ("closed_book", True)):
            samples: dict[int, list[dict]] = {w: [] for w in (0, *workers)}
            for r in range(repeats):
                for w in samples:
                    samples[w].append(_measure(tmp / f"r{r}", server.base_url, index, closed_book=closed, workers=w,
                                               concurrency=concurrency, n=questions))  # fmt: skip
            local = _median_run(samples[0])
            for w, runs in samples.items():
                f = local if w == 0 else _median_run(runs)
                f["ideal_questions_per_s"] = concurrency / (f["calls_per_question"] * latency_s)
                f["ratio"] = f["questions_per_s"] / f["ideal_questions_per_s"]
                if w:  # the extra time a question holds one of the `concurrency` slots, beside the local batch
                    f["overhead_ms_per_question"] = (f["seconds"] - local["seconds"]) * concurrency / questions * 1000
                figures["modes"][f"{mode}@{'local' if w == 0 else f'ray{w}'}"] = f
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16, help="questions in flight, in total")
    parser.add_argument("--questions", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    f = run(args.latency_ms, args.concurrency, args.questions, tuple(args.workers), args.repeats)
    rows = []
    for key, m in f["modes"].items():
        text = f"{m['questions_per_s']:6.2f} q/s  ideal {m['ideal_questions_per_s']:6.2f}  ratio {m['ratio']:.2f}  "
        text += f"{m['calls_per_question']:.1f} calls/q, {m['errors']} failed"
        if "overhead_ms_per_question" in m:
            text += f"  Ray overhead {m['overhead_ms_per_question']:+6.1f} ms/q (start-up {m['startup_s']:.1f} s)"
        rows.append((key, text))
    title = f"Ray batch throughput @ {args.latency_ms:.0f} ms per LLM call, {args.concurrency} in flight, "
    print_table(title + f"{args.questions} questions, median of {args.repeats}", rows)


if __name__ == "__main__":
    main()
