"""Slash commands inside a chat session: /report /sources /plan /trace /budget /export /new /help /quit."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..errors import DeepsearchError, UsageError
from ..run import budget_limits
from .layout import BUDGETS, amount, dag_tree
from .progress import SubGoalView, spent
from .session import ChatSession

QUIT = "quit"


@dataclass(frozen=True)
class ReportAsk:
    """/report: the REPL researches `question` as a report (and writes it to `path` too, if given)."""

    question: str
    path: Path | None = None


Handler = Callable[[ChatSession, list[str]], "str | ReportAsk | None"]


def _report(s: ChatSession, args: list[str]) -> ReportAsk:
    path = None
    if args[:1] in (["-o"], ["--output"]):
        if len(args) < 2:
            raise UsageError("/report -o needs a file: /report -o review.md [QUESTION]")
        path, args = Path(args[1]).expanduser(), args[2:]
        if not path.parent.is_dir():
            raise UsageError(f"cannot write the report: folder {path.parent} does not exist")
    question = " ".join(args).strip()
    if not question:  # no question: the last one asked, now as a report
        if not s.turns:
            raise UsageError("give the question: /report How do the main approaches to X compare?")
        question = s.turns[-1].question
    return ReportAsk(question, path)


def _sources(s: ChatSession, args: list[str]) -> None:
    turn = s.turn(args[0] if args else None, answered=True)
    result = turn.result
    if not result.citations:
        s.console.print(f"turn {turn.n} cites no sources")
    for c in result.citations:
        s.console.print(Text.assemble((f"[{c.n}] ", "bold"), c.source))
        s.console.print(Text(f"    {' '.join(c.quote.split())}", style="dim"))


def _plan(s: ChatSession, args: list[str]) -> None:
    turn = s.turn(args[0] if args else None, answered=True)
    views = [
        SubGoalView(
            id=g["id"], question=g["question"], depends_on=g.get("depends_on") or [], answer=g.get("answer"),
            status="planned" if g.get("stop_reason") == "not_run" else "done", stop_reason=g.get("stop_reason"),
        )  # fmt: skip
        for g in turn.result.subgoals
    ]
    s.console.print(dag_tree(views, f"turn {turn.n}: {turn.question}"))
    for v in views:
        s.console.print(Text(f"  {v.id}: stopped {v.stop_reason}", style="dim"))


def _trace(s: ChatSession, args: list[str]) -> None:
    from deepsearch.traces.reader import find_log, load_trajectory
    from deepsearch.traces.render import trajectory_tree

    turn = s.turn(args[0] if args else None)
    s.console.print(trajectory_tree(load_trajectory(find_log(s.traces_dir, turn.trace_id))))


def _budget(s: ChatSession, args: list[str]) -> None:
    turn = s.turn(args[0] if args else None, answered=True)
    limits = budget_limits(s.settings).model_dump()
    used = spent(turn.result.usage)
    every = [spent(t.result.usage) for t in s.turns if t.result is not None]
    table = Table(title=f"budget of turn {turn.n} ({turn.status})")
    for column in ("", "used", "limit", "share", "session total"):
        table.add_column(column, justify="right" if column else "left")
    for kind in BUDGETS:
        limit, total = limits[kind], sum(u[kind] for u in every)
        table.add_row(kind, amount(kind, used[kind]), amount(kind, limit), f"{used[kind] / limit:.0%}",
                      amount(kind, total))  # fmt: skip
    s.console.print(table)


def _export(s: ChatSession, args: list[str]) -> None:
    """Every turn's trajectory, one JSON object per line (cancelled and failed runs included)."""
    from deepsearch.traces.reader import find_log, load_trajectory

    if not s.turns:
        raise UsageError("nothing to export: no question yet")
    out = Path(args[0] if args else f"deepsearch-chat-{s.id}.jsonl").expanduser()
    part = out.with_name(out.name + ".part")
    exported, missing = 0, []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with part.open("w", encoding="utf-8") as f:
            for turn in s.turns:
                try:
                    traj = load_trajectory(find_log(s.traces_dir, turn.trace_id))
                except DeepsearchError:
                    missing.append(turn.n)
                    continue
                f.write(json.dumps(traj.model_dump(mode="json"), ensure_ascii=False) + "\n")
                exported += 1
        os.replace(part, out)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    s.console.print(f"wrote {exported} trajector{'y' if exported == 1 else 'ies'} to {out}")
    if missing:
        s.console.print(f"[yellow]no trajectory found for turn(s) {', '.join(map(str, missing))}[/yellow]")
    ids = " ".join(t.trace_id for t in s.turns if t.n not in missing)
    s.console.print(Text(f"as SFT data: deepsearch traces export -o sft.jsonl {ids}", style="dim"), soft_wrap=True)


def _new(s: ChatSession, args: list[str]) -> None:
    old = s.id
    s.renew()
    s.console.print(f"new session {s.id} (resume the old one with `deepsearch chat --resume {old}`)")


def _help(s: ChatSession, args: list[str]) -> None:
    table = Table.grid(padding=(0, 2))
    for name, (_, usage, text) in COMMANDS.items():
        table.add_row(Text(f"/{name} {usage}".rstrip(), style="bold"), text)
    s.console.print(table)
    s.console.print(
        "Anything else is a question; follow-ups may refer to earlier answers. "
        "Ctrl-C cancels a running question; Ctrl-C twice at the prompt exits."
    )


def _quit(s: ChatSession, args: list[str]) -> str:
    return QUIT


COMMANDS: dict[str, tuple[Handler, str, str]] = {
    "report": (_report, "[-o FILE] [QUESTION]", "research QUESTION (default: the last one) as a report with "
               "verified citations; -o also writes its Markdown (or .html) to FILE"),
    "sources": (_sources, "[N]", "numbered sources of the last answer (or of turn N)"),
    "plan": (_plan, "[N]", "the sub-goal DAG of the last answer, with each sub-goal's answer"),
    "trace": (_trace, "[N]", "the run's trajectory tree: LLM calls, searches, rerank, verdicts, gain"),
    "budget": (_budget, "[N]", "what the last answer cost against its budgets, and the session's totals"),
    "export": (_export, "[PATH]", "write this session's trajectories as JSONL (default deepsearch-chat-ID.jsonl)"),
    "new": (_new, "", "start a new session (no history); this one stays resumable"),
    "help": (_help, "", "this list"),
    "quit": (_quit, "", "leave (the session is saved; `deepsearch chat --resume ID` continues it)"),
}
ALIASES = {"exit": "quit", "q": "quit", "?": "help"}


def run_command(session: ChatSession, line: str) -> str | ReportAsk | None:
    """Run one slash command line; user errors are printed and the session goes on. Returns QUIT to leave,
    or a ReportAsk for the REPL to research."""
    try:
        words = shlex.split(line[1:])
    except ValueError as e:
        session.console.print(Text(f"error: {e}", style="red"))
        return None
    name = ALIASES.get(words[0].lower(), words[0].lower()) if words else "help"
    if name not in COMMANDS:
        session.console.print(Text(f"error: unknown command /{name}; /help lists them", style="red"))
        return None
    try:
        return COMMANDS[name][0](session, words[1:])
    except DeepsearchError as e:
        session.console.print(Text(f"error: {e}", style="red"))
        return None
