"""Answer scores against gold answers: SQuAD-style normalised exact match and token F1 (best over golds)."""

from __future__ import annotations

import re
import string
from collections import Counter

from .schema import Scores

_CITATION = re.compile(r"\[\d+\]")  # [n] markers are not part of the answer
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    text = _CITATION.sub(" ", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_answer(prediction: str, golds: list[str]) -> Scores:
    if not golds:
        return Scores()
    return Scores(
        em=max(exact_match(prediction, g) for g in golds),
        f1=round(max(token_f1(prediction, g) for g in golds), 4),
    )
