"""Start recording a run from the effective settings: header, redaction and location in one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepsearch.agent.config import Settings, redacted_dump
from deepsearch.agent.llm.base import LLMBackend
from deepsearch.prompts import available_prompts, load_prompt

from .recorder import TraceRecorder
from .redact import Redactor
from .schema import Header, ModelUse, ToolSpec


def prompt_versions() -> dict[str, str]:
    """Hash of every prompt template file; a broken template is recorded, not fatal to the run."""
    versions = {}
    for name in available_prompts():
        try:
            versions[name] = load_prompt(name).version
        except (OSError, ValueError) as e:
            versions[name] = f"invalid: {e}"
    return versions


def start_run_recording(
    settings: Settings,
    question: str,
    *,
    mode: str,
    backend: LLMBackend,
    traces_dir: Path | None = None,
    gold: list[str] | None = None,
    tools: list[ToolSpec] | None = None,
    meta: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> TraceRecorder:
    header = Header(
        question=question,
        mode=mode,
        config=redacted_dump(settings),
        models=[ModelUse(backend=backend.name, model=backend.model)],
        prompts=prompt_versions(),
        tools=tools or [],
        gold=gold,
        meta=meta or {},
    )
    return TraceRecorder.start(
        traces_dir or settings.traces.dir,
        header,
        redactor=Redactor.from_settings(settings),
        fsync=settings.traces.fsync,
        trace_id=trace_id,
    )
