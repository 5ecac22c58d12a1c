"""`traces diff A B`: how two runs differ — their tool calls and results first, then their answers.

Searches are compared round by round (sub-goal, round), page fetches as one group per run; inside a group,
calls made in parallel may be recorded in either order, so they are compared sorted by tool and arguments.
Results are compared as recorded (titles, URLs, snippets, scores, page texts by content hash), so two runs
replayed on the same snapshot that searched the same way show no difference at all.
"""

from __future__ import annotations

import json
from itertools import zip_longest
from typing import Any

from pydantic import BaseModel, Field

from .schema import ToolCallStep, Trajectory


class RunDiff(BaseModel):
    a: str
    b: str
    tool_calls: tuple[int, int] = Field(description="tool calls in A and in B")
    calls: list[str] = Field(default_factory=list, description="tool calls that differ (tool or arguments)")
    results: list[str] = Field(default_factory=list, description="same call, different results")
    answers: list[str] = Field(default_factory=list, description="answer, short answer, citations, termination")

    @property
    def same(self) -> bool:
        return not (self.calls or self.results or self.answers)


def _call(step: ToolCallStep) -> str:
    return f"{step.tool} {json.dumps(step.arguments, sort_keys=True, ensure_ascii=False)}"


def _outcome(step: ToolCallStep) -> Any:
    return {"success": step.success, "error": step.error, "results": [r.model_dump() for r in step.results]}


def _by_round(traj: Trajectory) -> list[list[ToolCallStep]]:
    """Searches round by round, then the run's page fetches as one group: a page is fetched once per run and
    recorded under whichever sub-goal asked first, which parallel sub-goals decide by timing."""
    rounds: dict[tuple[str | None, int | None], list[ToolCallStep]] = {}
    fetches = []
    for step in traj.tool_calls():
        if step.tool == "fetch_page":
            fetches.append(step)
        else:
            rounds.setdefault((step.subgoal, step.round), []).append(step)
    # Rounds by (sub-goal, round), not by when they began: parallel sub-goals start in either order.
    ordered = [rounds[k] for k in sorted(rounds, key=lambda k: (k[0] or "", k[1] or 0))]
    return [sorted(calls, key=_call) for calls in [*ordered, fetches] if calls]


def _what_differs(x: Any, y: Any) -> str:
    xs, ys = x["results"], y["results"]
    if x["success"] != y["success"] or x["error"] != y["error"]:
        return f"outcome {x['error'] or 'ok'} vs {y['error'] or 'ok'}"
    if len(xs) != len(ys):
        return f"{len(xs)} vs {len(ys)} results"
    first = next(i for i, (p, q) in enumerate(zip(xs, ys, strict=True)) if p != q)
    fields = sorted(k for k in xs[first] if xs[first][k] != ys[first].get(k))
    return f"result {first + 1} differs in {', '.join(fields)}"


def diff_runs(a: Trajectory, b: Trajectory) -> RunDiff:
    out = RunDiff(a=a.id, b=b.id, tool_calls=(len(a.tool_calls()), len(b.tool_calls())))
    for r, (round_a, round_b) in enumerate(zip_longest(_by_round(a), _by_round(b), fillvalue=[]), 1):
        for x, y in zip_longest(round_a, round_b):
            if x is None or y is None or _call(x) != _call(y):
                out.calls.append(f"round {r}: A {_call(x) if x else '-'} | B {_call(y) if y else '-'}")
            elif _outcome(x) != _outcome(y):
                out.results.append(f"round {r}: {_call(x)}: {_what_differs(_outcome(x), _outcome(y))}")
    fa, fb = a.final, b.final
    for name, va, vb in (
        ("answer", fa and fa.answer, fb and fb.answer),
        ("termination", fa and fa.termination, fb and fb.termination),
        ("citations", fa and [c.source for c in fa.citations], fb and [c.source for c in fb.citations]),
    ):
        if va != vb:
            out.answers.append(f"{name}: A {va!r} | B {vb!r}")
    return out
