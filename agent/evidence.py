"""Evidence in prompts: numbered, delimited data blocks within a token budget."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .state import Evidence
from .tokens import count_tokens, truncate_to_tokens

PASSAGE_TOKENS = 400  # one passage never takes more than this, so several always fit


def evidence_id(source: str, text: str) -> str:
    return "ev-" + hashlib.sha1(f"{source}\n{text}".encode()).hexdigest()[:12]


def _attr(value: str) -> str:
    return value.replace('"', "'").replace("\n", " ")[:200]


def _block(n: int, ev: Evidence, text: str) -> str:
    # A passage must not be able to close its own block and talk outside it, however the tag is cased or spaced.
    import re

    space = r"[\s\u200b-\u200d\u2060\ufeff]*"  # and the zero-width characters a model does not see
    safe = re.sub(rf"(?i)[<\uff1c\ufe64](?={space}/?{space}evidence)", "‹", text)
    return f'<evidence id="{n}" title="{_attr(ev.title)}" source="{_attr(ev.source)}">\n{safe}\n</evidence>'


def format_evidence(items: Sequence[Evidence], max_tokens: int | None = None) -> tuple[str, list[Evidence]]:
    """Blocks numbered 1..n in the given order, skipping any that would overrun `max_tokens` (None: all of
    them, already chosen by agent/evidence_choice.py); returns (text, items shown)."""
    blocks, shown, used = [], [], 0
    for ev in items:
        text = truncate_to_tokens(ev.text, PASSAGE_TOKENS)
        block = _block(len(shown) + 1, ev, text)
        cost = count_tokens(block)
        if shown and max_tokens is not None and used + cost > max_tokens:
            continue
        blocks.append(block)
        shown.append(ev)
        used += cost
    return ("\n\n".join(blocks) if blocks else "(no evidence yet)"), shown
