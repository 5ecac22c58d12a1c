"""The configuration reference (docs/configuration.md), rendered from the settings models so it cannot drift.

Regenerate after changing a setting: `python -m deepsearch.agent.config_reference > docs/configuration.md`;
a test fails while the committed page differs from `render()`. Defaults that depend on the machine (the
platformdirs data, cache and config folders) are written as placeholders such as `<data dir>/traces`, so the
page is the same everywhere.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import platformdirs
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import Settings, env_name
from .config_sections import APP_NAME

COMMAND = "python -m deepsearch.agent.config_reference > docs/configuration.md"

# Per section: one line, and the title and address of the docs page that explains it (a section missing here
# still gets its table).
SECTION_NOTES: dict[str, tuple[str, str, str]] = {
    "llm": ("Which model answers and how it is reached: the embedded llama.cpp model or an OpenAI-compatible "
            "server such as vLLM.", "LLM backends and vLLM", "llm-backends.md"),
    "traces": ("Where trajectories are recorded and what is masked in them.", "Trajectories", "trajectories.md"),
    "index": ("How local indexes are built and searched.", "Local indexes", "local-index.md"),
    "cache": ("Where the web search and page caches live.", "Caches", "security.md#caches"),
    "search": ("Web search: ddgs, the SearXNG fallback, rate limits, backoff and the result cache.",
               "Web search and fetch", "web-search.md"),
    "fetch": ("Page fetch: timeouts, byte cap, redirects, robots.txt, the SSRF allow-list and extraction.",
              "Page fetch", "web-search.md#page-fetch-deepsearch-fetch"),
    "agent": ("The research graph: evidence per round, rounds, stopping and the run's budgets.",
              "The research loop", "research-loop.md"),
    "rerank": ("The reasoning reranker of `deepsearch rerank` (and of `agent.selection = \"rerank\"`).",
               "Reranking", "reranking.md"),
    "eval": ("Where `deepsearch eval` finds its data sets.", "Batch and eval", "batch-and-eval.md#deepsearch-eval"),
    "ray": ("Batch and eval on a Ray cluster (`--ray ADDRESS`).", "Ray", "ray.md"),
    "snapshot": ("The web snapshot store, recording and replay.", "Web snapshots", "web-snapshots.md"),
}  # fmt: skip

INTRO = """\
# Configuration reference

Settings come from, in increasing priority: defaults < a TOML file (`--config FILE`, or `DEEPSEARCH_CONFIG`;
default `<config dir>/config.toml`, e.g. `~/.config/deepsearch/config.toml` on Linux) < environment variables
`DEEPSEARCH_<SECTION>_<KEY>` < command-line flags. A key unknown to a section is an error, not ignored.

```toml
# ~/.config/deepsearch/config.toml
[llm]
base_url = ["http://gpu-a:8000/v1", "http://gpu-b:8000/v1"]
model = "Qwen/Qwen3-8B"
concurrency = 32
timeout_s = 300
```

`deepsearch config show` prints every effective value with its source (`default`, `file …`, `env …`,
`flag`), secrets masked (`--json` for a machine-readable copy); a bad value fails with the key, the source
and the expected type:

```console
$ DEEPSEARCH_LLM_TIMEOUT_S=abc deepsearch config show
{bad_value}
```

The tables below list every setting: its type and allowed range, its default (`<data dir>`, `<cache dir>`
and `<config dir>` are the user folders of [platformdirs](https://platformdirs.readthedocs.io), e.g.
`~/.local/share/deepsearch`, `~/.cache/deepsearch` and `~/.config/deepsearch` on Linux), the environment
variable that sets it and what it does. A list is written in TOML as a list; in an environment variable as
the table says (comma-separated, a JSON list, or not at all).
"""
BAD_VALUE = (
    "deepsearch: error: bad config value llm.timeout_s = 'abc' (from env DEEPSEARCH_LLM_TIMEOUT_S): "
    "Input should be a valid number, unable to parse string as a number; expected float"
)


def _user_dirs() -> list[tuple[str, Path]]:
    return [
        ("<data dir>", Path(platformdirs.user_data_dir(APP_NAME))),
        ("<cache dir>", Path(platformdirs.user_cache_dir(APP_NAME))),
        ("<config dir>", Path(platformdirs.user_config_dir(APP_NAME))),
    ]


def _path_text(path: Path) -> str:
    """A path with this machine's user folders replaced by placeholders."""
    for label, base in _user_dirs():
        if path == base:
            return label
        if base in path.parents:
            return f"{label}/{path.relative_to(base).as_posix()}"
    home = Path.home()
    if home in path.parents:
        return f"~/{path.relative_to(home).as_posix()}"
    return path.as_posix()


def _value_text(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return _path_text(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return repr(value)


def _code(text: str) -> str:
    tick = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def _type_text(ann: Any) -> str:
    origin = typing.get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(_code(_value_text(a)) for a in typing.get_args(ann))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        kept = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a) for a in kept)
        return f"{text}, optional" if len(kept) < len(args) else text
    if origin in (list, tuple, set):
        (item,) = typing.get_args(ann)[:1] or (str,)
        return f"list of {_type_text(item)}"
    if ann is SecretStr:
        return "secret string"
    if ann is Path:
        return "path"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(ann, getattr(ann, "__name__", str(ann)))


def _range_text(field: FieldInfo) -> str:
    marks = {annotated_types.Ge: ("≥", "ge"), annotated_types.Gt: (">", "gt"),
             annotated_types.Le: ("≤", "le"), annotated_types.Lt: ("<", "lt")}  # fmt: skip
    parts = []
    for meta in field.metadata:
        for kind, (sign, attr) in marks.items():
            if isinstance(meta, kind):
                parts.append(f"{sign} {getattr(meta, attr)}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _default_text(value: Any) -> str:
    return "not set" if value is None else _code(_value_text(value))


def _env_list_form(section: type[BaseModel], name: str) -> str:
    """How a list setting is written in an environment variable, found by asking the model itself."""

    def parses_as(raw: str, expected: list[str]) -> bool:
        try:
            return list(getattr(section.model_validate({name: raw}), name)) == expected
        except ValidationError:
            return False

    forms = [
        form for raw, form in (("a,b", "comma-separated"), ('["a", "b"]', "a JSON list")) if parses_as(raw, ["a", "b"])
    ]
    if "comma-separated" not in forms and parses_as("a", ["a"]):
        forms.append("one value")
    return " or ".join(forms) if forms else "not settable from the environment"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section_table(key: str, section: type[BaseModel]) -> list[str]:
    note, title, page = SECTION_NOTES.get(key, ("", "", ""))
    lines = [f"## `[{key}]`", ""]
    if note:
        lines += [f"{note} See [{title}]({page}).", ""]
    lines += ["| setting | type | default | range | environment variable | description |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, field in section.model_fields.items():
        dotted = f"{key}.{name}"
        env = _code(env_name(dotted))
        if typing.get_origin(field.annotation) in (list, tuple, set):
            env += f" ({_env_list_form(section, name)})"
        row = [
            _code(dotted),
            _type_text(field.annotation),
            _default_text(_default(field)),
            _range_text(field),
            env,
            field.description or "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines + [""]


def render() -> str:
    """docs/configuration.md: the intro, then one table per settings section in the order `Settings` has them."""
    header = f"<!-- Generated from the settings models: `{COMMAND}`. Do not edit by hand. -->"
    lines = [header, "", INTRO.format(bad_value=BAD_VALUE)]
    for key, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            lines += _section_table(key, section)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
