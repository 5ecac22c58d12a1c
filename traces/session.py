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

_VERSIONS: dict[tuple[str, ...], dict[str, str]] = {}


def prompt_versions() -> dict[str, str]:
    """Hash of every prompt template file; a broken template is recorded, not fatal to the run.

    load_prompt keeps each template for the process, so the versions change only with the set of files: they are
    kept per file list (a list with a broken template is looked at again on the next run)."""
    names = tuple(available_prompts())
    known = _VERSIONS.get(names)
    if known is not None:
        return dict(known)
    versions = {}
    for name in names:
        try:
            versions[name] = load_prompt(name).version
        except (OSError, ValueError) as e:
            versions[name] = f"invalid: {e}"
    if not any(v.startswith("invalid: ") for v in versions.values()):
        _VERSIONS[names] = dict(versions)
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
    local_roots: dict[str, list[str]] | None = None,
) -> TraceRecorder:
    header = Header(
        question=question,
        mode=mode,
        config=redacted_dump(settings),
        models=[ModelUse(backend=backend.name, model=backend.model)],
        prompts=prompt_versions(),
        tools=tools or [],
        local_roots=local_roots or {},
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
