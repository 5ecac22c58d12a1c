"""`deepsearch traces`: list, show, validate, summarise and export recorded trajectories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from deepsearch.agent.commands.options import ConfigOpt, JsonOpt, TracesDirOpt, settings_from_cli
from deepsearch.agent.errors import UsageError
from rich.console import Console

from .export import ExportOptions, export
from .filters import RunFilter
from .index import TraceIndex
from .reader import find_log, load_trajectory, log_paths, read_log
from .redact import Redactor
from .render import run_stats, runs_table, stats_table, trajectory_tree

app = typer.Typer(
    name="traces",
    help="Recorded trajectories: list, show, validate, summarise, and export them as SFT/DPO data.",
    no_args_is_help=True,
)


def _dir(traces_dir: Path | None, config: Path | None) -> Path:
    return settings_from_cli(config, {"traces.dir": traces_dir}).settings.traces.dir


@app.command("ls")
def ls_cmd(
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Newest N runs; 0 = all.")] = 20,
    as_json: JsonOpt = False,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List runs, newest first: id, start time, status, termination, score, tokens, question.

    Example: deepsearch traces ls -n 5
    """
    runs = TraceIndex(_dir(traces_dir, config)).sync()
    runs = runs[:limit] if limit else runs
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        Console().print(runs_table(runs))


@app.command("show")
def show_cmd(
    trace_id: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'last'.")] = "last",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole trajectory as JSON.")] = False,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Draw one run as a tree: plan, sub-goals, searches, evidence kept/dropped, verdicts, gain, answer.

    Example: deepsearch traces show last
    """
    traj = load_trajectory(find_log(_dir(traces_dir, config), trace_id))
    if as_json:
        print(traj.model_dump_json(indent=2))
    else:
        Console().print(trajectory_tree(traj))


@app.command("stats")
def stats_cmd(as_json: JsonOpt = False, traces_dir: TracesDirOpt = None, config: ConfigOpt = None) -> None:
    """Counts over all runs: status, terminations, accuracy, tokens, LLM and tool calls, information gain.

    Example: deepsearch traces stats --json
    """
    stats = run_stats(TraceIndex(_dir(traces_dir, config)).sync())
    if as_json:
        print(json.dumps(stats, indent=2))
    else:
        Console().print(stats_table(stats))


@app.command("validate")
def validate_cmd(
    trace_ids: Annotated[list[str] | None, typer.Argument(help="Runs to check (default: all).")] = None,
    as_json: JsonOpt = False,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check logs against the schema; exit 1 if one is damaged beyond what a crash can do.

    Unfinished runs (killed, or still going) are valid and reported as incomplete.

    Example: deepsearch traces validate
    """
    directory = _dir(traces_dir, config)
    paths = [find_log(directory, t) for t in trace_ids] if trace_ids else log_paths(directory)
    reports = [read_log(p)[1] for p in paths]
    bad = [r for r in reports if not r.ok]
    if as_json:
        print(json.dumps([r.model_dump(mode="json") | {"ok": r.ok} for r in reports], indent=2))
    else:
        console = Console(stderr=True)
        for r in reports:
            for message in r.errors:
                console.print(f"[red]error[/red] {r.path.name}: {message}")
            for message in r.warnings:
                console.print(f"[yellow]warning[/yellow] {r.path.name}: {message}")
        incomplete = sum(r.incomplete for r in reports)
        print(
            f"{len(reports)} trajectories checked: {len(reports) - len(bad)} valid ({incomplete} incomplete), "
            f"{len(bad)} damaged"
        )
    if bad:
        raise typer.Exit(1)


@app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="A run id (or a unique prefix).")],
    b: Annotated[str, typer.Argument(help="Another run id.")],
    as_json: JsonOpt = False,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """How two runs differ: tool calls and their results first (round by round), then the answers. Exit 0 when
    they made the same calls with byte-identical results and answered alike, 1 otherwise.

    Example: deepsearch traces diff 20261201-170844685 20261201-171502113
    """
    from .diff import diff_runs

    directory = _dir(traces_dir, config)
    result = diff_runs(load_trajectory(find_log(directory, a)), load_trajectory(find_log(directory, b)))
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print(f"A {result.a} · B {result.b} · tool calls {result.tool_calls[0]} | {result.tool_calls[1]}")
        for title, lines in (("tool calls", result.calls), ("tool results", result.results),
                             ("answers", result.answers)):  # fmt: skip
            print(f"{title}: " + ("same" if not lines else f"{len(lines)} difference(s)"))
            for line in lines[:20]:
                print(f"  {line}")
    if not result.same:
        raise typer.Exit(1)


@app.command("reindex")
def reindex_cmd(traces_dir: TracesDirOpt = None, config: ConfigOpt = None) -> None:
    """Rebuild the run index (index.sqlite) from the logs.

    Example: deepsearch traces reindex --traces-dir ./traces
    """
    runs = TraceIndex(_dir(traces_dir, config)).rebuild()
    print(f"indexed {len(runs)} runs")


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file (a directory for --format roles).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="messages, sharegpt, roles or dpo.")] = "messages",
    reasoning: Annotated[str, typer.Option(help="drop, field (reasoning_content) or think (inline <think>).")] = "drop",
    correct_only: Annotated[bool, typer.Option("--correct-only", help="Runs that match gold or the judge.")] = False,
    max_tool_calls: Annotated[int | None, typer.Option(help="Runs with at most N tool calls.")] = None,
    efficiency_quantile: Annotated[
        float | None,
        typer.Option(help="Runs at or under this quantile of tool calls and tokens among correct runs, e.g. 0.5."),
    ] = None,
    termination: Annotated[list[str] | None, typer.Option(help="Keep this termination (repeatable).")] = None,
    min_info_gain: Annotated[
        float | None, typer.Option(help="Runs whose total information gain is at least X.")
    ] = None,
    dedupe: Annotated[bool, typer.Option("--dedupe", help="One run per question (correct, then cheapest).")] = False,
    val_fraction: Annotated[
        float, typer.Option(help="Share of questions (by hash) in a .val file; train goes to .train.")
    ] = 0.0,
    role: Annotated[list[str] | None, typer.Option(help="roles format: only this role (repeatable).")] = None,
    max_tool_chars: Annotated[int, typer.Option(help="Cut page texts in tool results to N characters.")] = 4000,
    parquet: Annotated[bool, typer.Option("--parquet", help="Also write .parquet files (needs pyarrow).")] = False,
    absolute_paths: Annotated[
        bool,
        typer.Option("--absolute-paths", help="Keep local paths as on this machine (default: local://INDEX/relative)."),
    ] = False,
    keep_ungrounded: Annotated[
        bool,
        typer.Option(
            "--keep-ungrounded",
            help="Keep records whose citations do not all resolve to a passage in an earlier tool turn (flagged in "
            "meta.grounding); by default they are left out and counted.",
        ),
    ] = False,
    check_template: Annotated[
        Path | None,
        typer.Option(
            "--check-template",
            help="Render every record with this chat template (a GGUF file, tokenizer_config.json, a .jinja file or "
            "a model folder) the way transformers does; records it cannot render whole (a message, tool call or "
            "tool result missing, assistant turns not locatable for a loss mask) are left out; exit 1 if any. "
            "Needs deepsearch[train].",
        ),
    ] = None,
    template_name: Annotated[
        str | None, typer.Option(help="--check-template: which named template (default: tool_use, else default).")
    ] = None,
    trace_ids: Annotated[list[str] | None, typer.Argument(help="Only these runs (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export runs as training data, with filters, a train/validation split and a summary.

    Tool turns hold the passages the model read (numbered n, the text its prompt showed); every \\[n] in an answer
    resolves to one, or the record is left out (--keep-ungrounded keeps it, flagged). Local sources are written
    as local://INDEX/relative-path (--absolute-paths keeps this machine's paths).

    Example: deepsearch traces export --format messages --correct-only --reasoning think -o sft.jsonl

    With a model's chat template checked: deepsearch traces export -o sft.jsonl --check-template tokenizer_config.json
    """
    try:
        opts = ExportOptions(
            format=fmt,
            reasoning=reasoning,
            max_tool_chars=max_tool_chars,
            roles=role or [],
            val_fraction=val_fraction,
            parquet=parquet,
            absolute_paths=absolute_paths,
            keep_ungrounded=keep_ungrounded,
            check_template=check_template,
            template_name=template_name,
            filter=RunFilter(
                terminations=termination or [],
                correct_only=correct_only,
                max_tool_calls=max_tool_calls,
                min_info_gain=min_info_gain,
                efficiency_quantile=efficiency_quantile,
                dedupe=dedupe,
            ),
        )
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        err = e.errors()[0] if hasattr(e, "errors") else {"loc": (), "msg": str(e)}
        raise UsageError(f"bad export option {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    settings = settings_from_cli(config, {"traces.dir": traces_dir}).settings
    # The configured secrets and patterns apply again on export (a log may predate them).
    summary = export(settings.traces.dir, output, opts, trace_ids, redactor=Redactor.from_settings(settings))
    failed = summary.template is not None and summary.template.rendered_whole < summary.template.records
    if as_json:
        print(summary.model_dump_json(indent=2))
        if failed:
            raise typer.Exit(1)
        return
    console = Console()
    for f in summary.filters:
        console.print(f"{f.name:>18}: {f.kept:>6} runs  [dim]{f.note}[/dim]")
    for reason, n in summary.dropped.items():
        console.print(f"{'left out':>18}: {n:>6} records  [dim]{reason}[/dim]")
    for example in summary.ungrounded_examples:
        console.print(f"  [yellow]ungrounded[/yellow] {example}")
    for path, n in summary.files.items():
        console.print(f"wrote {n} samples to {path}")
    if not summary.files:
        why = "every record was left out (above)" if summary.dropped else "the filters left nothing"
        console.print(f"[yellow]no samples written: {why}[/yellow]")
    console.print(f"tokens per sample: {summary.token_percentiles}")
    if summary.template is not None:
        console.print(summary.template.summary(), markup=False, highlight=False)
    if failed:
        t = summary.template
        Console(stderr=True).print(f"error: {t.records - t.rendered_whole} of {t.records} records do not render whole "
                                   f"with {t.source}; they were left out", markup=False, highlight=False)  # fmt: skip
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="traces")
