"""Machine paths out of shared training data: a local source becomes `local://<index>/<path under its root>`.

The trajectory's header names each local index's root folders (`local_roots`); every string of an exported
sample has those roots, and the home folder, replaced: in the sample's values (`clean`) or in its JSON line
(`text`: json.dumps leaves `/` as it is, and a root is also matched in its JSON-escaped form). What is left
is what the data says, never where it lay on the machine that ran it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .schema import Trajectory


class PathScrubber:
    def __init__(self, local_roots: dict[str, list[str]], home: str | None = None):
        # One root: local://INDEX/relative; several: local://INDEX/<root folder's name>/relative (no collisions).
        pairs = [
            (root.rstrip("/"), f"local://{name}" + (f"/{os.path.basename(root.rstrip('/'))}" if len(roots) > 1 else ""))
            for name, roots in local_roots.items()
            for root in roots
            if root.strip("/")
        ]
        home = (home if home is not None else os.path.expanduser("~")).rstrip("/")
        if home:
            pairs.append((home, "~"))
        # A root as JSON writes it, once (in a record's line) or twice (in a tool result, itself a JSON string
        # inside the line): a quote or backslash in a folder name is escaped.
        pairs = list(dict((form, to) for root, to in pairs for form in _json_forms(root)).items())
        pairs.sort(key=lambda p: -len(p[0]))  # a root inside the home folder is replaced first
        self._swap = dict(pairs)
        # A root only where a path starts: not inside a longer name (/data vs /database), not inside a URL.
        self._pattern = (
            re.compile("|".join(rf"(?<![\w.:/-]){re.escape(root)}(?![\w.-])" for root, _ in pairs)) if pairs else None
        )

    @classmethod
    def for_run(cls, traj: Trajectory) -> PathScrubber:
        return cls(traj.local_roots)

    def text(self, value: str) -> str:
        if self._pattern is None or "/" not in value:
            return value
        return self._pattern.sub(lambda m: self._swap[m[0]], value)

    def clean(self, node: Any) -> Any:
        """`node` with every string scrubbed (dicts and lists rebuilt; other values as they are)."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, dict):
            return {k: self.clean(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.clean(v) for v in node]
        return node


def _json_forms(text: str, levels: int = 2) -> list[str]:
    forms = [text]
    for _ in range(levels):
        forms.append(json.dumps(forms[-1], ensure_ascii=False)[1:-1])
    return forms
