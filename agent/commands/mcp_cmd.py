"""`deepsearch mcp`: serve the research agent and its tools to MCP clients (stdio, or streamable HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from ..errors import UsageError
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    IndexOpt,
    MaxFetchesOpt,
    MaxLLMCallsOpt,
    MaxRoundsOpt,
    MaxSearchesOpt,
    MaxSecondsOpt,
    MaxSubgoalsOpt,
    ModelOpt,
    ModelPathOpt,
    TracesDirOpt,
    WebOpt,
    llm_overrides,
    research_overrides,
    settings_from_cli,
)


def mcp(
    index: IndexOpt = None,
    web: WebOpt = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio "
            "(port 0: any free port; the URL is printed on stderr).",
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Let --http listen on a non-loopback address (no authentication!).")
    ] = False,
    max_llm_calls: MaxLLMCallsOpt = None,
    max_searches: MaxSearchesOpt = None,
    max_fetches: MaxFetchesOpt = None,
    max_seconds: MaxSecondsOpt = None,
    max_rounds: MaxRoundsOpt = None,
    max_subgoals: MaxSubgoalsOpt = None,
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    traces_dir: TracesDirOpt = None,
) -> None:
    """Serve deepsearch over the Model Context Protocol: tools research, web_search, fetch_page, search_local and
    list_indexes, and each research run's trajectory as the resource trace://TRACE_ID. Progress arrives as MCP
    progress notifications; cancelling a research call stops the run (its trajectory says `cancelled`).

    By default it speaks MCP over stdin/stdout: an MCP client starts it as a subprocess. Add it to the client's
    config (Claude Desktop, Cursor, …) like this:

      {"mcpServers": {"deepsearch": {"command": "deepsearch", "args": ["mcp", "--index", "notes"]}}}

    With --http HOST:PORT it serves streamable HTTP at http://HOST:PORT/mcp for clients that connect by URL.
    It listens on loopback only unless --allow-remote is given: the server has no authentication.

    The LLM, indexes, web on/off and budgets come from the same config file and env as `deepsearch ask`; the
    flags here set the server's defaults and limits (a research call may lower a budget, not raise it; the web
    tools work only with the web on; index arguments name only --index values and indexes under index.dir).

    Examples:
      deepsearch mcp --index notes --no-web
      deepsearch mcp --http 127.0.0.1:8765 --index notes --llm-base-url http://127.0.0.1:8000/v1
    """
    try:
        from ..serving.mcp_server import parse_http_address, serve_http, serve_stdio
    except ImportError as e:
        if (e.name or "").split(".")[0] != "mcp":
            raise
        raise UsageError("`deepsearch mcp` needs the MCP SDK: pip install 'deepsearch[mcp]'") from None

    address = parse_http_address(http, allow_remote) if http is not None else None
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    overrides |= research_overrides(
        index, web, max_llm_calls, max_searches, max_fetches, max_seconds, max_rounds, max_subgoals
    )
    settings = settings_from_cli(config, overrides).settings
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the server: not an error
        asyncio.run(serve_http(settings, *address) if address else serve_stdio(settings))


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
