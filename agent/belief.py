"""Belief in a drafted answer, and information gain between research rounds.

Belief is the model's probability of its answer: the geometric-mean token probability of the answer
span (exp of the mean token logprob) where the backend returns logprobs, else the share of sampled
answers that agree with the most common one. Treating each belief as a distribution with mass `p` on
its answer and `1-p` on "something else", information gain is the total-variation distance between
consecutive rounds: |p - q| when the answer stayed the same, max(p, q) when it changed.

"unknown" is not an answer: its belief is 0 whatever the model's confidence in the word. Two answers
are the same answer when they normalise alike, one contains the other word for word ("Shirley Temple"
/ "Shirley Temple Black"), or their token F1 reaches SAME_ANSWER_F1.
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
UNKNOWN = {"unknown", "none", "n a", "not found", "no answer", "cannot tell", "not stated", "not known"}
SAME_ANSWER_F1 = 0.6


def normalise_answer(text: str) -> str:
    text = _NON_WORD.sub(" ", text.lower())
    words = [w for w in text.split() if w not in {"a", "an", "the"}]
    return " ".join(words)


def is_unknown(answer: str | None) -> bool:
    return not answer or normalise_answer(answer) in UNKNOWN | {""}


def token_f1(a: str, b: str) -> float:
    ta, tb = normalise_answer(a).split(), normalise_answer(b).split()
    common = sum((Counter(ta) & Counter(tb)).values())
    if not common:
        return 0.0
    precision, recall = common / len(ta), common / len(tb)
    return 2 * precision * recall / (precision + recall)


def _contains_words(longer: str, shorter: str) -> bool:
    return f" {shorter} " in f" {longer} "


def same_answer(a: str, b: str) -> bool:
    """Equivalent answers: equal once normalised, one inside the other word for word, or token F1 ≥ threshold."""
    if is_unknown(a) or is_unknown(b):
        return is_unknown(a) and is_unknown(b)
    na, nb = normalise_answer(a), normalise_answer(b)
    return na == nb or _contains_words(na, nb) or _contains_words(nb, na) or token_f1(na, nb) >= SAME_ANSWER_F1


class Belief(BaseModel):
    answer: str
    value: float  # probability-like, in [0, 1]
    method: Literal["logprobs", "agreement", "prior", "unknown"]
    mean_logprob: float | None = None
    entropy: float | None = None
    tokens: int = 0
    samples: list[str] = []


def span_tokens(response: LLMResponse, answer: str) -> list[TokenLogprob]:
    """The logprob tokens that cover `answer` inside the output (a JSON string value when guided)."""
    if not response.logprobs or not answer:
        return []
    text = "".join(t.token for t in response.logprobs)
    key = text.rfind('"answer"')
    start, needle = -1, ""
    for escaped in (False, True):  # a model writes "é" as such or, JSON-escaped, as "\u00e9"
        needle = json.dumps(answer, ensure_ascii=escaped)[1:-1]
        start = text.find(needle, key if key >= 0 else 0)
        if start < 0:
            start = text.rfind(needle)
        if start >= 0:
            break
    if start < 0:
        return []
    end = start + len(needle)
    covered, offset = [], 0
    for tok in response.logprobs:
        tok_start, offset = offset, offset + len(tok.token)
        if tok_start < end and offset > start:
            covered.append(tok)
    return covered


def no_belief(answer: str = "unknown", method: str = "prior") -> Belief:
    """Belief 0: before any search (the prior), or an answer that is "unknown"."""
    return Belief(answer=answer or "unknown", value=0.0, method=method)


def belief_from_logprobs(response: LLMResponse, answer: str) -> Belief | None:
    if is_unknown(answer):
        return no_belief(answer, "unknown")
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


def belief_from_samples(answers: list[str], answer: str | None = None) -> Belief:
    """Agreement of sampled answers: the share that are the same answer as `answer` (default: the largest
    group's); "unknown" is never an answer (belief 0)."""
    known = [a for a in answers if not is_unknown(a)]
    if answer is None and known:
        answer = max(([b for b in known if same_answer(a, b)] for a in known), key=len)[0]
    if answer is None or is_unknown(answer):
        return Belief(answer="unknown", value=0.0, method="agreement", samples=answers)
    agreeing = sum(same_answer(answer, a) for a in known)
    return Belief(answer=answer, value=agreeing / len(answers), method="agreement", samples=answers)


def information_gain(previous: Belief | None, current: Belief) -> float:
    """Total-variation distance between two rounds' beliefs (0 = nothing learned, 1 = everything changed)."""
    if previous is None:
        return current.value
    if same_answer(previous.answer, current.answer):
        return abs(current.value - previous.value)
    return max(previous.value, current.value)
