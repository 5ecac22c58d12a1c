"""`deepsearch doctor`: is the configured LLM usable? reachable, model listed, guided JSON, logprobs."""

from __future__ import annotations

import asyncio
import json
import time

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .options import (
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    ModelOpt,
    ModelPathOpt,
    llm_overrides,
    settings_from_cli,
)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    required: bool = True  # a failed optional check is a warning, not a failure


class _Probe(BaseModel):
    city: str
    population_millions: float


async def run_checks(settings) -> list[Check]:
    from ..llm import ChatMessage, LLMClient, LLMError, LLMRequest, build_backend, generate_structured
    from ..tokens import count_tokens

    checks: list[Check] = []
    try:
        n = count_tokens("hello world")
        checks.append(Check(name="tokenizer (offline)", ok=True, detail=f"o200k_base, 'hello world' = {n} tokens"))
    except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
        checks.append(Check(name="tokenizer (offline)", ok=False, detail=str(e)[:200]))

    try:
        backend = build_backend(settings.llm)
    except LLMError as e:
        return [*checks, Check(name="backend", ok=False, detail=str(e))]
    try:
        if backend.name == "openai":
            for ep in backend.endpoints:
                started = time.perf_counter()
                try:
                    models = await backend.list_models(ep)
                except LLMError as e:
                    checks.append(Check(name=f"reachable {ep.display}", ok=False, detail=str(e)))
                    continue
                ids = [m["id"] for m in models]
                ms = (time.perf_counter() - started) * 1000
                detail = f"{len(ids)} model(s), {ms:.0f} ms"
                checks.append(Check(name=f"reachable {ep.display}", ok=True, detail=detail))
                wanted = settings.llm.model
                listed = (wanted in ids) if wanted else bool(ids)
                detail = f"{wanted or ids[:1]} in {ids[:5]}" if listed else f"{wanted!r} not in {ids[:5]}"
                checks.append(Check(name="model listed", ok=listed, detail=detail))
            if not all(c.ok for c in checks):
                return checks
        else:
            started = time.perf_counter()
            try:
                backend._load()
                checks.append(
                    Check(
                        name="model loads",
                        ok=True,
                        detail=f"{backend.model_path} in {time.perf_counter() - started:.1f}s",
                    )
                )
            except LLMError as e:
                return [*checks, Check(name="model loads", ok=False, detail=str(e))]

        client = LLMClient(backend)
        messages = [ChatMessage(role="user", content="Name the largest city of Japan and its population.")]
        try:
            outcome = await generate_structured(
                client, messages, _Probe, role="doctor", fallback=_Probe(city="", population_millions=0)
            )
            kind = getattr(backend, "server_kind", None) or backend.name
            checks.append(
                Check(
                    name="guided JSON",
                    ok=outcome.status == "ok",
                    detail=f"{outcome.status} via {kind}: {outcome.value.model_dump_json()}",
                )
            )
            response = await client.complete(
                LLMRequest(
                    messages=[ChatMessage(role="user", content="Say hi.")], max_tokens=8, logprobs=True, top_logprobs=3
                )
            )
            summary = response.logprob_summary()
            checks.append(
                Check(
                    name="logprobs",
                    ok=summary is not None,
                    detail=f"{summary['tokens']} tokens, mean logprob {summary['mean_logprob']:.2f}"
                    if summary
                    else "not returned: stopping falls back to answer agreement",
                    required=False,
                )
            )
        except LLMError as e:
            checks.append(Check(name="completion", ok=False, detail=str(e)))
    finally:
        await backend.aclose()
    return checks


def doctor(
    config: ConfigOpt = None,
    llm_base_url: BaseUrlOpt = None,
    llm_model: ModelOpt = None,
    backend: BackendOpt = None,
    model_path: ModelPathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the configured LLM: reachable, model listed, guided JSON works, logprobs available.

    Prints a table and exits with status 1 if any check fails.
    """
    loaded = settings_from_cli(config, llm_overrides(llm_base_url, llm_model, backend, model_path))
    checks = asyncio.run(run_checks(loaded.settings))
    if as_json:
        print(json.dumps([c.model_dump() for c in checks], indent=2))
    else:
        table = Table(title=f"deepsearch doctor · backend {loaded.settings.llm.resolved_backend()}")
        for col in ("check", "status", "detail"):
            table.add_column(col)
        for c in checks:
            status = "[green]ok[/green]" if c.ok else ("[red]FAIL[/red]" if c.required else "[yellow]warn[/yellow]")
            table.add_row(c.name, status, c.detail)
        Console().print(table)
    if not all(c.ok or not c.required for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
