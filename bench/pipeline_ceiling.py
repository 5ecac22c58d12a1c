"""The whole pipeline against what one search could give: the agent driven by the grounded reader.

Over the pooled corpus of all passages of all questions (as `deepsearch eval` builds it), the agent
answers each question with the grounded reader (tests/fakes/grounded_reader.py) behind the fake OpenAI
server: a model that reads perfectly but knows only what the pipeline shows it. Side by side:

- agent EM/F1 (an abstention scores 0) and the share of runs that end `answered`;
- the single-shot ceiling: the gold answer in the top 5 / top 10 of ONE search for the whole question,
  with the agent's own LocalSearcher (a yes/no answer counts when every supporting passage is there);
- the termination mix, and median LLM calls, prompt tokens (tiktoken) and searches per question;
- what a question costs, read from each run's trajectory: LLM calls per role (mean per question) and
  prefix reuse (median over questions): the share of a run's prompt tokens that are the longest common token
  prefix with an earlier prompt of the same run, as vLLM's prefix cache would reuse them (messages rendered
  role header + content, in order: bench.graph_overhead.prompts_of_trace).

`--web` turns the web on against local fixtures (bench/web_corpus.py): the pooled passages served on
127.0.0.1 as one HTML page each, and a SearXNG-compatible engine ranking them by BM25. The agent's real web
tools do the work (WebSearch → SearXNG client, PageFetcher → SSRF-guarded httpx, robots.txt, trafilatura
extraction in its worker pool); ddgs is never asked (`search.provider = searxng`) and nothing leaves the
machine. The reader's sub-goals then ask for both sources (it plans `local` only), so each round searches
the local index and the web. `--repeats N` runs the agent N times and reports each figure's median.

So the figures measure planning, querying, selection, judging, stopping and verification, not a model.
Tune on musique_train_hipporag_100 and HotpotQA dev_ids.txt only. Figures are printed, never asserted.

    python -m bench.pipeline_ceiling /work/shared/data/musique_train_hipporag_100 --limit 30
    python -m bench.pipeline_ceiling /work/shared/data/musique_train_hipporag_100 --web --repeats 3
    python -m bench.pipeline_ceiling /work/shared/data/hotpotqa_dev_distractor_500 \\
        --ids /work/shared/data/hotpotqa_dev_distractor_500/dev_ids.txt --json hotpot.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
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

from bench.graph_overhead import prefix_reuse, prompts_of_trace
from bench.web_corpus import WebCorpus
from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer

WEB_KEYS = ("web_searches", "pages_fetched", "web_evidence", "web_cited")


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


def trajectory_costs(path: Path) -> dict[str, Any]:
    """From one run's trajectory: LLM calls per role, prefix reuse, and what the web contributed."""
    calls: Counter[str] = Counter()
    web = dict.fromkeys(WEB_KEYS, 0)
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        step = event.get("step") or {}
        if event.get("ev") != "step":
            continue
        kind = step.get("kind")
        if kind == "llm_call" and step.get("error") is None:  # as usage.llm_calls counts them
            calls[step["role"]] += 1
        elif kind == "tool_call" and step["tool"] == "web_search":
            web["web_searches"] += 1
        elif kind == "tool_call" and step["tool"] == "fetch_page":
            web["pages_fetched"] += bool(step["success"])
        elif kind == "rerank":
            web["web_evidence"] += sum(bool(c["kept"]) for c in step["candidates"] if c["id"].startswith("web:"))
    return {"calls_by_role": dict(calls), "prefix_reuse": round(prefix_reuse(prompts_of_trace(path)), 4), **web}


def _failed_row(q, error: BaseException, seconds: float) -> dict[str, Any]:
    _log(f"{q.id}: {type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}")
    name = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
    return {"id": q.id, "short_answer": "", "termination": f"error_{name}", "em": 0.0, "f1": 0.0, "llm_calls": 0,
            "prompt_tokens": 0, "searches": 0, "fetches": 0, "calls_by_role": {}, "prefix_reuse": 0.0,
            **dict.fromkeys(WEB_KEYS, 0), "seconds": seconds}  # fmt: skip


async def _answer(q, settings: Settings, backend, index: Path, timeout_s: float, web: bool) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(
            aresearch(q.question, settings=settings, backend=backend, indexes=[str(index)], web=web,
                      gold=q.answers, meta=q.meta, checkpoint=False),
            timeout_s,
        )  # fmt: skip
        costs = trajectory_costs(settings.traces.dir / "runs" / f"{result.trace_id}.jsonl")
    except Exception as e:  # noqa: BLE001 - one question's crash is its row, reported, not the bench's end
        return _failed_row(q, e, time.perf_counter() - started)
    scores = score_result(result.short_answer, result.termination, q.answers)
    u = result.usage
    costs["web_cited"] = int(any(c.source.startswith(("http://", "https://")) for c in result.citations))
    return {"id": q.id, "trace_id": result.trace_id, "short_answer": result.short_answer,
            "termination": result.termination,
            "em": scores.em or 0.0, "f1": scores.f1 or 0.0, "llm_calls": u.llm_calls, "prompt_tokens": u.prompt_tokens,
            "searches": u.searches, "fetches": u.fetches, **costs,
            "seconds": time.perf_counter() - started}  # fmt: skip


def sources_both(reader: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """The reader, with every sub-goal it plans asking for local and web sources (it plans `local` only)."""

    def respond(body: dict) -> dict:
        out = reader(body)
        try:
            reply = json.loads(out["content"])
        except (KeyError, TypeError, ValueError):
            return out
        if isinstance(reply, dict) and isinstance(reply.get("subgoals"), list):
            for sg in reply["subgoals"]:
                if isinstance(sg, dict):
                    sg["source"] = "both"
            out = {**out, "content": json.dumps(reply)}
        return out

    return respond


async def _run_agent(questions, responder, settings, index: Path, concurrency: int, timeout_s: float,
                     web: bool) -> list[dict]:  # fmt: skip
    with FakeOpenAIServer(responder=responder, prompt_tokens=_prompt_tokens) as server:
        settings = settings.model_copy(deep=True)
        settings.llm.base_url, settings.llm.backend = [server.base_url], "openai"
        settings.llm.concurrency = max(settings.llm.concurrency, concurrency)
        backend = build_backend(settings.llm)
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(q) -> dict:
            nonlocal done
            async with gate:
                row = await _answer(q, settings, backend, index, timeout_s, web)
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

    roles = sorted({role for r in rows for role in r["calls_by_role"]})
    calls_by_role = {role: mean(r["calls_by_role"].get(role, 0) for r in rows) for role in roles}
    return {
        "questions": n,
        "em": mean(r["em"] for r in rows),
        "f1": mean(r["f1"] for r in rows),
        "single_shot_top5": mean(c["top5"] for c in ceiling),
        "single_shot_top10": mean(c["top10"] for c in ceiling),
        "answered_share": mean(r["termination"] == "answered" for r in rows),
        "termination": dict(Counter(r["termination"] for r in rows).most_common()),
        "median_llm_calls": median("llm_calls"),
        "mean_llm_calls": mean(r["llm_calls"] for r in rows),
        "median_prompt_tokens": median("prompt_tokens"),
        "median_searches": median("searches"),
        "prefix_reuse": round(median("prefix_reuse"), 4),
        "calls_by_role": dict(sorted(calls_by_role.items(), key=lambda kv: -kv[1])),
        "median_web_searches": median("web_searches"),
        "mean_pages_fetched": mean(r["pages_fetched"] for r in rows),
        "mean_web_evidence": mean(r["web_evidence"] for r in rows),
        "web_cited_share": mean(r["web_cited"] for r in rows),
    }


def median_of_repeats(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the repeats (per key for the per-role and per-termination counts)."""
    out: dict[str, Any] = {}
    for key, first in repeats[0].items():
        if isinstance(first, dict):
            keys = list(dict.fromkeys(k for f in repeats for k in f[key]))
            out[key] = {k: statistics.median(f[key].get(k, 0) for f in repeats) for k in keys}
        else:
            out[key] = statistics.median(f[key] for f in repeats)
    out["repeats"] = len(repeats)
    if len(repeats) > 1:
        out["per_repeat"] = repeats
    return out


def web_settings(settings: Settings, corpus: WebCorpus, cache_dir: Path) -> Settings:
    """The agent's web tools pointed at the local corpus: SearXNG only, loopback allowed, fresh caches."""
    s = settings.model_copy(deep=True)
    s.agent.web = True
    s.search.provider, s.search.searxng_url = "searxng", corpus.base_url
    s.search.min_interval_s = 0.0  # the process-wide spacing is for public engines; this one is ours
    s.fetch.allow_hosts = ["127.0.0.1"]  # the SSRF guard refuses loopback otherwise
    s.cache.dir = cache_dir  # search and page caches only (the pooled index was found with the user's)
    return s


def run(data: Path | str, ids: Path | None = None, limit: int | None = None, concurrency: int = 4,
        timeout_s: float = 300.0, overrides: dict | None = None, web: bool = False,
        repeats: int = 1) -> dict[str, Any]:  # fmt: skip
    """The figures for DATA (a data folder or file, as `deepsearch eval` takes it); medians over `repeats` runs."""
    if repeats < 1:
        raise UsageError("--repeats must be at least 1")
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
             f"{sum(bool(q.hops) for q in reader.questions.values())} with a gold decomposition"
             f"{'; web on (local SearXNG + pages)' if web else ''}")  # fmt: skip
        results = []
        corpus = WebCorpus([(p.title, p.text) for p in dataset.passages]) if web else None
        with corpus if corpus is not None else contextlib.nullcontext():
            responder = sources_both(reader) if web else reader
            for r in range(repeats):
                run_settings = web_settings(settings, corpus, Path(tmp) / f"web-cache-{r}") if corpus else settings
                rows = asyncio.run(_run_agent(questions, responder, run_settings, index, concurrency, timeout_s, web))
                results.append(figures(rows, ceiling))
                if corpus is not None:
                    results[-1]["web_corpus_queries"] = len(corpus.queries)
                    results[-1]["web_corpus_pages_served"] = corpus.pages_served
                    corpus.queries.clear()
                    corpus.pages_served = 0
                if repeats > 1:
                    _log(f"repeat {r + 1}/{repeats}: EM {results[-1]['em']:.3f}, "
                         f"{results[-1]['median_llm_calls']:g} calls")  # fmt: skip
    out = median_of_repeats(results)
    out["web"] = web
    return out


def print_figures(name: str, f: dict[str, Any]) -> None:
    repeats = f" (medians of {f['repeats']} runs)" if f.get("repeats", 1) > 1 else ""
    print(f"{name}: {f['questions']} questions, grounded reader, pooled corpus"
          f"{', web on (local fixtures)' if f.get('web') else ''}{repeats}")  # fmt: skip
    print(f"  {'':<22}{'EM':>8}{'F1':>8}")
    print(f"  {'agent':<22}{f['em']:>8.3f}{f['f1']:>8.3f}")
    print(f"  {'single search, top 5':<22}{f['single_shot_top5']:>8.3f}")
    print(f"  {'single search, top 10':<22}{f['single_shot_top10']:>8.3f}")
    print(f"  answered: {f['answered_share']:.0%}   termination: "
          + ", ".join(f"{k} {v:g}" for k, v in f["termination"].items()))  # fmt: skip
    print(f"  median per question: {f['median_llm_calls']:g} LLM calls, {f['median_prompt_tokens']:g} prompt tokens, "
          f"{f['median_searches']:g} searches; prefix reuse {f['prefix_reuse']:.1%}")  # fmt: skip
    print("  LLM calls per question by role (mean): "
          + ", ".join(f"{role} {v:.2f}" for role, v in f["calls_by_role"].items()))  # fmt: skip
    if f.get("web"):
        print(f"  web: {f['median_web_searches']:g} searches (median), {f['mean_pages_fetched']:.2f} pages fetched "
              f"and {f['mean_web_evidence']:.2f} web passages kept per question (mean); "
              f"{f['web_cited_share']:.0%} of answers cite a web page; the local engine saw "
              f"{f['web_corpus_queries']:g} queries and served {f['web_corpus_pages_served']:g} pages")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a data folder or question file (MuSiQue or HotpotQA), as `deepsearch eval`")
    parser.add_argument("--ids", type=Path, help="only these question ids (one per line)")
    parser.add_argument("--limit", type=int, help="at most this many questions")
    parser.add_argument("--concurrency", type=int, default=4, help="questions in flight at once")
    parser.add_argument("--web", action="store_true", help="web on, against the pooled passages served locally")
    parser.add_argument("--repeats", type=int, default=1, help="run the agent N times; report the medians")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--traces", type=Path, help="keep the runs' trajectories here (e.g. to export them)")
    args = parser.parse_args(argv)
    overrides = {"traces.dir": str(args.traces.resolve())} if args.traces else None
    try:
        f = run(args.data, args.ids, args.limit, args.concurrency, web=args.web, repeats=args.repeats,
                overrides=overrides)
    except UsageError as e:
        print(f"python -m bench.pipeline_ceiling: error: {e}", file=sys.stderr)
        return 2
    print_figures(Path(args.data).name, f)
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
