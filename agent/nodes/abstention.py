"""What an honest abstention shows: the best passages kept, each with the sentence that matters most."""

from __future__ import annotations

import re

from pydantic import BaseModel

from ..state import ResearchState

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")
_STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "and", "or", "is", "was", "were", "who", "what", "which",
         "when", "where", "how", "did", "does", "do", "by", "for", "with", "that", "this", "from", "as"}  # fmt: skip


class ShownPassage(BaseModel):
    title: str
    source: str
    sentence: str


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def key_sentence(text: str, wanted: set[str], max_chars: int = 300) -> str:
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()] or [text.strip()]
    best = max(sentences, key=lambda s: len(_words(s) & wanted))
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


def best_passages(state: ResearchState, limit: int = 3) -> list[ShownPassage]:
    """The highest-scoring unflagged passages the sub-goals kept, one line each."""
    evidence = [e for e in (state.get("evidence") or {}).values() if not e.injection_flagged]
    questions = [state.get("standalone_question") or state.get("question") or ""]
    questions += [r.question for r in (state.get("results") or {}).values()]
    wanted = set().union(*(_words(q) for q in questions))
    best = sorted(evidence, key=lambda e: -e.score)[:limit]
    return [ShownPassage(title=e.title, source=e.source, sentence=key_sentence(e.text, wanted)) for e in best]
