"""`deepsearch config show`: the effective configuration and where each value came from."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from ..config import SECRET_KEYS, get_value, leaf_keys
from ..masking import display_url
from .options import ConfigOpt, JsonOpt, settings_from_cli

config_app = typer.Typer(help="Inspect the configuration (defaults < TOML file < env DEEPSEARCH_* < flags).")


def _shown(key: str, value) -> str:
    if key in SECRET_KEYS:
        return "(not set)" if value is None else "***"
    if key == "llm.base_url":  # a URL may carry a credential (user:KEY@host, ?api_key=KEY)
        value = [display_url(u) for u in value]
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "[]"
    return str(value)


@config_app.command("show")
def show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print every setting with its effective value and its source (default, file, env or flag).

    Secrets are masked. Env names follow DEEPSEARCH_<SECTION>_<KEY>, e.g. DEEPSEARCH_LLM_BASE_URL.
    """
    loaded = settings_from_cli(config)
    rows = [(k, _shown(k, get_value(loaded.settings, k)), loaded.sources[k]) for k in leaf_keys()]
    if as_json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        return
    table = Table(title=f"config file: {loaded.config_file or '(none)'}")
    for col in ("key", "value", "source"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
