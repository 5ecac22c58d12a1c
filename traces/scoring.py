"""Answer scores against gold answers: SQuAD-style normalised exact match and token F1 (best over golds).

An abstention (termination `abstained`, or no short answer) scores 0: its explanatory text ("I could not
find evidence … What I found: …") is not an answer, and scoring it would earn F1 for restating the question.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import Any

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


def is_abstention(termination: str | None, short_answer: str | None) -> bool:
    """No answer was given: the run abstained, or it left the short answer (what is scored) empty."""
    return termination == "abstained" or (short_answer is not None and not short_answer.strip())


def row_abstained(row: Mapping[str, Any]) -> bool:
    """A batch/eval row (dict) that abstained. Failed rows (`error`) are failures, not abstentions; rows
    without a `short_answer` field (older files) are judged by their termination alone."""
    return not row.get("error") and is_abstention(row.get("termination"), row.get("short_answer"))


def score_result(short_answer: str, termination: str, golds: list[str]) -> Scores:
    """Scores of a finished run: 0 EM / 0 F1 for an abstention, else the short answer against the golds."""
    if golds and is_abstention(termination, short_answer):
        return Scores(em=0.0, f1=0.0)
    return score_answer(short_answer, golds)
