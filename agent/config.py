"""Settings: defaults < TOML file < env `DEEPSEARCH_<SECTION>_<KEY>` < CLI flags, with the source of each value.

Each section is a pydantic model; a leaf `llm.base_url` is read from env `DEEPSEARCH_LLM_BASE_URL`,
from TOML `[llm] base_url = …`, and from CLI overrides given as dotted keys.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .config_sections import (  # re-exported: the rest of the code imports the sections from here
    AgentSettings,
    CacheSettings,
    EvalSettings,
    FetchSettings,
    IndexSettings,
    LLMSettings,
    RaySettings,
    RerankSettings,
    SearchSettings,
    Section,
    Settings,
    SnapshotSettings,
    TracesSettings,
    default_config_file,
)
from .errors import ConfigError

ENV_PREFIX = "DEEPSEARCH_"
__all__ = [
    "AgentSettings",
    "CacheSettings",
    "EvalSettings",
    "FetchSettings",
    "IndexSettings",
    "LLMSettings",
    "RaySettings",
    "RerankSettings",
    "SearchSettings",
    "Section",
    "Settings",
    "SnapshotSettings",
    "TracesSettings",
    "default_config_file",
    "LoadedSettings",
    "SECRET_KEYS",
    "env_name",
    "get_value",
    "leaf_keys",
    "load_settings",
    "redacted_dump",
]


SECRET_KEYS = {"llm.api_key"}


def leaf_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Dotted names of every leaf setting, e.g. `llm.base_url`."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[prefix + k] = v
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


class LoadedSettings(BaseModel):
    """The effective settings and, per dotted key, where the value came from."""

    settings: Settings
    sources: dict[str, str]
    config_file: Path | None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None


def load_settings(
    config_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Build the effective settings. `overrides` are CLI values by dotted key (None = not given)."""
    environ = os.environ if environ is None else environ
    known = set(leaf_keys())
    values: dict[str, Any] = {}
    sources = {k: "default" for k in known}

    explicit = config_file or environ.get(ENV_PREFIX + "CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_file()
    if explicit and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    used_file = path if path.is_file() else None
    if used_file:
        for key, value in _flatten(_read_toml(used_file)).items():
            if key not in known:
                raise ConfigError(f"unknown config key '{key}' in {used_file}")
            values[key], sources[key] = value, f"file {used_file}"

    for key in known:
        name = env_name(key)
        if environ.get(name, "") != "":
            values[key], sources[key] = environ[name], f"env {name}"

    for key, value in (overrides or {}).items():
        if key not in known:
            raise KeyError(f"override for unknown setting {key}")
        if value is not None and value != [] and value != ():
            values[key], sources[key] = value, "flag"

    try:
        settings = Settings.model_validate(_nest(values))
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        shown = "***" if key in SECRET_KEYS else repr(values.get(key, err.get("input")))
        expected = _expected_type(key)
        raise ConfigError(
            f"bad config value {key} = {shown} (from {sources.get(key, 'default')}): "
            f"{err['msg']}{f'; expected {expected}' if expected else ''}"
        ) from None
    return LoadedSettings(settings=settings, sources=sources, config_file=used_file)


def _expected_type(key: str) -> str:
    model: type[BaseModel] = Settings
    *parents, leaf = key.split(".")
    for p in parents:
        ann = model.model_fields[p].annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return ""
        model = ann
    field = model.model_fields.get(leaf)
    if field is None:
        return ""
    ann = field.annotation
    return ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "")


def get_value(settings: Settings, key: str) -> Any:
    node: Any = settings
    for part in key.split("."):
        node = getattr(node, part)
    return node


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON-able data with secrets removed (for traces and `--json`)."""
    data = settings.model_dump(mode="json")
    for key in SECRET_KEYS:
        section, leaf = key.split(".")
        if data[section].get(leaf) is not None:
            data[section][leaf] = "***"
    from .masking import display_url

    data["llm"]["base_url"] = [display_url(u) for u in data["llm"]["base_url"]]
    return data
