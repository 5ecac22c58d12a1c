"""Eval figures beyond the batch summary: cited-evidence recall/precision against the gold supporting
passages, accuracy by number of hops, information gain per round (from the trajectories), calls per question.
Abstentions score 0 here as in the summary (`row_scores`), and are counted apart (`abstained`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ...traces.reader import read_log
from ...traces.recorder import RUNS_DIR
from ...traces.schema import InformationStep
from ...traces.scoring import row_abstained
from ..batch.metrics import BatchSummary, row_scores, summarise
from .pool import passage_of_source


class HopAccuracy(BaseModel):
    hops: str
    questions: int
    em: float
    f1: float
    abstained: int = 0


class RoundGain(BaseModel):
    round: int
    mean_gain: float
    samples: int = Field(description="(run, sub-goal) pairs that reached this round")


class ModeReport(BaseModel):
    mode: str
    summary: BatchSummary
    evidence_recall: float | None = Field(
        None, description="share of gold supporting passages cited, mean per question"
    )
    evidence_precision: float | None = Field(None, description="share of cited passages that are gold, mean")
    evidence_questions: int = 0
    by_hops: list[HopAccuracy] = Field(default_factory=list)
    gain_by_round: list[RoundGain] = Field(default_factory=list)
    llm_calls: list[int] = Field(default_factory=list, description="per question, for the distribution plot")


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def evidence_scores(rows: list[dict[str, Any]]) -> tuple[float | None, float | None, int]:
    """Mean recall and precision of cited passages over questions with gold passages (failed ones count 0)."""
    recalls, precisions = [], []
    for r in rows:
        gold = set((r.get("meta") or {}).get("gold_passages") or [])
        if not gold:
            continue
        cited = {p for c in r.get("citations") or [] if (p := passage_of_source(c.get("source", "")))}
        recalls.append(len(cited & gold) / len(gold))
        if cited:
            precisions.append(len(cited & gold) / len(cited))
    return _mean(recalls), _mean(precisions), len(recalls)


def accuracy_by_hops(rows: list[dict[str, Any]]) -> list[HopAccuracy]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("gold"):
            hops = (r.get("meta") or {}).get("hops")
            groups[str(hops) if hops else "?"].append(r)
    out = []
    for hops, group in sorted(groups.items(), key=lambda kv: (kv[0] == "?", kv[0])):
        scores = [row_scores(r) for r in group]
        out.append(HopAccuracy(hops=hops, questions=len(group), em=_mean([s.get("em") or 0.0 for s in scores]) or 0.0,
                               f1=_mean([s.get("f1") or 0.0 for s in scores]) or 0.0,
                               abstained=sum(row_abstained(r) for r in group)))  # fmt: skip
    return out


def gain_by_round(rows: list[dict[str, Any]], traces_dir: Path) -> list[RoundGain]:
    """Mean information gain at each research round, over every sub-goal of every recorded run."""
    gains: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        path = traces_dir / RUNS_DIR / f"{r.get('trace_id')}.jsonl"
        if not r.get("trace_id") or not path.is_file():
            continue
        trajectory, _ = read_log(path)
        for step in trajectory.steps if trajectory else []:
            if isinstance(step, InformationStep) and step.round is not None:
                gains[step.round].append(step.gain)
    return [
        RoundGain(round=k, mean_gain=round(statistics.fmean(v), 4), samples=len(v)) for k, v in sorted(gains.items())
    ]


def mode_report(mode: str, rows: list[dict[str, Any]], traces_dir: Path) -> ModeReport:
    recall, precision, n = evidence_scores(rows)
    return ModeReport(
        mode=mode,
        summary=summarise(rows),
        evidence_recall=recall,
        evidence_precision=precision,
        evidence_questions=n,
        by_hops=accuracy_by_hops(rows),
        gain_by_round=gain_by_round(rows, traces_dir) if mode == "research" else [],
        llm_calls=[int((r.get("usage") or {}).get("llm_calls", 0)) for r in rows],
    )
