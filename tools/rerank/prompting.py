"""Shared by every scoring mode: passages as delimited data blocks, prompt rendering, and a tally of calls."""

from __future__ import annotations

import re
from collections.abc import Sequence

from deepsearch.agent.llm import ChatMessage, StructuredOutcome
from deepsearch.prompts import load_prompt

from .models import Candidate, Judgement, RerankUsage


def clip(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"


_SPACE = r"[\s\u200b-\u200d\u2060\ufeff]*"  # whitespace and the zero-width characters a model does not see
# `<passage`, `</PASSAGE`, `< / passage`, `＜/passage`… in any case and spacing: the `<` becomes `‹` (U+2039).
_DELIMITER = re.compile(rf"[<\uff1c\ufe64](?={_SPACE}/?{_SPACE}passage)", re.IGNORECASE)


def neutralise(text: str) -> str:
    """`text` that cannot open or close a passage block (and smuggle text outside it), however the tag is written."""
    return _DELIMITER.sub("‹", text)


def passage_block(alias: str | None, candidate: Candidate, chars: int, lexical: float | None = None) -> str:
    """One candidate as a delimited data block; `alias` is the short id the model answers with."""
    attrs = f' id="{alias}"' if alias else ""
    if lexical is not None:
        attrs += f' lexical="{lexical:.2f}"'
    title = f"Title: {neutralise(clip(candidate.title, 200))}\n" if candidate.title else ""
    return f"<passage{attrs}>\n{title}{neutralise(clip(candidate.text, chars))}\n</passage>"


def normalised_priors(candidates: Sequence[Candidate]) -> dict[str, float]:
    """Prior (fusion/BM25) scores scaled to 0-1 over the pool; all equal = 1.0 (no information)."""
    scores = [c.prior_score for c in candidates]
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    span = high - low
    return {c.id: (c.prior_score - low) / span if span > 0 else 1.0 for c in candidates}


def fill_unjudged(judged: dict[str, Judgement], candidates: Sequence[Candidate], priors: dict[str, float]) -> None:
    """Give candidates the model could not judge a neutral stand-in: the mean of the judged scores (ties then
    fall back to input order), or their scaled prior when nothing was judged (the pipeline then uses fusion)."""
    mean = sum(j.score for j in judged.values()) / len(judged) if judged else None
    for c in candidates:
        if c.id not in judged:
            score = priors[c.id] if mean is None else round(mean, 4)
            judged[c.id] = Judgement(score=score, rationale="not judged (no usable reply); a neutral score stands in")


def render(name: str, **variables: object) -> list[ChatMessage]:
    return [ChatMessage(**m) for m in load_prompt(name).render(**variables)]


class CallTally:
    """Usage and failure notes of every structured call one rerank makes (the client may be shared by
    concurrent sub-goals, so its own totals cannot be diffed)."""

    def __init__(self) -> None:
        self.usage = RerankUsage()
        self.notes: list[str] = []

    def add(self, label: str, outcome: StructuredOutcome) -> StructuredOutcome:
        for r in outcome.responses:
            self.usage.llm_calls += 1
            self.usage.prompt_tokens += r.usage.prompt_tokens
            self.usage.completion_tokens += r.usage.completion_tokens
            self.usage.llm_seconds += r.latency_s
        if outcome.status != "ok":
            detail = outcome.failures[-1].detail if outcome.failures else ""
            self.notes.append(f"{label}: {outcome.status}" + (f" ({detail[:160]})" if detail else ""))
        return outcome

    def note(self, text: str) -> None:
        self.notes.append(text)
