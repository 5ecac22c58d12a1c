"""The agent on HotpotQA dev questions (tuning ids only), next to the closed-book baseline.

Indexes the pooled corpus of the question file, answers `--limit` questions from `--ids` with the
configured model (embedded by default, or `--llm-base-url` for vLLM), and prints EM/F1, LLM calls,
tokens, searches, seconds and terminations per mode. Quality is printed, never asserted.

    python -m bench.hotpot_agent /work/shared/data/hotpotqa_dev_distractor_500 --limit 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from deepsearch.agent.closed_book import answer_closed_book
from deepsearch.agent.config import load_settings
from deepsearch.agent.llm import LLMClient, build_backend
from deepsearch.agent.run import aresearch
from deepsearch.tools.local_index import update_index
from deepsearch.traces.scoring import score_result

from bench.hotpot_pool import load_pool, write_corpus_jsonl
from bench.stats import print_table


async def _run(data: Path, ids_file: Path | None, limit: int, overrides: dict) -> dict:
    passages, questions = load_pool(data)
    if ids_file:
        wanted = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        by_id = {q.id: q for q in questions}
        questions = [by_id[i] for i in wanted if i in by_id]
    questions = questions[:limit]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus_jsonl(passages, Path(tmp) / "corpus.jsonl")
        index_dir = Path(tmp) / "index"
        update_index(index_dir, [corpus])
        paths = {"traces.dir": str(Path(tmp) / "traces"), "agent.checkpoint_db": str(Path(tmp) / "ckpt.sqlite")}
        settings = load_settings(overrides=overrides | paths).settings
        backend = build_backend(settings.llm)
        rows = {"agent": [], "closed_book": []}
        try:
            for n, q in enumerate(questions, 1):
                started = time.perf_counter()
                closed = await answer_closed_book(LLMClient(backend), q.question)
                rows["closed_book"].append(_row(closed, q, time.perf_counter() - started))
                started = time.perf_counter()
                result = await aresearch(q.question, settings=settings, backend=backend, indexes=[str(index_dir)],
                                         web=False, gold=q.answers)  # fmt: skip
                rows["agent"].append(_row(result, q, time.perf_counter() - started))
                print(f"[{n}/{len(questions)}] {q.question[:70]} → {result.short_answer or result.answer[:60]!r} "
                      f"(gold {q.answers[0]!r}, {result.termination})", flush=True)  # fmt: skip
        finally:
            await backend.aclose()
    return {mode: _summarise(r) for mode, r in rows.items()}


def _row(result, question, seconds: float) -> dict:
    scores = score_result(result.short_answer or result.answer, result.termination, question.answers)
    u = result.usage
    return {"em": scores.em, "f1": scores.f1, "llm_calls": u.llm_calls, "tokens": u.prompt_tokens + u.completion_tokens,
            "searches": u.searches, "seconds": seconds, "termination": result.termination}  # fmt: skip


def _summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    mean = {k: statistics.fmean(r[k] for r in rows) for k in ("em", "f1", "llm_calls", "tokens", "searches")}
    return {**mean, "median_seconds": statistics.median(r["seconds"] for r in rows), "n": len(rows),
            "terminations": dict(Counter(r["termination"] for r in rows))}  # fmt: skip


def run(data: Path, ids: Path | None = None, limit: int = 20, overrides: dict | None = None) -> dict:
    return asyncio.run(_run(data, ids, limit, overrides or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="hotpotqa_dev_distractor_500 folder")
    parser.add_argument("--ids", type=Path, help="question ids to use (default: DATA/dev_ids.txt)")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--llm-base-url", help="OpenAI-compatible server (default: the embedded model)")
    parser.add_argument("--max-rounds", type=int, default=2)
    args = parser.parse_args()
    ids = args.ids or (args.data / "dev_ids.txt" if args.data.is_dir() else None)
    overrides = {
        "agent.max_rounds": args.max_rounds,
        "llm.base_url": [args.llm_base_url] if args.llm_base_url else None,
    }
    figures = run(args.data, ids, args.limit, overrides)
    for mode, f in figures.items():
        print_table(
            f"{mode} (n={f['n']})",
            [("EM / F1", f"{f['em']:.3f} / {f['f1']:.3f}"), ("LLM calls per question", f"{f['llm_calls']:.1f}"),
             ("tokens per question", f"{f['tokens']:.0f}"), ("searches per question", f"{f['searches']:.1f}"),
             ("median seconds", f"{f['median_seconds']:.1f}"), ("terminations", str(f["terminations"]))],
        )  # fmt: skip


if __name__ == "__main__":
    main()
