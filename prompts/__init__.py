"""Prompt templates as files, loaded by name.

A file `NAME.md` holds a `# system` section and a `# user` section; `$variables` are filled with
string.Template (so JSON braces in prompts need no escaping). A system section that is just `@OTHER`
reuses OTHER.md's system text, so the research roles share one system prompt (a stable prefix that
vLLM's prefix cache reuses across calls). A template's version is the hash of its file (and of the
file it borrows from), recorded in every trajectory.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from string import Template

from pydantic import BaseModel

_SECTION = re.compile(r"^# (system|user)\s*$", re.MULTILINE)


class PromptTemplate(BaseModel):
    name: str
    version: str
    system: str
    user: str

    def render(self, **variables: object) -> list[dict[str, str]]:
        """Chat messages with every `$variable` filled; a missing variable is a KeyError."""
        values = {k: str(v) for k, v in variables.items()}
        return [
            {"role": "system", "content": Template(self.system).substitute(values)},
            {"role": "user", "content": Template(self.user).substitute(values)},
        ]


@cache
def load_prompt(name: str) -> PromptTemplate:
    text = resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name}.md needs exactly a '# system' and a '# user' section")
    system, version_text = sections["system"], text
    if system.startswith("@"):
        shared = load_prompt(system[1:].strip())
        system, version_text = shared.system, text + shared.version
    return PromptTemplate(
        name=name,
        version=hashlib.sha256(version_text.encode()).hexdigest()[:12],
        system=system,
        user=sections["user"],
    )


def available_prompts() -> list[str]:
    return sorted(p.name[:-3] for p in resources.files(__name__).iterdir() if p.name.endswith(".md"))
