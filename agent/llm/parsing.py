"""Tolerant reading of model output: think blocks out, the JSON object found, small damage repaired."""

from __future__ import annotations

import json
import re
from typing import Any

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)


def split_think(text: str) -> tuple[str, str | None]:
    """Return (content without reasoning, reasoning or None).

    Handles closed `<think>…</think>` blocks, a bare `…</think>` (templates that open the block in the
    prompt) and an unclosed `<think>…` (output cut off while still reasoning).
    """
    reasoning: list[str] = [m.strip() for m in _THINK.findall(text)]
    content = _THINK.sub("", text)
    lower = content.lower()
    if "</think>" in lower:
        cut = lower.rindex("</think>")
        reasoning.insert(0, content[:cut].strip())
        content = content[cut + len("</think>") :]
    elif "<think>" in lower:
        cut = lower.index("<think>")
        reasoning.append(content[cut + len("<think>") :].strip())
        content = content[:cut]
    joined = "\n\n".join(r for r in reasoning if r)
    return content.strip(), joined or None


def extract_json_object(text: str) -> str | None:
    """The first balanced top-level `{…}` in text (string-aware), or the unbalanced tail from `{`."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]


class JSONParseError(ValueError):
    pass


def parse_json_lenient(text: str) -> tuple[Any, bool]:
    """Parse the JSON object in `text`. Returns (value, repaired). Raises JSONParseError."""
    content, _ = split_think(text)
    candidate = extract_json_object(content)
    if candidate is None:
        raise JSONParseError("no JSON object in the output")
    try:
        return json.loads(candidate), False
    except json.JSONDecodeError:
        pass
    import json_repair  # only on the slow path

    repaired = json_repair.loads(candidate)
    if not isinstance(repaired, dict) or (not repaired and candidate.strip() not in ("{}", "")):
        raise JSONParseError(f"unrepairable JSON: {candidate[:120]!r}")
    return repaired, True
