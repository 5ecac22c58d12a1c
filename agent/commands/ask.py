"""`deepsearch ask`: answer one question."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.panel import Panel

from ..errors import UsageError
from .options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    ModelOpt,
    ModelPathOpt,
    TracesDirOpt,
    llm_overrides,
    settings_from_cli,
)


def ask(
    question: str = typer.Argument(..., help="The question to answer."),
    closed_book: bool = typer.Option(
        False, "--closed-book", help="Answer from the model alone, without searching (the baseline)."
    ),
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    traces_dir: TracesDirOpt = None,
) -> None:
    """Answer a question. With --closed-book the model answers directly (no search).

    Uses the embedded model unless --llm-base-url points at an OpenAI-compatible server (e.g. vLLM).

    Example: deepsearch ask "What is the capital of France?" --closed-book --json
    """
    question = question.strip()
    if not question:
        raise UsageError("the question is empty")
    if not closed_book:
        raise UsageError("this version answers with --closed-book only; search-based answering is not built yet")
    overrides = llm_overrides(llm_base_url, llm_model, backend, model_path) | {"traces.dir": traces_dir}
    loaded = settings_from_cli(config, overrides)
    result = asyncio.run(_run(loaded.settings, question))
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    console = Console()
    console.print(Panel(result.answer or "(no answer)", title=question, subtitle=result.termination))
    u = result.usage
    console.print(
        f"[dim]{result.backend}:{result.model} · {u.llm_calls} LLM call(s) · "
        f"{u.prompt_tokens}+{u.completion_tokens} tokens · {u.seconds:.1f}s · trace {result.trace_id}[/dim]"
    )


async def _run(settings, question: str):
    from ...traces.session import start_run_recording
    from ..closed_book import answer_closed_book
    from ..llm import LLMClient, build_backend

    backend = build_backend(settings.llm)
    try:
        # A failure inside the block is recorded as the run's error_<kind> termination, then re-raised.
        with start_run_recording(settings, question, mode="closed_book", backend=backend) as recorder:
            client = LLMClient(backend, observers=[recorder.observer()])
            result = await answer_closed_book(client, question, recorder)
            recorder.finish(result.answer, termination=result.termination, usage=result.usage)
        return result.model_copy(update={"trace_id": recorder.id})
    finally:
        await backend.aclose()


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
