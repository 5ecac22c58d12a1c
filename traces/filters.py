"""Which runs an export keeps, decided on index summaries (no log is parsed for a run that is dropped).

Filters apply in a fixed order and each reports how many runs were left after it, so a user sees
where their data went. Train/validation membership depends only on the question, so reruns of the
same question never straddle the split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import BaseModel, Field

from .index import RunSummary
from .scoring import normalize_answer

FAILED_TERMINATIONS = ("error_", "cancelled")


class RunFilter(BaseModel):
    terminations: list[str] = Field(default_factory=list, description="keep only these terminations")
    correct_only: bool = False
    max_tool_calls: int | None = Field(None, ge=0)
    min_info_gain: float | None = None
    efficiency_quantile: float | None = Field(None, gt=0, le=1)
    dedupe: bool = False


class FilterCount(BaseModel):
    name: str
    kept: int
    note: str = ""


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def question_key(question: str) -> str:
    return normalize_answer(question)


def is_validation(question: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    digest = hashlib.sha256(question_key(question).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _efficient(runs: list[RunSummary], q: float) -> tuple[list[RunSummary], str]:
    correct = [r for r in runs if r.correct]
    if not correct:
        return runs, "no correct runs to set the bar; not applied"
    max_calls = quantile([r.tool_calls for r in correct], q)
    max_tokens = quantile([r.tokens for r in correct], q)
    kept = [r for r in runs if r.tool_calls <= max_calls and r.tokens <= max_tokens]
    return kept, f"tool calls <= {max_calls:g}, tokens <= {max_tokens:g}"


def _dedupe(runs: list[RunSummary]) -> list[RunSummary]:
    """One run per question: a correct one first, then the cheapest, then the newest."""
    best: dict[str, RunSummary] = {}
    for r in sorted(runs, key=lambda r: (not r.correct, r.tokens, -r.created.timestamp())):
        best.setdefault(question_key(r.question), r)
    return [r for r in runs if best[question_key(r.question)] is r]


def select_runs(runs: list[RunSummary], f: RunFilter) -> tuple[list[RunSummary], list[FilterCount]]:
    counts = [FilterCount(name="runs", kept=len(runs))]
    selected = [r for r in runs if r.status == "complete"]
    counts.append(FilterCount(name="finished", kept=len(selected), note="incomplete and damaged logs are skipped"))
    selected = [r for r in selected if r.answer and not r.termination.startswith(FAILED_TERMINATIONS)]
    counts.append(FilterCount(name="answered", kept=len(selected), note="runs that failed or gave no answer skipped"))

    def keep(name: str, predicate: Callable[[RunSummary], bool], note: str = "") -> None:
        nonlocal selected
        selected = [r for r in selected if predicate(r)]
        counts.append(FilterCount(name=name, kept=len(selected), note=note))

    if f.terminations:
        keep("termination", lambda r: r.termination in f.terminations, ", ".join(f.terminations))
    if f.correct_only:
        keep("correct_only", lambda r: r.correct is True, "gold match or judge verdict")
    if f.max_tool_calls is not None:
        keep("max_tool_calls", lambda r: r.tool_calls <= f.max_tool_calls, f"<= {f.max_tool_calls}")
    if f.min_info_gain is not None:
        keep("min_info_gain", lambda r: r.info_gain >= f.min_info_gain, f">= {f.min_info_gain:g}")
    if f.efficiency_quantile is not None:
        selected, note = _efficient(selected, f.efficiency_quantile)
        counts.append(FilterCount(name=f"efficiency_q{f.efficiency_quantile:g}", kept=len(selected), note=note))
    if f.dedupe:
        selected = _dedupe(selected)
        counts.append(FilterCount(name="dedupe", kept=len(selected), note="one run per question"))
    return selected, counts
