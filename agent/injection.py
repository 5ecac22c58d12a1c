"""A cheap detector for instructions hidden in retrieved text (prompt injection), beside the judge's own flag."""

from __future__ import annotations

import re

_PATTERNS = [
    r"\bignore (all |any |the |your )?(previous |prior |above |earlier )?(instructions|prompts?|rules)\b",
    r"\bdisregard (all |any |the |your )?(previous |prior |above )?(instructions|prompts?|rules)\b",
    r"\b(new|updated|override) (system )?instructions?\s*:",
    r"\byou (must|should|have to) (now )?(answer|reply|respond|say|output)\b",
    r"\b(answer|reply|respond) (only )?with\b.{0,40}\bregardless\b",
    r"\b(call|use|invoke) (the )?(fetch|fetch_page|web_search|search|tool)\b",
    r"\b(visit|fetch|open|browse to) (the )?(url|link|page)? ?https?://",
    r"\bsystem prompt\b",
    r"\bas an ai (language )?model\b",
    r"<\s*/?\s*(system|instructions?)\s*>",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)


def find_injection(text: str) -> str | None:
    """The first instruction-like phrase in `text`, or None."""
    match = _INJECTION.search(text)
    return match.group(0) if match else None
