"""What a running question looks like so far, folded from the agent's progress events.

The run's event loop writes (`apply`), the terminal's refresh thread reads (`snapshot`): a lock keeps
each view consistent. Plain progress lines come from the same events (`describe`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..events import (
    BudgetEvent,
    EvidenceEvent,
    InformationEvent,
    NodeEvent,
    ProgressEvent,
    QueryEvent,
    SubGoalEvent,
    VerdictEvent,
)
from ..result import RunUsage

RECENT_QUERIES = 6
RECENT_VERDICTS = 5


def spent(usage: RunUsage) -> dict[str, float]:
    """A finished run's costs under the budget names."""
    return {"llm_calls": usage.llm_calls, "tokens": usage.prompt_tokens + usage.completion_tokens,
            "searches": usage.searches, "fetches": usage.fetches, "seconds": usage.seconds}  # fmt: skip


@dataclass
class SubGoalView:
    id: str
    question: str
    status: str = "planned"
    depends_on: list[str] = field(default_factory=list)
    answer: str | None = None
    stop_reason: str | None = None
    kept: int = 0
    dropped: int = 0


@dataclass
class RunSnapshot:
    node: str = "starting"
    elapsed_s: float = 0.0
    finished: bool = False
    subgoals: list[SubGoalView] = field(default_factory=list)
    queries: list[QueryEvent] = field(default_factory=list)
    verdicts: list[VerdictEvent] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    budget: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.subgoals)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.subgoals)


class RunView:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._node = "starting"
        self._started = time.monotonic()
        self._stopped: float | None = None
        self._subgoals: dict[str, SubGoalView] = {}
        self._queries: deque[QueryEvent] = deque(maxlen=RECENT_QUERIES)
        self._verdicts: deque[VerdictEvent] = deque(maxlen=RECENT_VERDICTS)
        self._gains: list[float] = []
        self._budget: dict[str, float] = {}

    def apply(self, event: ProgressEvent) -> None:
        with self._lock:
            if isinstance(event, NodeEvent):
                if event.phase == "started" and not self._node.startswith("cancelling"):
                    self._node = event.node
            elif isinstance(event, SubGoalEvent):
                sg = self._subgoals.setdefault(event.subgoal_id, SubGoalView(event.subgoal_id, event.question))
                sg.status, sg.question = event.status, event.question
                if event.status in ("planned", "changed"):
                    sg.depends_on = list(event.depends_on)
                if event.status == "done":
                    sg.answer, sg.stop_reason = event.answer, event.stop_reason
            elif isinstance(event, QueryEvent):
                self._queries.append(event)
            elif isinstance(event, EvidenceEvent):
                sg = self._subgoals.setdefault(event.subgoal_id, SubGoalView(event.subgoal_id, event.subgoal_id))
                sg.kept += len(event.kept)
                sg.dropped += event.dropped
            elif isinstance(event, VerdictEvent):
                self._verdicts.append(event)
            elif isinstance(event, InformationEvent):
                self._gains.append(event.gain)
            elif isinstance(event, BudgetEvent):
                self._budget = dict(event.used)

    def cancelling(self) -> None:
        with self._lock:
            self._node = "cancelling…"

    def finish(self, status: str, usage: RunUsage | None) -> None:
        """Freeze the view at the end: the status replaces the node, the run's final costs fill the budget."""
        with self._lock:
            self._node = status
            self._stopped = time.monotonic()
            if usage is not None:
                self._budget |= spent(usage)

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            return RunSnapshot(
                node=self._node,
                elapsed_s=(self._stopped or time.monotonic()) - self._started,
                finished=self._stopped is not None,
                subgoals=[SubGoalView(**vars(s)) for s in self._subgoals.values()],
                queries=list(self._queries),
                verdicts=list(self._verdicts),
                gains=list(self._gains),
                budget=dict(self._budget),
            )


def describe(event: ProgressEvent) -> str | None:
    """One plain line per event worth a line (NO_COLOR or not a terminal); None for the rest."""
    t = f"{event.at_s:6.1f}s"
    if isinstance(event, NodeEvent):
        return f"{t} {event.node}" if event.phase == "started" else None
    if isinstance(event, SubGoalEvent):
        deps = f" (after {', '.join(event.depends_on)})" if event.depends_on else ""
        done = f" -> {event.answer} [{event.stop_reason}]" if event.status == "done" else ""
        return f"{t}   {event.subgoal_id} {event.status}: {event.question}{deps}{done}"
    if isinstance(event, QueryEvent):
        failed = "" if event.status == "ok" else f" [{event.status}]"
        return f"{t}     {event.source} search: {event.query} ({event.hits} hits){failed}"
    if isinstance(event, EvidenceEvent):
        return f"{t}     {event.subgoal_id} evidence: kept {len(event.kept)}, dropped {event.dropped}"
    if isinstance(event, VerdictEvent):
        why = f" ({event.rationale})" if event.rationale else ""
        return f"{t}   judge {event.target}: {event.decision}{why}"
    if isinstance(event, InformationEvent):
        return f"{t}     {event.subgoal_id} round {event.round}: belief {event.belief:.2f}, gain {event.gain:+.2f}"
    if isinstance(event, BudgetEvent):
        used = ", ".join(f"{k} {v:g}/{event.used[f'max_{k}']:g}" for k, v in event.used.items()
                         if not k.startswith("max_") and f"max_{k}" in event.used)  # fmt: skip
        return f"{t}   budget: {used}"
    return None
