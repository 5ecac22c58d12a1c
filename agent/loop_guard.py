"""Near-duplicate query detection: a research loop that keeps asking the same thing is stopped."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_WORD = re.compile(r"\w+")


def normalise_query(query: str) -> str:
    return " ".join(_WORD.findall(query.lower()))


def similarity(a: str, b: str) -> float:
    """Max of token-set Jaccard and character ratio, on normalised text (word order and case ignored)."""
    na, nb = normalise_query(a), normalise_query(b)
    if not na or not nb:
        return 1.0 if na == nb else 0.0
    sa, sb = set(na.split()), set(nb.split())
    jaccard = len(sa & sb) / len(sa | sb)
    return max(jaccard, SequenceMatcher(None, na, nb).ratio())


def is_near_duplicate(query: str, previous: list[str], threshold: float) -> bool:
    return any(similarity(query, p) >= threshold for p in previous)


def fresh_queries(candidates: list[str], previous: list[str], threshold: float) -> list[str]:
    """The candidates that are neither near-duplicates of earlier queries nor of each other."""
    kept: list[str] = []
    for q in candidates:
        if q.strip() and not is_near_duplicate(q, previous + kept, threshold):
            kept.append(q.strip())
    return kept
