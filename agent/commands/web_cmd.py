"""`deepsearch web QUERY`: one web search through the agent's own search tool (ddgs, SearXNG fallback, cache)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import DeepsearchError
from .options import ConfigOpt, JsonOpt, settings_from_cli


def web(
    query: Annotated[str, typer.Argument(help="What to search for (whitespace is collapsed; cut at 500 chars).")],
    max_results: Annotated[int | None, typer.Option("--max-results", "-n", help="How many results (1-50).")] = None,
    region: Annotated[str | None, typer.Option(help="Region code, e.g. us-en, uk-en, de-de, wt-wt.")] = None,
    time_range: Annotated[str | None, typer.Option(help="Only results from the last d, w, m or y.")] = None,
    safe_search: Annotated[str | None, typer.Option(help="on, moderate or off.")] = None,
    provider: Annotated[str | None, typer.Option(help="ddgs (SearXNG as fallback) or searxng.")] = None,
    ddgs_backend: Annotated[
        list[str] | None, typer.Option(help="ddgs backend, e.g. duckduckgo, brave, mojeek (repeatable).")
    ] = None,
    searxng_url: Annotated[str | None, typer.Option(help="SearXNG base URL, e.g. http://127.0.0.1:8888.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the result cache.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Search the web as the agent does and print the normalised results.

    Requests are spaced by a process-wide rate limiter and retried with backoff; when every engine
    fails the command says "web search unavailable: ..." and exits with status 1.

    Example: deepsearch web "python asyncio timeout" -n 5 --time-range y --json
    """
    from ...tools.web_search import WebSearch

    loaded = settings_from_cli(
        config,
        {
            "search.max_results": max_results,
            "search.region": region,
            "search.time_range": time_range,
            "search.safe_search": safe_search,
            "search.provider": provider,
            "search.ddgs_backends": ddgs_backend,
            "search.searxng_url": searxng_url,
            "search.use_cache": False if no_cache else None,
        },
    )
    settings = loaded.settings
    outcome = asyncio.run(WebSearch(settings.search, settings.cache.dir).search(query))
    if as_json:
        print(outcome.model_dump_json(indent=2))
        if outcome.status == "unavailable":
            raise typer.Exit(1)
        return
    if outcome.status == "unavailable":
        raise DeepsearchError(outcome.message)
    console = Console()
    if outcome.query_truncated:
        console.print(f"[yellow]query cut to {len(outcome.query)} characters[/yellow]")
    for r in outcome.results:
        console.print(f"[bold]{r.rank}. {escape(r.title)}[/bold]\n   [cyan]{escape(r.url)}[/cyan]")
        if r.snippet:
            console.print(f"   {escape(r.snippet)}", highlight=False)
    if outcome.status == "no_results":
        console.print(f"no results for: {escape(outcome.query)}")
    source = "cache" if outcome.from_cache else f"{outcome.attempts} request(s)"
    console.print(
        f"[dim]{outcome.provider} · {len(outcome.results)} result(s) · {source} · {outcome.elapsed_ms:.0f} ms"
        f"{' · ' + escape(outcome.message) if outcome.message else ''}[/dim]"
    )


def register(app: typer.Typer) -> None:
    app.command("web")(web)
