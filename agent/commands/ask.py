"""`deepsearch ask`: answer one question, researched with citations, or closed-book."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel

from ..chat.progress import ProgressLines, is_round_step, step_label
from ..errors import UsageError
from ..report.models import ReportRequest
from ..result import AskResult
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ClosedBookOpt,
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
    ReplayMatchOpt,
    ReplayOpt,
    TracesDirOpt,
    WebOpt,
    llm_overrides,
    replay_overrides,
    research_overrides,
    settings_from_cli,
)

ReportOpt = Annotated[bool, typer.Option(
    "--report", help="Write a research report instead of a short answer: an outline from the sub-goals, each "
    "section written from its own evidence with every cited sentence verified, a sources list. "
    "`--report FILE.md` or `--report FILE.html` writes it to FILE (else stdout).",
)]  # fmt: skip
ReportFileOpt = Annotated[Path | None, typer.Option("--report-file", help="Where --report writes (default: stdout).")]
WordsOpt = Annotated[int | None, typer.Option(
    "--words", min=100, max=20_000, help="Target length of the report in words (default: setting report.words, 1200).")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", help="Report format: markdown or html (default: from the file's suffix, else markdown).")]


def ask(
    question: str = typer.Argument(..., help="The question to answer."),
    closed_book: ClosedBookOpt = False,
    index: IndexOpt = None,
    web: WebOpt = None,
    max_llm_calls: MaxLLMCallsOpt = None,
    max_searches: MaxSearchesOpt = None,
    max_fetches: MaxFetchesOpt = None,
    max_seconds: MaxSecondsOpt = None,
    max_rounds: MaxRoundsOpt = None,
    max_subgoals: MaxSubgoalsOpt = None,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr."),
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    traces_dir: TracesDirOpt = None,
    replay: ReplayOpt = None,
    replay_match: ReplayMatchOpt = None,
    report: ReportOpt = False,
    report_file: ReportFileOpt = None,
    words: WordsOpt = None,
    report_format: FormatOpt = None,
) -> None:
    """Answer a question: plan sub-goals, search local indexes (and the web), judge the evidence, stop when
    searching adds no more information, and answer with numbered citations. Every run is recorded.

    With --closed-book the model answers directly, without searching (the baseline evals compare against).
    Uses the embedded model unless --llm-base-url points at an OpenAI-compatible server (e.g. vLLM).

    With --report it writes a research report (Markdown or HTML) whose every cited sentence was checked
    against its source; sections that found nothing say so.

    Examples:
      deepsearch ask "Who wrote the novel the film Blade Runner is based on?" --index wiki --no-web
      deepsearch ask "What is the capital of France?" --closed-book --json
      deepsearch ask "How do BM25 and dense retrieval compare?" --index papers --report review.html --words 800
    """
    question = " ".join(question.split())
    if not question:
        raise UsageError("the question is empty")
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    overrides |= research_overrides(
        index, web, max_llm_calls, max_searches, max_fetches, max_seconds, max_rounds, max_subgoals
    )
    overrides |= replay_overrides(replay, replay_match, web)
    overrides |= {"report.words": words}
    settings = settings_from_cli(config, overrides).settings
    request = None
    if report or report_file or report_format or words:
        if closed_book:
            raise UsageError("--report researches: it cannot be combined with --closed-book")
        request = ReportRequest(words=settings.report.words)
        report_format = output_format(report_format, report_file)
    lines = None if quiet or sys.stderr.isatty() else ProgressLines(_stderr_line)
    progress = None if quiet else lines.feed if lines else _progress_printer(Console(stderr=True))
    if closed_book:
        result = asyncio.run(_closed_book(settings, question))
    else:
        result = asyncio.run(_research(settings, question, progress, request))
    if lines is not None:
        lines.close(result.usage.seconds)
    if as_json:
        print(result.model_dump_json(indent=2))
    elif request is not None:
        write_report(result, report_format, report_file)
        where = f"report written to {report_file}" if report_file else "report"
        print(f"{where}: {report_summary(result)}", file=sys.stderr)
    else:
        print_result(Console(), result)


REPORT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def output_format(given: str | None, path: Path | None) -> str:
    if given is not None:
        if given.lower() not in ("markdown", "md", "html"):
            raise UsageError(f"--format must be markdown or html, not {given!r}")
        return "html" if given.lower() == "html" else "markdown"
    return REPORT_SUFFIXES.get(path.suffix.lower(), "markdown") if path else "markdown"


def report_argv(args: list[str]) -> list[str]:
    """`ask … --report FILE`: a following FILE.md/.html (or `--report=FILE`) is where the report goes.
    Typer has no option with an optional value, so the CLI entry point rewrites it as `--report-file FILE`."""
    if not args or args[0] != "ask":
        return args
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--report="):
            out += ["--report", "--report-file", arg.split("=", 1)[1]]
        elif arg == "--report" and i + 1 < len(args) and Path(args[i + 1]).suffix.lower() in REPORT_SUFFIXES:
            out += ["--report", "--report-file", args[i + 1]]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def write_report(result: AskResult, fmt: str, path: Path | None) -> None:
    """The report to stdout, or to `path` whole or not at all (written beside it, then renamed)."""
    from ..report.html import render_html

    text = render_html(result.answer, result.report.title if result.report else result.question) \
        if fmt == "html" else result.answer  # fmt: skip
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if not path.parent.is_dir():
        raise UsageError(f"cannot write the report: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write the report to {path}: {e.strerror or e}") from None


def report_summary(result: AskResult) -> str:
    info = result.report
    if info is None:
        return f"no report: {result.termination}"
    return (f"{info.cited_sentences} cited sentence(s), {info.verified_sentences} verified, {info.removed_sentences} "
            f"removed, {info.sources} source(s) · {result.termination} · trace {result.trace_id}")  # fmt: skip


def _stderr_line(line: str) -> None:
    # Flushed at once: a pipe or a log file sees each line as the step happens, not when the buffer fills.
    print(line, file=sys.stderr, flush=True)


def _progress_printer(console: Console):
    """At a terminal: a dim line per node, query, evidence choice, verdict, gain and sub-step (rerank window)."""
    from ..events import (
        EvidenceEvent,
        InformationEvent,
        NodeEvent,
        QueryEvent,
        StepEvent,
        SubGoalEvent,
        VerdictEvent,
    )

    def show(event) -> None:
        if isinstance(event, NodeEvent) and event.phase == "started":
            console.print(f"[dim]{event.at_s:6.1f}s[/dim] {event.node}")
        elif isinstance(event, SubGoalEvent):
            extra = f" → {event.answer} ({event.stop_reason})" if event.status == "done" else ""
            console.print(f"[dim]{event.at_s:6.1f}s[/dim]   {event.subgoal_id} {event.status}: {event.question}{extra}")
        elif isinstance(event, QueryEvent):
            console.print(f"[dim]{event.at_s:6.1f}s     {event.source} search: {event.query} ({event.hits} hits)[/dim]")
        elif isinstance(event, EvidenceEvent):
            console.print(f"[dim]{event.at_s:6.1f}s     evidence kept {len(event.kept)}, dropped {event.dropped}[/dim]")
        elif isinstance(event, VerdictEvent):
            console.print(f"[dim]{event.at_s:6.1f}s[/dim]   judge {event.target}: {event.decision}")
        elif isinstance(event, InformationEvent):
            info = f"round {event.round}: belief {event.belief:.2f}, gain {event.gain:.2f}"
            console.print(f"[dim]{event.at_s:6.1f}s     {info}[/dim]")
        elif isinstance(event, StepEvent) and not is_round_step(event.step):  # e.g. a rerank window of a select
            where = step_label(event.subgoal_id, event.round, event.step)
            console.print(f"[dim]{event.at_s:6.1f}s     {escape(where)}[/dim]")

    return show


def print_result(console: Console, result: AskResult) -> None:
    if result.report is not None:  # a report carries its own sources list and footer
        console.print(Markdown(result.answer))
    else:
        console.print(Panel(Markdown(result.answer or "(no answer)"), title=result.question,
                            subtitle=result.termination))  # fmt: skip
    for c in result.citations if result.report is None else []:
        quote = " ".join(c.quote.split())
        console.print(f"[bold][{c.n}][/bold] {c.source}\n    [dim]{quote[:200]}{'…' if len(quote) > 200 else ''}[/dim]")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    u = result.usage
    console.print(
        f"[dim]{result.backend}:{result.model} · {u.llm_calls} LLM call(s) · {u.prompt_tokens}+{u.completion_tokens} "
        f"tokens · {u.searches} search(es) · {u.fetches} fetch(es) · {u.seconds:.1f}s · trace {result.trace_id}[/dim]"
    )


async def _research(settings, question: str, progress, report: ReportRequest | None = None) -> AskResult:
    from ..run import aresearch

    return await aresearch(question, settings=settings, on_event=progress, report=report)


async def _closed_book(settings, question: str) -> AskResult:
    from ..closed_book import arecord_closed_book
    from ..llm import build_backend

    backend = build_backend(settings.llm)
    try:
        return await arecord_closed_book(settings, question, backend)
    finally:
        await backend.aclose()


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
