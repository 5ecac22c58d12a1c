"""Options shared by the commands that talk to an LLM, and how they become settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import LoadedSettings, load_settings

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
