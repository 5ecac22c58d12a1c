"""Reranker quality and cost on the pooled HotpotQA dev-500 corpus (gold = `is_supporting` paragraphs).

For BM25, hybrid, and hybrid + each reranker mode: nDCG@10, recall@k and both-gold@k; for the rerankers
also LLM calls, prompt tokens and seconds per query, how many passages the knee cut keeps against a fixed
top-5, and the tokens each sends forward (verified evidence passages vs the top-5 chunks whole).

The embedded model (SmolLM2-135M) is the default; `--llm-base-url` measures any OpenAI-compatible server
(e.g. vLLM on a GPU host) with the same script. Tune only on dev_ids.txt:

    .venv/bin/python -m bench.rerank_eval DATA --ids DATA/dev_ids.txt --limit 20 --modes yesno,pointwise
    .venv/bin/python -m bench.rerank_eval DATA --ids DATA/dev_ids.txt --llm-base-url http://gpu:8000/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deepsearch.agent.config import IndexSettings, LLMSettings, RerankSettings
from deepsearch.agent.llm import LLMClient, build_backend
from deepsearch.agent.tokens import count_tokens
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher
from deepsearch.tools.rerank import RerankOutcome, rerank
from deepsearch.tools.rerank.local_candidates import candidates_from_hits

from bench.hotpot_pool import Question, load_pool, recall_table, write_corpus_jsonl
from bench.retrieval_quality import select
from bench.stats import print_table

RERANK_MODES = ("listwise", "pointwise", "yesno", "pool")


def ndcg_at(ids: list[str], gold: list[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ids[:k]) if d in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(gold))))
    return dcg / ideal if ideal else 0.0


def _doc(chunk_id: str) -> str:
    return chunk_id.split("#", 1)[0]


def _quality(ranked: list[list[str]], questions: list[Question]) -> dict[str, float]:
    ndcg = statistics.mean(ndcg_at(ids, q.gold_ids) for ids, q in zip(ranked, questions, strict=True))
    return {"ndcg@10": round(ndcg, 3), **recall_table(ranked, questions)}


async def _rerank_mode(
    client: LLMClient, searcher: LocalSearcher, questions: list[Question], settings: RerankSettings, concurrency: int
) -> tuple[list[RerankOutcome], list[list[str]]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(q: Question):
        async with gate:
            hits = await searcher.asearch(q.question, settings.candidates, "hybrid")
            return await rerank(client, q.question, candidates_from_hits(hits), settings), hits

    results = await asyncio.gather(*(one(q) for q in questions))
    return [o for o, _ in results], [[h.text for h in hits] for _, hits in results]


def _costs(outcomes: list[RerankOutcome], texts: list[list[str]], questions: list[Question]) -> dict[str, float]:
    kept_docs = [{_doc(p.candidate_id) for p in o.evidence} for o in outcomes]
    top5_docs = [{_doc(c.id) for c in o.ranked[:5]} for o in outcomes]

    def gold_share(selected: list[set[str]]) -> float:
        return statistics.mean(
            len(s & set(q.gold_ids)) / len(q.gold_ids) for s, q in zip(selected, questions, strict=True)
        )

    def top5_tokens(o: RerankOutcome, chunk_texts: list[str]) -> int:
        by_prior = {c.id: chunk_texts[c.prior_rank] for c in o.ranked}
        return sum(count_tokens(by_prior[c.id]) for c in o.ranked[:5])

    n = len(outcomes)
    return {
        "llm_calls_per_q": round(sum(o.usage.llm_calls for o in outcomes) / n, 2),
        "prompt_tokens_per_q": round(sum(o.usage.prompt_tokens for o in outcomes) / n),
        "seconds_per_q_median": round(statistics.median(o.seconds for o in outcomes), 2),
        "fusion_fallbacks": sum(o.mode == "fusion" for o in outcomes),
        "kept_knee_avg": round(statistics.mean(len(o.evidence) for o in outcomes), 2),
        "kept_top5_avg": 5.0,
        "gold_in_kept_knee": round(gold_share(kept_docs), 3),
        "gold_in_top5": round(gold_share(top5_docs), 3),
        "evidence_tokens_knee_avg": round(statistics.mean(o.evidence_tokens for o in outcomes)),
        "chunk_tokens_top5_avg": round(
            statistics.mean(top5_tokens(o, t) for o, t in zip(outcomes, texts, strict=True))
        ),
    }


async def _rerank_modes(
    llm: LLMSettings,
    searcher: LocalSearcher,
    questions: list[Question],
    hybrid_ranked: list[list[str]],
    settings: RerankSettings,
    modes: tuple[str, ...],
    concurrency: int,
    figures: dict,
    progress: Callable[[str, dict], None] | None,
) -> str:
    """Every mode in one event loop (an HTTP backend's connections belong to it); returns the model's name."""
    backend = build_backend(llm)
    try:
        for mode in modes:
            started = time.perf_counter()
            mode_settings = settings.model_copy(update={"mode": mode})
            outcomes, texts = await _rerank_mode(LLMClient(backend), searcher, questions, mode_settings, concurrency)
            # The reranked pool, then the hybrid ranking's tail past it, so recall@20 compares like with like.
            ranked = [
                list(dict.fromkeys([*(_doc(c.id) for c in o.ranked), *tail]))
                for o, tail in zip(outcomes, hybrid_ranked, strict=True)
            ]
            figures["modes"][f"hybrid+{mode}"] = {
                **_quality(ranked, questions),
                **_costs(outcomes, texts, questions),
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
            if progress:
                progress(f"hybrid+{mode}", figures["modes"][f"hybrid+{mode}"])
        return f"{backend.name}:{backend.model}"
    finally:
        await backend.aclose()


def run(
    data_path: Path,
    *,
    ids: Path | None = None,
    limit: int | None = None,
    modes: tuple[str, ...] = RERANK_MODES,
    rerank_settings: RerankSettings | None = None,
    llm: LLMSettings | None = None,
    concurrency: int = 1,
    progress: Callable[[str, dict], None] | None = None,
) -> dict:
    settings = rerank_settings or RerankSettings()
    passages, questions = load_pool(data_path)
    questions = select(questions, ids)[:limit]
    figures: dict = {"questions": len(questions), "candidates": settings.candidates, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus_jsonl(passages, Path(tmp) / "corpus.jsonl")
        update_index(Path(tmp) / "index", [corpus], IndexOptions())
        searcher = LocalSearcher(Path(tmp) / "index", IndexSettings(per_doc=1))
        baselines = {
            mode: [[h.doc_id for h in searcher.search(q.question, 20, mode)] for q in questions]
            for mode in ("bm25", "hybrid")
        }
        for mode, ranked in baselines.items():
            figures["modes"][mode] = _quality(ranked, questions)
        figures["model"] = asyncio.run(
            _rerank_modes(
                llm or LLMSettings(),
                searcher,
                questions,
                baselines["hybrid"],
                settings,
                modes,
                concurrency,
                figures,
                progress,
            )
        )
        searcher.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="hotpotqa_dev_distractor_500 folder or its jsonl")
    parser.add_argument("--ids", type=Path, help="score only these question ids (tune on dev_ids.txt only)")
    parser.add_argument("--limit", type=int, help="the first N selected questions")
    parser.add_argument("--modes", default=",".join(RERANK_MODES), help="reranker modes, comma-separated")
    parser.add_argument("--candidates", type=int, default=20, help="hybrid results reranked per question")
    parser.add_argument("--passage-chars", type=int, help="characters of each candidate in ranking prompts")
    parser.add_argument("--no-evidence", action="store_true", help="skip evidence calls (kept sources go forward)")
    parser.add_argument("--llm-base-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--llm-model", default="", help="model name on that server (default: its first)")
    parser.add_argument("--concurrency", type=int, default=1, help="questions in flight (raise it for a server)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    overrides: dict = {"candidates": args.candidates, "evidence": not args.no_evidence}
    if args.passage_chars:
        overrides["passage_chars"] = args.passage_chars
    llm = LLMSettings(base_url=[args.llm_base_url] if args.llm_base_url else [], model=args.llm_model)
    figures = run(
        args.data,
        ids=args.ids,
        limit=args.limit,
        modes=tuple(m for m in args.modes.split(",") if m),
        rerank_settings=RerankSettings(**overrides),
        llm=llm,
        concurrency=args.concurrency,
        progress=lambda mode, f: print(f"done {mode}: {json.dumps(f)}", flush=True),
    )
    print_table(
        f"rerank_eval: {figures['questions']} questions, {figures['candidates']} candidates, {figures['model']}",
        [(mode, "  ".join(f"{k} {v}" for k, v in f.items())) for mode, f in figures["modes"].items()],
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
