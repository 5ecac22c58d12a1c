"""The batch summary: accuracy, cost per question, latency percentiles and the termination mix."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from rich.table import Table

from ...traces.scoring import row_abstained


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class BatchSummary(BaseModel):
    questions: int
    errors: int
    scored: int = Field(description="questions with gold answers and no error")
    em: float | None = None
    f1: float | None = None
    judged: int = 0
    judge_accuracy: float | None = None
    abstained: int = Field(0, description="questions with no answer (termination abstained, or no short answer)")
    abstention_rate: float = Field(0.0, description="abstained / questions")
    llm_calls: float = Field(0.0, description="mean per question")
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    searches: float = 0.0
    fetches: float = 0.0
    seconds_p50: float = 0.0
    seconds_p95: float = 0.0
    terminations: dict[str, int] = Field(default_factory=dict)
    snapshot: str | None = Field(None, description="the web snapshot the batch ran on (replayed) or recorded")


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def row_scores(row: dict[str, Any]) -> dict[str, Any]:
    """A row's scores as the summary counts them: an abstention is wrong (0 EM, 0 F1, judged incorrect)
    whatever its stored scores say (rows scored its explanatory text before this rule, and may still)."""
    scores = dict(row.get("scores") or {})
    if row_abstained(row):
        scores |= {"em": 0.0, "f1": 0.0}
        if scores.get("judge"):
            scores["judge"] = "incorrect"
    return scores


def summarise(rows: Sequence[dict[str, Any]]) -> BatchSummary:
    """Rows as written to the output file (dicts), so a resumed batch summarises earlier rows too.
    Failed questions and abstentions count in the accuracy figures as wrong (0), never silently dropped."""
    n = len(rows)
    gold_rows = [r for r in rows if r.get("gold")]
    scores = [row_scores(r) for r in gold_rows]
    em = [float(s.get("em") or 0.0) for s in scores]
    f1 = [float(s.get("f1") or 0.0) for s in scores]
    verdicts = [s.get("judge") for s in scores]
    graded = [v for v in verdicts if v is not None]
    usage = [r.get("usage") or {} for r in rows]

    def mean_usage(key: str) -> float:
        return round(statistics.fmean(float(u.get(key, 0)) for u in usage), 2) if usage else 0.0

    seconds = [float(u.get("seconds", 0.0)) for u in usage]
    abstained = sum(row_abstained(r) for r in rows)
    return BatchSummary(
        questions=n,
        errors=sum(1 for r in rows if r.get("error")),
        scored=len(gold_rows),
        em=_mean(em),
        f1=_mean(f1),
        judged=len(graded),
        judge_accuracy=_mean([float(v == "correct") for v in graded]),
        abstained=abstained,
        abstention_rate=round(abstained / n, 4) if n else 0.0,
        llm_calls=mean_usage("llm_calls"),
        prompt_tokens=mean_usage("prompt_tokens"),
        completion_tokens=mean_usage("completion_tokens"),
        searches=mean_usage("searches"),
        fetches=mean_usage("fetches"),
        seconds_p50=round(percentile(seconds, 0.5), 3),
        seconds_p95=round(percentile(seconds, 0.95), 3),
        terminations=dict(Counter(str(r.get("termination")) for r in rows).most_common()),
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def abstained_cell(s: BatchSummary) -> str:
    """e.g. "2 (100.0%)": the count and the share, apart from the accuracy they count 0 in."""
    return f"{s.abstained} ({_pct(s.abstention_rate)})"


def summary_table(s: BatchSummary, title: str = "batch summary") -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    table.add_row("questions", f"{s.questions} ({s.errors} failed)")
    if s.scored:
        table.add_row("exact match", _pct(s.em))
        table.add_row("F1", _pct(s.f1))
        table.add_row(
            "LLM-judge accuracy", f"{_pct(s.judge_accuracy)} of {s.judged} graded" if s.judged else "– (--judge)"
        )
    table.add_row("abstained", abstained_cell(s))
    table.add_row("LLM calls / question", f"{s.llm_calls:.1f}")
    table.add_row("tokens / question", f"{s.prompt_tokens:.0f} prompt + {s.completion_tokens:.0f} completion")
    table.add_row("searches / question", f"{s.searches:.1f} ({s.fetches:.1f} fetches)")
    table.add_row("seconds p50 / p95", f"{s.seconds_p50:.2f} / {s.seconds_p95:.2f}")
    table.add_row("terminations", ", ".join(f"{k} {v}" for k, v in s.terminations.items()) or "–")
    if s.snapshot:
        table.add_row("web snapshot", s.snapshot)
    return table
