"""`deepsearch chat`: an interactive research session with a live view, follow-ups and slash commands."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    IndexOpt,
    JsonOpt,
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

ResumeOpt = Annotated[
    str | None, typer.Option("--resume", "-r", help="Continue session ID (an id, a unique prefix of one, or 'last').")
]
ListOpt = Annotated[bool, typer.Option("--list", "-l", help="List the stored sessions and exit.")]


def plain_output(console: Console) -> bool:
    """Plain progress lines instead of the live view: NO_COLOR is set, or stdout is not a (capable) terminal."""
    return bool(os.environ.get("NO_COLOR")) or not console.is_terminal or console.is_dumb_terminal


def chat(
    resume: ResumeOpt = None,
    list_sessions: ListOpt = False,
    as_json: JsonOpt = False,
    index: IndexOpt = None,
    web: WebOpt = None,
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
    """Open an interactive research session: ask a question and watch the plan, searches, evidence kept and
    dropped, the judge's verdicts, the information-gain curve and the budgets live; then read the answer with
    numbered sources. Follow-up questions may refer to earlier answers. When a question is ambiguous the agent
    may ask what you mean (press Enter to let it assume).

    Inside a session:
      /report [-o FILE] QUESTION     a research report with verified citations (Markdown or HTML)
      /sources /plan /trace /budget  the last answer's sources, plan, trajectory, cost
      /export /new /help /quit       save trajectories, start afresh, list commands, leave
    Ctrl-C cancels a running question and the session goes on; Ctrl-C twice at the prompt exits.
    Sessions are saved: --list shows them and --resume ID continues one.
    Without colour (NO_COLOR) or a terminal, progress is printed as plain lines.

    Examples:
      deepsearch chat --index wiki --no-web
      deepsearch chat --resume last
      deepsearch chat --list
    """
    from ..chat.store import SessionStore

    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    overrides |= research_overrides(
        index, web, max_llm_calls, max_searches, max_fetches, max_seconds, max_rounds, max_subgoals
    )
    settings = settings_from_cli(config, overrides).settings
    store = SessionStore(settings.agent.checkpoint_db)
    if list_sessions:
        _print_sessions(store, as_json)
        return

    from ..chat.engine import Engine
    from ..chat.repl import Repl
    from ..chat.session import ChatSession

    console = Console(highlight=False)
    plain = plain_output(console)
    if not plain and sys.stdin.isatty():
        import readline  # noqa: F401 - line editing and history for input()
    resume_id = store.resolve(resume) if resume else None  # an unknown --resume fails before anything loads
    engine = Engine(settings, settings.agent.indexes, settings.agent.web)
    session = ChatSession.open(console, store, settings, resume_id, plain)
    try:
        Repl(session, engine).run()
    finally:
        engine.close()


def _print_sessions(store, as_json: bool) -> None:
    sessions = store.sessions()
    if as_json:
        print(json.dumps([s.model_dump() for s in sessions], indent=2))
        return
    if not sessions:
        print("no chat sessions yet: start one with `deepsearch chat`")
        return
    table = Table("id", "last used", "turns", "first question")
    for s in sessions:
        table.add_row(s.id, f"{datetime.fromtimestamp(s.updated):%Y-%m-%d %H:%M}", str(s.turns), s.title)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
