"""The whole pipeline against what one search could give: the agent driven by the grounded reader.

Over the pooled corpus of all passages of all questions (as `deepsearch eval` builds it), the agent
answers each question with the grounded reader (tests/fakes/grounded_reader.py) behind the fake OpenAI
server: a model that reads perfectly but knows only what the pipeline shows it. Side by side:

- agent EM/F1 (an abstention scores 0) and the share of runs that end `answered`;
- the single-shot ceiling: the gold answer in the top 5 / top 10 of ONE search for the whole question,
  with the agent's own LocalSearcher (a yes/no answer counts when every supporting passage is there);
- the termination mix, and median LLM calls, prompt tokens (tiktoken) and searches per question.

So the figures measure planning, querying, selection, judging, stopping and verification, not a model.
Tune on musique_train_hipporag_100 and HotpotQA dev_ids.txt only. Figures are printed, never asserted.

    python -m bench.pipeline_ceiling /work/shared/data/musique_train_hipporag_100 --limit 30
    python -m bench.pipeline_ceiling /work/shared/data/hotpotqa_dev_distractor_500 \\
        --ids /work/shared/data/hotpotqa_dev_distractor_500/dev_ids.txt --json hotpot.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from deepsearch.agent.config import Settings, load_settings
from deepsearch.agent.errors import UsageError
from deepsearch.agent.eval.datasets import load_dataset, select
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.agent.llm import build_backend
from deepsearch.agent.run import aresearch
from deepsearch.agent.tokens import count_tokens
from deepsearch.tools.local_search import LocalSearcher
from deepsearch.traces.scoring import score_result

from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def single_shot(reader: GroundedReader, searcher: LocalSearcher, question: str) -> dict[str, bool]:
    """Whether the gold answer is in the top 5 / top 10 of one search for the whole question."""
    q = reader.question(question)
    hits = searcher.search(question, k=10)
    blocks = [(h.chunk_id, h.title, h.text) for h in hits]
    return {f"top{k}": bool(q and q.held(q.whole, blocks[:k])) for k in (5, 10)}


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(count_tokens(str(m.get("content", ""))) for m in messages)


async def _answer(q, settings: Settings, backend, index: Path, timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(
            aresearch(q.question, settings=settings, backend=backend, indexes=[str(index)], web=False,
                      gold=q.answers, meta=q.meta, checkpoint=False),
            timeout_s,
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - one question's crash is its row, reported, not the bench's end
        _log(f"{q.id}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}")
        name = "timeout" if isinstance(e, TimeoutError) else type(e).__name__
        return {
            "id": q.id,
            "short_answer": "",
            "termination": f"error_{name}",
            "em": 0.0,
            "f1": 0.0,
            "llm_calls": 0,
            "prompt_tokens": 0,
            "searches": 0,
            "seconds": time.perf_counter() - started,
        }
    scores = score_result(result.short_answer, result.termination, q.answers)
    u = result.usage
    return {"id": q.id, "short_answer": result.short_answer, "termination": result.termination,
            "em": scores.em or 0.0, "f1": scores.f1 or 0.0, "llm_calls": u.llm_calls, "prompt_tokens": u.prompt_tokens,
            "searches": u.searches, "seconds": time.perf_counter() - started}  # fmt: skip


async def _run_agent(questions, reader, settings, index: Path, concurrency: int, timeout_s: float) -> list[dict]:
    with FakeOpenAIServer(responder=reader, prompt_tokens=_prompt_tokens) as server:
        settings = settings.model_copy(deep=True)
        settings.llm.base_url, settings.llm.backend = [server.base_url], "openai"
        settings.llm.concurrency = max(settings.llm.concurrency, concurrency)
        backend = build_backend(settings.llm)
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(q) -> dict:
            nonlocal done
            async with gate:
                row = await _answer(q, settings, backend, index, timeout_s)
            done += 1
            _log(f"[{done}/{len(questions)}] {q.id} → {row['short_answer']!r} (gold {q.answers[0]!r}; "
                 f"{row['termination']}, {row['llm_calls']} calls, {row['seconds']:.1f} s)")  # fmt: skip
            return row

        try:
            return list(await asyncio.gather(*(one(q) for q in questions)))
        finally:
            await backend.aclose()


def figures(rows: list[dict], ceiling: list[dict[str, bool]]) -> dict[str, Any]:
    n = len(rows)

    def mean(values) -> float:
        return round(statistics.fmean(values), 4) if n else 0.0

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows) if n else 0.0

    return {
        "questions": n,
        "em": mean(r["em"] for r in rows),
        "f1": mean(r["f1"] for r in rows),
        "single_shot_top5": mean(c["top5"] for c in ceiling),
        "single_shot_top10": mean(c["top10"] for c in ceiling),
        "answered_share": mean(r["termination"] == "answered" for r in rows),
        "termination": dict(Counter(r["termination"] for r in rows).most_common()),
        "median_llm_calls": median("llm_calls"),
        "median_prompt_tokens": median("prompt_tokens"),
        "median_searches": median("searches"),
    }


def run(data: Path | str, ids: Path | None = None, limit: int | None = None, concurrency: int = 4,
        timeout_s: float = 300.0, overrides: dict | None = None) -> dict[str, Any]:  # fmt: skip
    """The figures for DATA (a data folder or file, as `deepsearch eval` takes it)."""
    with tempfile.TemporaryDirectory(prefix="pipeline-ceiling-") as tmp:
        paths = {"traces.dir": f"{tmp}/traces", "agent.checkpoint_db": f"{tmp}/ckpt.sqlite", "agent.web": False}
        settings = load_settings(overrides=paths | (overrides or {})).settings
        dataset = load_dataset(str(data), settings.eval.data_dir)
        questions = select(dataset.questions, ids, limit)
        index = pooled_index(dataset, settings, log=_log)
        reader = GroundedReader.from_dataset(dataset, questions)
        searcher = LocalSearcher(index, settings.index)
        try:
            ceiling = [single_shot(reader, searcher, q.question) for q in questions]
        finally:
            searcher.close()
        _log(f"{dataset.name}: {len(questions)} questions; {len(dataset.passages)} pooled passages; "
             f"{sum(bool(q.hops) for q in reader.questions.values())} with a gold decomposition")  # fmt: skip
        rows = asyncio.run(_run_agent(questions, reader, settings, index, concurrency, timeout_s))
    return figures(rows, ceiling)


def print_figures(name: str, f: dict[str, Any]) -> None:
    print(f"{name}: {f['questions']} questions, grounded reader, pooled corpus")
    print(f"  {'':<22}{'EM':>8}{'F1':>8}")
    print(f"  {'agent':<22}{f['em']:>8.3f}{f['f1']:>8.3f}")
    print(f"  {'single search, top 5':<22}{f['single_shot_top5']:>8.3f}")
    print(f"  {'single search, top 10':<22}{f['single_shot_top10']:>8.3f}")
    print(f"  answered: {f['answered_share']:.0%}   termination: "
          + ", ".join(f"{k} {v}" for k, v in f["termination"].items()))  # fmt: skip
    print(f"  median per question: {f['median_llm_calls']:g} LLM calls, {f['median_prompt_tokens']:g} prompt tokens, "
          f"{f['median_searches']:g} searches")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a data folder or question file (MuSiQue or HotpotQA), as `deepsearch eval`")
    parser.add_argument("--ids", type=Path, help="only these question ids (one per line)")
    parser.add_argument("--limit", type=int, help="at most this many questions")
    parser.add_argument("--concurrency", type=int, default=4, help="questions in flight at once")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    try:
        f = run(args.data, args.ids, args.limit, args.concurrency)
    except UsageError as e:
        print(f"python -m bench.pipeline_ceiling: error: {e}", file=sys.stderr)
        return 2
    print_figures(Path(args.data).name, f)
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
