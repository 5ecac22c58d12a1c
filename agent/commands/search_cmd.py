"""`deepsearch search QUERY`: ranked chunks from a local index, as the agent's local_search tool sees them."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .index_cmd import IndexOpt, index_dir_from
from .options import ConfigOpt, JsonOpt, settings_from_cli


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    index_opt: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, max=100, help="How many chunks to return.")] = 5,
    mode: Annotated[str | None, typer.Option(help="hybrid (BM25 + dense, RRF), bm25 or dense.")] = None,
    per_doc: Annotated[int | None, typer.Option(help="At most this many chunks per document (0 = any).")] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Search a local index built with `deepsearch index` and print ranked chunks with scores and sources.

    Example: deepsearch search "who portrayed Corliss Archer" --index work -k 3 --json
    """
    from ...tools.local_search import LocalSearcher

    settings = settings_from_cli(config, {"index.mode": mode, "index.per_doc": per_doc}).settings
    searcher = LocalSearcher(index_dir_from(settings, None, index_opt), settings.index)
    try:
        used_mode = settings.index.mode if mode else searcher.default_mode()
        hits = searcher.search(query, k, used_mode)
    finally:
        searcher.close()
    if as_json:
        payload = {"query": query, "index": str(searcher.index_dir), "mode": used_mode}
        print(json.dumps({**payload, "results": [h.model_dump() for h in hits]}, indent=2, ensure_ascii=False))
        return
    console = Console()
    if not hits:
        console.print(f"no matches for: {escape(query)}")
    for h in hits:
        snippet = " ".join(h.text.split())
        console.print(
            f"[bold]{h.rank}. {escape(h.title)}[/bold]  [dim]score {h.score:.4g} · {escape(h.chunk_id)}[/dim]"
        )
        console.print(f"   [cyan]{escape(h.source)}[/cyan]", highlight=False)
        console.print(f"   {escape(snippet[:300])}{'…' if len(snippet) > 300 else ''}", highlight=False)
    console.print(f"[dim]{len(hits)} result(s) · mode {used_mode} · {escape(str(searcher.index_dir))}[/dim]")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
