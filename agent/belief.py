"""Belief in a drafted answer, and information gain between research rounds.

Belief is the model's probability of its answer: the geometric-mean token probability of the answer
span (exp of the mean token logprob) where the backend returns logprobs, else the share of sampled
answers that agree with the most common one. Treating each belief as a distribution with mass `p` on
its answer and `1-p` on "something else", information gain is the total-variation distance between
consecutive rounds: |p - q| when the answer stayed the same, max(p, q) when it changed.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Literal

from pydantic import BaseModel

from .llm.types import LLMResponse, TokenLogprob, _entropy

_NON_WORD = re.compile(r"[^\w\s]")


def normalise_answer(text: str) -> str:
    text = _NON_WORD.sub(" ", text.lower())
    words = [w for w in text.split() if w not in {"a", "an", "the"}]
    return " ".join(words)


class Belief(BaseModel):
    answer: str
    value: float  # probability-like, in [0, 1]
    method: Literal["logprobs", "agreement", "prior"]
    mean_logprob: float | None = None
    entropy: float | None = None
    tokens: int = 0
    samples: list[str] = []


def span_tokens(response: LLMResponse, answer: str) -> list[TokenLogprob]:
    """The logprob tokens that cover `answer` inside the output (a JSON string value when guided)."""
    if not response.logprobs or not answer:
        return []
    text = "".join(t.token for t in response.logprobs)
    needle = json.dumps(answer, ensure_ascii=False)[1:-1]
    key = text.rfind('"answer"')
    start = text.find(needle, key if key >= 0 else 0)
    if start < 0:
        start = text.rfind(needle)
    if start < 0:
        return []
    end = start + len(needle)
    covered, offset = [], 0
    for tok in response.logprobs:
        tok_start, offset = offset, offset + len(tok.token)
        if tok_start < end and offset > start:
            covered.append(tok)
    return covered


def belief_from_logprobs(response: LLMResponse, answer: str) -> Belief | None:
    tokens = span_tokens(response, answer)
    if not tokens:
        return None
    mean_lp = sum(t.logprob for t in tokens) / len(tokens)
    entropies = [_entropy(t.top) for t in tokens if t.top]
    return Belief(
        answer=answer,
        value=math.exp(mean_lp),
        method="logprobs",
        mean_logprob=mean_lp,
        entropy=sum(entropies) / len(entropies) if entropies else None,
        tokens=len(tokens),
    )


def belief_from_samples(answers: list[str]) -> Belief:
    normalised = [normalise_answer(a) for a in answers if a.strip()]
    if not normalised:
        return Belief(answer="", value=0.0, method="agreement", samples=answers)
    top, count = Counter(normalised).most_common(1)[0]
    answer = next(a for a in answers if normalise_answer(a) == top)
    return Belief(answer=answer, value=count / len(answers), method="agreement", samples=answers)


def information_gain(previous: Belief | None, current: Belief) -> float:
    """Total-variation distance between two rounds' beliefs (0 = nothing learned, 1 = everything changed)."""
    if previous is None:
        return current.value
    if normalise_answer(previous.answer) == normalise_answer(current.answer):
        return abs(current.value - previous.value)
    return max(previous.value, current.value)
