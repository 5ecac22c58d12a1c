"""Options shared by the commands that talk to an LLM, and how they become settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import LoadedSettings, load_settings
from ..errors import UsageError

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: the user config dir's config.toml)."),
]
BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--llm-base-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM). Repeat for round-robin.",
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--llm-model", help="Model name on the server.")]
BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", help="llamacpp (embedded), openai (any OpenAI-compatible server) or auto."),
]
ModelPathOpt = Annotated[Path | None, typer.Option("--model-path", help="GGUF file for the embedded llamacpp backend.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of rich output.")]
TracesDirOpt = Annotated[
    Path | None,
    typer.Option("--traces-dir", help="Trajectory directory (default: traces.dir, env DEEPSEARCH_TRACES_DIR)."),
]


def llm_overrides(
    base_url: list[str] | None, model: str | None, backend: str | None, model_path: Path | None
) -> dict[str, Any]:
    return {
        "llm.base_url": base_url,
        "llm.model": model,
        "llm.backend": backend,
        "llm.model_path": str(model_path) if model_path else None,
    }


def settings_from_cli(config: Path | None, overrides: dict[str, Any] | None = None) -> LoadedSettings:
    return load_settings(config, overrides)


# ---- the options of a research run, shared by `ask`, `batch` and `eval` ----------------------
ClosedBookOpt = Annotated[
    bool, typer.Option("--closed-book", help="Answer from the model alone, without searching (the baseline).")
]
IndexOpt = Annotated[
    list[str] | None,
    typer.Option("--index", "-i", help="Local index to search (a name from `deepsearch index` or a path). Repeatable."),
]
WebOpt = Annotated[bool | None, typer.Option("--web/--no-web", help="Also search the web (default: agent.web).")]
MaxLLMCallsOpt = Annotated[int | None, typer.Option("--max-llm-calls", help="Budget: LLM calls for the run.")]
MaxSearchesOpt = Annotated[int | None, typer.Option("--max-searches", help="Budget: search calls for the run.")]
MaxFetchesOpt = Annotated[int | None, typer.Option("--max-fetches", help="Budget: page fetches for the run.")]
MaxSecondsOpt = Annotated[float | None, typer.Option("--max-seconds", help="Budget: wall time for the run (seconds).")]
MaxRoundsOpt = Annotated[int | None, typer.Option("--max-rounds", help="Research rounds per sub-goal (hard cap).")]
MaxSubgoalsOpt = Annotated[int | None, typer.Option("--max-subgoals", help="Sub-goals the planner may create.")]


def research_overrides(
    index: list[str] | None,
    web: bool | None,
    max_llm_calls: int | None,
    max_searches: int | None,
    max_fetches: int | None,
    max_seconds: float | None,
    max_rounds: int | None,
    max_subgoals: int | None,
) -> dict[str, Any]:
    return {
        "agent.indexes": index,
        "agent.web": web,
        "agent.max_llm_calls": max_llm_calls,
        "agent.max_searches": max_searches,
        "agent.max_fetches": max_fetches,
        "agent.max_seconds": max_seconds,
        "agent.max_rounds": max_rounds,
        "agent.max_subgoals": max_subgoals,
    }


ReplayOpt = Annotated[
    str | None,
    typer.Option(
        "--replay",
        help="Serve every web search and page from this snapshot: a snapshot .zip or .json, an id from `deepsearch "
        "snapshot ls`, a trace id, or a batch output .jsonl (its runs' web). Nothing goes to the network; a request "
        "the snapshot does not hold is a `not_recorded` outcome. Turns the web on unless --no-web.",
    ),
]
ReplayMatchOpt = Annotated[
    str | None,
    typer.Option("--replay-match", help="exact (default: every search parameter) or query (the query alone)."),
]


def replay_overrides(replay: str | None, match: str | None, web: bool | None) -> dict[str, Any]:
    """`--replay` and `--replay-match` as settings; a replay turns the web on unless --no-web said otherwise."""
    if match is not None and replay is None:
        raise UsageError("--replay-match needs --replay SNAPSHOT")
    overrides: dict[str, Any] = {"snapshot.replay": replay, "snapshot.match": match}
    if replay is not None and web is None:
        overrides["agent.web"] = True
    return overrides
