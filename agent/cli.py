"""The `deepsearch` command: a typer app whose sub-commands live in agent/commands/."""

from __future__ import annotations

import sys

import typer

from ..traces import cli as traces_cli
from .commands import (
    ask,
    batch_cmd,
    chat_cmd,
    config_cmd,
    doctor,
    eval_cmd,
    fetch_cmd,
    index_cmd,
    mcp_cmd,
    rerank_cmd,
    search_cmd,
    snapshot_cmd,
    web_cmd,
)
from .errors import DeepsearchError

app = typer.Typer(
    name="deepsearch",
    help=(
        "Agentic deep search: plans sub-goals, searches the web and your local documents, reranks and "
        "judges evidence, stops when more searching adds no information, and answers with citations. "
        "Every run is recorded as a trajectory you can export as training data."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for module in (
    ask,
    chat_cmd,
    batch_cmd,
    eval_cmd,
    doctor,
    config_cmd,
    traces_cli,
    web_cmd,
    fetch_cmd,
    index_cmd,
    search_cmd,
    rerank_cmd,
    snapshot_cmd,
    mcp_cmd,
):
    module.register(app)


def main() -> None:
    """Console entry point: user errors become one line on stderr and a non-zero exit code."""
    try:
        sys.argv[1:] = ask.report_argv(sys.argv[1:])  # `ask --report FILE` (see report_argv)
        app()
    except DeepsearchError as e:
        from deepsearch.traces.redact import secrets_from_env

        from .masking import mask_text

        print(f"deepsearch: error: {mask_text(str(e), secrets_from_env())}", file=sys.stderr)  # never echo a secret
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("deepsearch: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
