"""`deepsearch rerank QUERY --index NAME`: rerank a local index's top candidates with the reasoning reranker."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UsageError
from .index_cmd import IndexOpt, index_dir_from
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    ModelOpt,
    ModelPathOpt,
    llm_overrides,
    settings_from_cli,
)


def rerank(
    query: Annotated[str, typer.Argument(help="The query (or sub-goal) to rank evidence for.")],
    index_opt: IndexOpt = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="listwise, pointwise, yesno or pool (default: rerank.mode).")
    ] = None,
    candidates: Annotated[
        int | None, typer.Option("-k", "--candidates", min=1, max=500, help="Search results to rerank.")
    ] = None,
    max_keep: Annotated[int | None, typer.Option(help="At most this many passages kept by the knee cut.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the candidate shuffles (position bias).")] = None,
    no_evidence: Annotated[
        bool, typer.Option("--no-evidence", help="Skip the evidence-excerpt calls; kept sources go forward.")
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Search a local index, rerank its top candidates with the model, cut at the knee of the score curve,
    and print the ranking with each rationale, the cut, and the verified evidence passages that would go
    forward to the answer.

    Example: deepsearch rerank "Who portrayed Corliss Archer in Kiss and Tell?" --index hotpot --mode pointwise --json
    """
    query = query.strip()
    if not query:
        raise UsageError("the query is empty")
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {
        "rerank.mode": mode,
        "rerank.candidates": candidates,
        "rerank.max_keep": max_keep,
        "rerank.seed": seed,
        "rerank.evidence": False if no_evidence else None,
    }
    settings = settings_from_cli(config, overrides).settings
    from ...tools.local_search import LocalSearcher

    searcher = LocalSearcher(index_dir_from(settings, None, index_opt), settings.index)
    try:
        outcome, hits = asyncio.run(_run(settings, searcher, query))
    finally:
        searcher.close()
    if outcome.mode == "fusion" and outcome.ranked:
        print("deepsearch: warning: the model gave no usable ranking; fusion order shown", file=sys.stderr)
    if as_json:
        payload = {"index": str(searcher.index_dir), **outcome.model_dump(mode="json")}
        payload["titles"] = {h.chunk_id: h.title for h in hits}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    _print(outcome, {h.chunk_id: h.title for h in hits})


async def _run(settings, searcher, query: str):
    from ...tools.rerank import rerank as rerank_candidates
    from ...tools.rerank.local_candidates import candidates_from_hits, neighbour_lookup
    from ..llm import LLMClient, build_backend

    hits = await searcher.asearch(query, settings.rerank.candidates)
    llm = build_backend(settings.llm)
    try:
        outcome = await rerank_candidates(
            LLMClient(llm),
            query,
            candidates_from_hits(hits),
            settings.rerank,
            neighbour_lookup=neighbour_lookup(searcher),
        )
    finally:
        await llm.aclose()
    return outcome, hits


def _print(outcome, titles: dict[str, str]) -> None:
    console = Console()
    if not outcome.ranked:
        console.print(f"no candidates for: {escape(outcome.query)}")
        return
    kept = {p.candidate_id for p in outcome.evidence}
    table = Table(title=f"{outcome.mode} rerank of {len(outcome.ranked)} candidates", show_lines=False)
    for column in ("#", "score", "was", "kept", "candidate", "rationale"):
        table.add_column(column, overflow="fold")
    for c in outcome.ranked:
        table.add_row(
            str(c.rank + 1),
            f"{c.score:.2f}" + (f" (spread {c.spread:g})" if c.spread else ""),
            str(c.prior_rank + 1),
            "✓" if c.id in kept else ("✗" if c.rank < outcome.cut.keep else ""),
            escape(f"{titles.get(c.id, '')} [{c.id}]"),
            escape(c.rationale),
        )
        if c.rank + 1 == outcome.cut.keep:
            table.add_row("", "", "", "", f"[bold]── {outcome.cut.method} cut ──[/bold]", "")
    console.print(table)
    cut = outcome.cut
    console.print(
        f"cut: kept {cut.keep} of {len(cut.curve)} ({cut.method}; min {cut.min_keep}, max {cut.max_keep}, "
        f"floor {cut.floor}); curve {', '.join(f'{s:.2f}' for s in cut.curve)}"
    )
    for p in outcome.evidence:
        console.print(
            f"\n[bold]{escape(p.candidate_id)}[/bold] [dim]{escape(p.source)} · {p.verification} · "
            f"{p.tokens} tokens[/dim]"
        )
        if p.contribution:
            console.print(f"  [italic]{escape(p.contribution)}[/italic]")
        console.print(f"  {escape(p.evidence)}", highlight=False)
    console.print("[dim]✓ = its evidence goes forward; ✗ = above the cut, but its evidence was dropped[/dim]")
    for note in outcome.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    u = outcome.usage
    console.print(
        f"[dim]{u.llm_calls} LLM call(s) · {u.prompt_tokens}+{u.completion_tokens} tokens · "
        f"{outcome.evidence_tokens} evidence tokens · {outcome.seconds:.1f}s · seed {outcome.seed}[/dim]"
    )


def register(app: typer.Typer) -> None:
    app.command("rerank")(rerank)
