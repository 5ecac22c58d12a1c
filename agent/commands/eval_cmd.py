"""`deepsearch eval DATASET`: run a data set through the batch and report accuracy, evidence and cost."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from deepsearch.tools.snapshot_sources import snapshot_of_batch
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from ..eval.datasets import KNOWN, load_dataset, select
from ..eval.pool import pooled_index
from ..eval.report import EvalReport, overview_rows, write_report
from ..eval.scoring import mode_report
from .batch_cmd import (
    ConcurrencyOpt,
    JudgeOpt,
    QuietOpt,
    RayOpt,
    RayWorkersOpt,
    ResumeOpt,
    SummaryJsonOpt,
    TimeoutOpt,
    err_console,
    new_job,
)
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ClosedBookOpt,
    ConfigOpt,
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


def eval_command(
    dataset: Annotated[str, typer.Argument(help=f"A data set file or folder, or a name: {', '.join(KNOWN)}.")],
    ids: Annotated[Path | None, typer.Option("--ids", help="Only these question ids (one per line).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many questions.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Also run closed-book, for comparison.")] = False,
    closed_book: ClosedBookOpt = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Rows JSONL (default eval-NAME.jsonl; baseline beside it).")
    ] = None,
    resume: ResumeOpt = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write a report: .html or .md (with plots).")] = None,
    summary_json: SummaryJsonOpt = None,
    judge: JudgeOpt = False,
    concurrency: ConcurrencyOpt = 8,
    timeout: TimeoutOpt = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where named data sets live (eval.data_dir).")
    ] = None,
    web: WebOpt = None,
    max_llm_calls: MaxLLMCallsOpt = None,
    max_searches: MaxSearchesOpt = None,
    max_fetches: MaxFetchesOpt = None,
    max_seconds: MaxSecondsOpt = None,
    max_rounds: MaxRoundsOpt = None,
    max_subgoals: MaxSubgoalsOpt = None,
    quiet: QuietOpt = False,
    ray: RayOpt = None,
    ray_workers: RayWorkersOpt = None,
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    traces_dir: TracesDirOpt = None,
    replay: ReplayOpt = None,
    replay_match: ReplayMatchOpt = None,
) -> None:
    """Evaluate on a data set: HotpotQA (IRCoT JSONL, or original + corpus), MuSiQue, Bamboogle, FRAMES or a
    question list. Sets with passages are searched through a pooled index of all their passages (built once,
    cached); the others need --web or --closed-book. Reports EM/F1, recall and precision of the cited passages
    against the gold supporting passages, abstention, cost per question, and with --baseline the closed-book
    run beside it. Rows are written like `deepsearch batch` rows, so --resume continues an interrupted eval;
    --ray ADDRESS answers on a Ray cluster as `deepsearch batch --ray` does.

    Examples:
      deepsearch eval hotpotqa --ids dev_ids.txt --limit 50 --baseline --report hotpot.html --llm-base-url http://127.0.0.1:8000/v1
      deepsearch eval ./musique_qa_100.json --limit 20 --report musique.md
      deepsearch eval bamboogle --closed-book --judge
      deepsearch eval hotpotqa --limit 1000 --ray auto -c 128 --llm-base-url http://10.0.0.11:8000/v1
    """
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    overrides |= research_overrides(None, web, max_llm_calls, max_searches, max_fetches, max_seconds, max_rounds,
                                    max_subgoals) | {"eval.data_dir": str(data_dir) if data_dir else None}  # fmt: skip
    overrides |= replay_overrides(replay, replay_match, web)
    if ray_workers is not None and ray is None:
        raise UsageError("--ray-workers needs --ray ADDRESS")
    overrides["ray.workers"] = ray_workers
    loaded = settings_from_cli(config, overrides)
    settings = loaded.settings
    if loaded.sources["llm.concurrency"] == "default":
        settings.llm.concurrency = concurrency
    console = err_console()
    data = load_dataset(dataset, settings.eval.data_dir)
    questions = select(data.questions, ids, limit)

    modes = ["closed_book"] if closed_book else ["research", *(["closed_book"] if baseline else [])]
    if "research" in modes:
        if data.passages:
            settings.agent.indexes = [str(pooled_index(data, settings, log=console.print))]
            # The pooled corpus is the search space unless --web (or --replay of a recorded web) is asked for.
            settings.agent.web = bool(web) or (web is None and settings.snapshot.replay is not None)
        elif not web:
            raise UsageError(f"{data.name} has no passages to search: add --web, or use --closed-book")
    output = output or Path(f"eval-{data.name}.jsonl")
    reports = []
    snapshot = None
    for mode in modes:
        path = output if mode == modes[0] else output.with_name(f"{output.stem}.{mode}{output.suffix}")
        job = new_job(
            settings, path, ray, closed_book=mode == "closed_book", concurrency=concurrency, timeout_s=timeout,
            judge=judge, resume=resume, quiet=quiet, warn=lambda m: console.print(f"deepsearch: warning: {m}"),
        )  # fmt: skip
        if not quiet:
            console.print(f"{data.name}: {len(questions)} questions, {mode.replace('_', '-')} → {path}")
        rows = asyncio.run(job.run(questions))
        reports.append(mode_report(mode, rows, settings.traces.dir))
        if mode == "research":
            snapshot = snapshot_of_batch(rows, settings)

    selection = ", ".join([*([f"ids from {ids.name}"] if ids else []), *([f"limit {limit}"] if limit else [])])
    result = EvalReport(
        dataset=data.name, format=data.format, questions=len(questions), selection=selection or "all",
        backend=settings.llm.resolved_backend(), modes=reports, snapshot=snapshot,
    )  # fmt: skip
    header, rows_ = overview_rows(result)
    table = Table(*header, title=f"{data.name}: {len(questions)} questions", title_justify="left")
    for row in rows_:
        table.add_row(*row)
    Console().print(table)
    if report is not None:
        write_report(result, report)
        console.print(f"report: {report}")
    if summary_json is not None:
        try:
            summary_json.write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
        except OSError as e:
            raise UsageError(f"cannot write {summary_json}: {e.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
