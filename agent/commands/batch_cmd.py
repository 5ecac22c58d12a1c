"""`deepsearch batch INPUT -o OUTPUT`: answer a file of questions concurrently, resumably, with a summary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..batch.execute import BatchJob
from ..batch.inputs import read_questions
from ..batch.metrics import summarise, summary_table
from ..config import Settings
from ..errors import UsageError
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ClosedBookOpt,
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
    ReplayMatchOpt,
    ReplayOpt,
    TracesDirOpt,
    WebOpt,
    llm_overrides,
    replay_overrides,
    research_overrides,
    settings_from_cli,
)

ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency", "-c", min=1, max=1024,
        help="Questions answered at once; also the requests in flight to the LLM unless llm.concurrency is set.",
    ),
]  # fmt: skip
TimeoutOpt = Annotated[
    float | None,
    typer.Option("--timeout", min=0.001, help="Seconds per question; a slower one gets an error_timeout row."),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue OUTPUT: skip ids already in it (a cut-off last line is redone).")
]
RetryErrorsOpt = Annotated[
    bool, typer.Option("--retry-errors", help="With --resume: ask the questions whose rows have an error again.")
]
JudgeOpt = Annotated[
    bool, typer.Option("--judge", help="Also grade answers with the LLM against the gold (LLM-judge accuracy).")
]
SummaryJsonOpt = Annotated[Path | None, typer.Option("--summary-json", help="Write the summary figures here as JSON.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray", metavar="ADDRESS",
        help="Answer on a Ray cluster: `local` (start one here), `auto` (the cluster this machine joined, or "
        "RAY_ADDRESS), HOST:PORT of a head, or ray://HOST:10001. -c is then the total, split across workers.",
    ),
]  # fmt: skip
RayWorkersOpt = Annotated[
    int | None,
    typer.Option("--ray-workers", min=1, help="Ray worker actors (default ray.workers: one per CPU of the cluster)."),
]


def new_job(settings: Settings, output: Path, ray_address: str | None, **options: Any) -> BatchJob:
    """A local batch, or with --ray one spread over a Ray cluster (only then is Ray imported)."""
    if ray_address is None:
        return BatchJob(settings, output, **options)
    from ..distributed.ray_runner import RayBatchJob

    return RayBatchJob(settings, output, address=ray_address, **options)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def batch(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="JSONL or CSV with id, question[, answer|answers].")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL to append one row per question to.")],
    resume: ResumeOpt = False,
    retry_errors: RetryErrorsOpt = False,
    concurrency: ConcurrencyOpt = 8,
    timeout: TimeoutOpt = None,
    judge: JudgeOpt = False,
    summary_json: SummaryJsonOpt = None,
    closed_book: ClosedBookOpt = False,
    index: IndexOpt = None,
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
    """Answer every question in INPUT and write one JSON row per question to OUTPUT: the `ask --json`
    object plus `id`, the gold answers, EM/F1 scores when gold is given, and `error` when it failed.

    Rows are appended as each question finishes, so a killed batch loses nothing: run it again with
    --resume and it skips the ids already in OUTPUT. Malformed input lines are reported with their line
    number and skipped. Takes every `ask` option (--closed-book, --index, --web/--no-web, budgets, backend).
    Ends with a summary: EM, F1, LLM-judge accuracy (--judge), cost per question, p50/p95 seconds, terminations.

    With --ray ADDRESS the questions are answered by Ray worker actors (one per CPU, or --ray-workers), each with
    its share of -c; rows and trajectories still land here, a worker that dies has its questions retried
    (ray.max_attempts), and --resume works the same. Several --llm-base-url replicas are balanced by load.

    INPUT lines look like {"id": "q1", "question": "…", "answer": "…"} (or "answers": [...]); a CSV needs a
    header with question (and id, answer). A row without an id gets one derived from its question.

    Examples:
      deepsearch batch questions.jsonl -o answers.jsonl --index wiki --no-web -c 32 \
        --llm-base-url http://127.0.0.1:8000/v1
      deepsearch batch questions.jsonl -o answers.jsonl --resume --summary-json summary.json
      deepsearch batch questions.csv -o baseline.jsonl --closed-book --judge
      deepsearch batch questions.jsonl -o answers.jsonl --ray auto -c 256 --index wiki --no-web \
        --llm-base-url http://10.0.0.11:8000/v1 --llm-base-url http://10.0.0.12:8000/v1
    """
    if retry_errors and not resume:
        raise UsageError("--retry-errors needs --resume (it re-asks failed rows of an existing OUTPUT)")
    if output.resolve() == input_path.resolve():
        raise UsageError("OUTPUT must not be the INPUT file")
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    if ray_workers is not None and ray is None:
        raise UsageError("--ray-workers needs --ray ADDRESS")
    overrides["ray.workers"] = ray_workers
    overrides |= research_overrides(
        index, web, max_llm_calls, max_searches, max_fetches, max_seconds, max_rounds, max_subgoals
    )
    overrides |= replay_overrides(replay, replay_match, web)
    loaded = settings_from_cli(config, overrides)
    settings = loaded.settings
    if loaded.sources["llm.concurrency"] == "default":
        settings.llm.concurrency = concurrency

    console = err_console()
    questions, problems = read_questions(input_path)
    for problem in problems:
        console.print(f"deepsearch: warning: {input_path} {problem}; skipped")
    if not questions:
        raise UsageError(f"no questions in {input_path}" + (f" ({len(problems)} bad line(s))" if problems else ""))

    job = new_job(
        settings, output, ray, closed_book=closed_book, concurrency=concurrency, timeout_s=timeout, judge=judge,
        resume=resume, retry_errors=retry_errors, quiet=quiet,
        warn=lambda message: console.print(f"deepsearch: warning: {message}"),
    )  # fmt: skip
    rows = asyncio.run(job.run(questions))
    finish(rows, job, output, summary_json, len(problems), settings)


def finish(rows: list[dict], job: BatchJob, output: Path, summary_json: Path | None, bad_lines: int,
           settings: Settings) -> None:  # fmt: skip
    from deepsearch.tools.snapshot_sources import snapshot_of_batch

    summary = summarise(rows).model_copy(update={"snapshot": snapshot_of_batch(rows, settings)})
    Console().print(summary_table(summary, title=f"{output} ({len(rows)} rows)"))
    notes = [f"{job.skipped_done} already done"] if job.skipped_done else []
    notes += [f"{bad_lines} input line(s) skipped"] if bad_lines else []
    if notes:
        err_console().print(f"[dim]{'; '.join(notes)}[/dim]")
    if summary_json is not None:
        try:
            summary_json.write_text(json.dumps(summary.model_dump(mode="json"), indent=2) + "\n")
        except OSError as e:
            raise UsageError(f"cannot write {summary_json}: {e.strerror}") from None


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
