"""`deepsearch doctor`: is the configured LLM usable? reachable, model listed, guided JSON, logprobs.

For the embedded model it first checks the llama.cpp build (portable or native, the CPU features it uses, this
CPU's flags) and decodes a few tokens in a child process: a build that dies with SIGILL fails a check, not doctor.
"""

from __future__ import annotations

import asyncio
import json
import time

import typer
from pydantic import BaseModel, Field
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
    city: str = Field(max_length=40)  # a bound the grammar enforces: a drifting small model stops at 40 characters
    population_millions: float


def embedded_build_checks(model_path) -> list[Check]:
    """The llama.cpp build's rows; the last is the child-process decode (its failure means: do not load in-process)."""
    from ..llm import llamacpp_build as build

    version = build.installed_version()
    if version is None:
        return [Check(name="embedded build", ok=False, detail='llama-cpp-python is not installed (make install)')]
    marker = build.portable_marker()
    checks = [
        Check(
            name="embedded build",
            ok=marker is not None,
            detail=f"llama-cpp-python {version}, portable: {marker}"
            if marker
            else f"llama-cpp-python {version} has no PORTABLE_BUILD marker: a native build dies on AMX CPUs; "
            + build.FIX,
            required=False,
        )
    ]
    decode = build.decode_in_child(model_path)
    if decode.system_info is not None:
        features = build.parse_system_info(decode.system_info)
        unsafe = build.unsafe_features(features)
        shown = " ".join(f"{k}={v}" for k, v in features.items())
        off = ", ".join(f"{p}=0" for p in build.UNSAFE_FEATURE_PREFIXES if not any(u.startswith(p) for u in unsafe))
        checks.append(
            Check(
                name="CPU features (build)",
                ok=not unsafe,
                detail=f"{shown}; {off}" if not unsafe else f"{shown}: uses {', '.join(unsafe)}; {build.FIX}",
            )
        )
    flags = build.host_cpu_flags()
    if flags is not None:
        has = " ".join(f for f, on in flags.items() if on) or "none"
        lacks = " ".join(f for f, on in flags.items() if not on) or "none"
        checks.append(Check(name="CPU flags (host)", ok=True, detail=f"has {has}; lacks {lacks}"))
    checks.append(Check(name="decode (child process)", ok=decode.ok, detail=decode.detail))
    return checks


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
            build_checks = await asyncio.to_thread(embedded_build_checks, backend.model_path)
            checks += build_checks
            if not build_checks[-1].ok:  # loading it here could kill doctor the same way
                return checks
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
