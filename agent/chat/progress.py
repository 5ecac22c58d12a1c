"""What a running question looks like so far, folded from the agent's progress events.

The run's event loop writes (`apply`), the terminal's refresh thread reads (`snapshot`): a lock keeps
each view consistent. The activity it names is the newest node or research step ("g1 · round 2 · rerank
window 2/3"). Budgets take each BudgetEvent and, between them, count searches from the QueryEvents (one
per search counted) and seconds from the clock, so the bars move while a round runs.
Plain lines come from the same events: `describe` (chat without a terminal), `ProgressLines` (ask).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..events import (
    BudgetEvent,
    EvidenceEvent,
    InformationEvent,
    NodeEvent,
    ProgressEvent,
    QueryEvent,
    StepEvent,
    SubGoalEvent,
    VerdictEvent,
)
from ..result import RunUsage

RECENT_QUERIES = 6
RECENT_VERDICTS = 5
# The research round's own steps (StepEvent.step starts with one: "search (3 queries)"); any other step is
# a part of one, e.g. "rerank window 2/3" inside select.
ROUND_STEPS = ("queries", "search", "select", "judge", "route", "finish")
QUIET_STEPS = ("route", "finish")  # bookkeeping between rounds: their outcome shows in the next line


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
    step: str | None = None  # while running: "round 2 · rerank window 2/3"


def step_label(subgoal_id: str | None, round_: int | None, step: str) -> str:
    """Where a research step is: "g1 · round 2 · rerank window 2/3" (parts that are unknown left out)."""
    return " · ".join([*([subgoal_id] if subgoal_id else []), *([f"round {round_}"] if round_ else []), step])


@dataclass
class RunSnapshot:
    node: str = "starting"
    activity: str = "starting"  # what the footer names: the newest node or research step
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
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._node = "starting"
        self._started = clock()
        self._stopped: float | None = None
        self._subgoals: dict[str, SubGoalView] = {}
        self._queries: deque[QueryEvent] = deque(maxlen=RECENT_QUERIES)
        self._verdicts: deque[VerdictEvent] = deque(maxlen=RECENT_VERDICTS)
        self._gains: list[float] = []
        self._budget: dict[str, float] = {}
        self._searches = 0  # QueryEvents seen: a floor for the searches used between BudgetEvents
        # Order of arrival decides what the footer names: the node, or a sub-goal's step if newer.
        self._seq = self._node_seq = 0
        self._steps: dict[str | None, tuple[int, StepEvent]] = {}

    def apply(self, event: ProgressEvent) -> None:
        with self._lock:
            self._seq += 1
            if isinstance(event, NodeEvent):
                if event.phase == "started" and not self._node.startswith("cancelling"):
                    self._node, self._node_seq = event.node, self._seq
            elif isinstance(event, StepEvent):
                self._steps[event.subgoal_id] = (self._seq, event)
            elif isinstance(event, SubGoalEvent):
                sg = self._subgoals.setdefault(event.subgoal_id, SubGoalView(event.subgoal_id, event.question))
                sg.status, sg.question = event.status, event.question
                if event.status in ("planned", "changed"):
                    sg.depends_on = list(event.depends_on)
                if event.status == "done":
                    sg.answer, sg.stop_reason = event.answer, event.stop_reason
                if event.status in ("done", "dropped"):
                    self._steps.pop(event.subgoal_id, None)
            elif isinstance(event, QueryEvent):
                self._queries.append(event)
                self._searches += 1
            elif isinstance(event, EvidenceEvent):
                sg = self._subgoals.setdefault(event.subgoal_id, SubGoalView(event.subgoal_id, event.subgoal_id))
                sg.kept += len(event.kept)
                sg.dropped += event.dropped
            elif isinstance(event, VerdictEvent):
                self._verdicts.append(event)
            elif isinstance(event, InformationEvent):
                self._gains.append(event.gain)
            elif isinstance(event, BudgetEvent):
                self._budget |= event.used

    def cancelling(self) -> None:
        with self._lock:
            self._node = "cancelling…"

    def finish(self, status: str, usage: RunUsage | None) -> None:
        """Freeze the view at the end: the status replaces the node, the run's final costs fill the budget."""
        with self._lock:
            self._node = status
            self._stopped = self._clock()
            if usage is not None:
                self._budget |= spent(usage)

    def _activity(self) -> str:
        newest = max(self._steps.values(), default=None, key=lambda entry: entry[0])
        if self._stopped is not None or self._node.startswith("cancelling") or newest is None:
            return self._node
        seq, step = newest
        return step_label(step.subgoal_id, step.round, step.step) if seq > self._node_seq else self._node

    def _live_budget(self, elapsed: float) -> dict[str, float]:
        """The last BudgetEvent's figures, with searches and seconds brought up to now while running."""
        budget = dict(self._budget)
        if budget and self._stopped is None:
            budget["searches"] = max(budget.get("searches", 0), self._searches)
            budget["seconds"] = max(budget.get("seconds", 0.0), elapsed)
        return budget

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            elapsed = (self._stopped or self._clock()) - self._started
            subgoals = [SubGoalView(**vars(s)) for s in self._subgoals.values()]
            for sg in subgoals:
                if (entry := self._steps.get(sg.id)) is not None:
                    sg.step = step_label(None, entry[1].round, entry[1].step)
            return RunSnapshot(
                node=self._node,
                activity=self._activity(),
                elapsed_s=elapsed,
                finished=self._stopped is not None,
                subgoals=subgoals,
                queries=list(self._queries),
                verdicts=list(self._verdicts),
                gains=list(self._gains),
                budget=self._live_budget(elapsed),
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
    if isinstance(event, StepEvent):
        quiet = _step_name(event.step) in QUIET_STEPS
        return None if quiet else f"{t}     {step_label(event.subgoal_id, event.round, event.step)}"
    if isinstance(event, BudgetEvent):
        used = ", ".join(f"{k} {v:g}/{event.used[f'max_{k}']:g}" for k, v in event.used.items()
                         if not k.startswith("max_") and f"max_{k}" in event.used)  # fmt: skip
        return f"{t}   budget: {used}"
    return None


def _step_name(step: str) -> str:
    return step.split(maxsplit=1)[0] if step.strip() else ""


def is_round_step(step: str) -> bool:
    """A research round's own step ("search (3 queries)"), not a part of one ("rerank window 2/3")."""
    return _step_name(step) in ROUND_STEPS


class ProgressLines:
    """Plain progress for `deepsearch ask` without a terminal: one line per node and per research round step.

    Most events print at once. Four wait for the event that says how they went: plan (its sub-goal count, at
    its end), reflect (its changes), select (kept/dropped, at the EvidenceEvent), judge (the decision with
    belief and gain, at the InformationEvent) and verify (its verdict). Steps within a step ("rerank window
    2/3", "evidence 1/4") print as they start, so a long rerank still shows progress. `close` prints whatever
    still waits (a step a failure cut short).
    """

    def __init__(self, write: Callable[[str], None]):
        self._write = write
        self._open: dict[str, dict[str, int]] = {}  # plan / reflect / verify while their line waits
        self._round: dict[str | None, int | None] = {}
        self._select: dict[str | None, int | None] = {}  # sub-goal -> round of a select awaiting its evidence
        self._judge: dict[str | None, dict] = {}  # sub-goal -> round, decision, belief, gain so far
        self._searching: set[str | None] = set()  # sub-goals whose current step is a search

    def _emit(self, at_s: float, text: str) -> None:
        self._write(f"[{at_s:.1f}s] {text}")

    def _where(self, sg: str | None, round_: int | None) -> str:
        return " ".join([*([sg] if sg else []), *([f"round {round_}"] if round_ else [])])

    def _say(self, at_s: float, sg: str | None, round_: int | None, text: str) -> None:
        where = self._where(sg, round_)
        self._emit(at_s, f"{where}: {text}" if where else text)

    def _flush_judge(self, sg: str | None, at_s: float) -> None:
        j = self._judge.pop(sg, None)
        if j is None:
            return
        text = "judge" + (f" → {j['decision']}" if j.get("decision") else "")
        if "belief" in j:
            text += f" (belief {j['belief']:.2f}, gain {j['gain']:+.2f})"
        self._say(at_s, sg, j["round"], text)

    def _flush(self, sg: str | None, at_s: float) -> None:
        """A new round step, or the sub-goal's end: what still waits for this sub-goal prints as it stands."""
        if sg in self._select:
            self._say(at_s, sg, self._select.pop(sg), "select")
        self._flush_judge(sg, at_s)
        self._searching.discard(sg)

    def feed(self, event: ProgressEvent) -> None:
        t = event.at_s
        if isinstance(event, NodeEvent):
            self._node(event)
        elif isinstance(event, SubGoalEvent):
            self._subgoal(event)
        elif isinstance(event, StepEvent):
            sg, name = event.subgoal_id, _step_name(event.step)
            self._round[sg] = event.round
            if not is_round_step(event.step):  # a part of the current step
                self._say(t, sg, event.round, event.step)
                return
            self._flush(sg, t)
            if name == "select":
                self._select[sg] = event.round
            elif name == "judge":
                self._judge[sg] = {"round": event.round}
            elif name not in QUIET_STEPS:
                self._say(t, sg, event.round, event.step)
            if name == "search":
                self._searching.add(sg)
        elif isinstance(event, QueryEvent):
            sg = event.subgoal_id
            if sg not in self._searching:  # searches with no search step announced (older graphs)
                self._flush(sg, t)
                self._searching.add(sg)
                self._say(t, sg, self._round.get(sg), "search")
            if event.status != "ok":
                self._say(t, sg, self._round.get(sg), f"{event.source} search {event.status}: {event.query}")
        elif isinstance(event, EvidenceEvent):
            sg = event.subgoal_id
            self._searching.discard(sg)
            round_ = self._select.pop(sg, self._round.get(sg))
            self._say(t, sg, round_, f"select → kept {len(event.kept)}, dropped {event.dropped}")
        elif isinstance(event, VerdictEvent):
            self._verdict(event)
        elif isinstance(event, InformationEvent):
            sg = event.subgoal_id
            j = self._judge.setdefault(sg, {"round": event.round})
            j |= {"belief": event.belief, "gain": event.gain}
            if j.get("decision"):
                self._flush_judge(sg, t)
            self._round[sg] = event.round + 1  # where an older graph's next searches belong

    def _node(self, event: NodeEvent) -> None:
        if event.phase == "started":
            if event.node in ("plan", "reflect", "verify"):
                self._open[event.node] = {"added": 0, "changed": 0, "dropped": 0}
            else:
                self._emit(event.at_s, event.node)
            return
        counts = self._open.pop(event.node, None) if event.node in ("plan", "reflect") else None
        if counts is None:
            return
        if event.node == "plan":
            n = counts["added"]
            self._emit(event.at_s, f"plan: {n} sub-goal{'s' if n != 1 else ''}")
        else:
            changes = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no change"
            self._emit(event.at_s, f"reflect: {changes}")

    def _subgoal(self, event: SubGoalEvent) -> None:
        sg, t = event.subgoal_id, event.at_s
        counting = self._open.get("reflect") or self._open.get("plan")
        kind = {"planned": "added", "changed": "changed", "dropped": "dropped"}.get(event.status)
        if counting is not None and kind is not None:
            counting[kind] += 1
        elif event.status == "running":
            self._round.setdefault(sg, 1)
            self._emit(t, f"{sg} started: {event.question}")
        elif event.status == "done":
            self._flush(sg, t)
            self._emit(t, f"{sg} done → {event.answer} ({event.stop_reason})")
        elif kind is not None:
            self._emit(t, f"{sg} {event.status}: {event.question}")

    def _verdict(self, event: VerdictEvent) -> None:
        if event.target == "answer":
            self._open.pop("verify", None)
            why = f" ({event.rationale})" if event.rationale else ""
            self._emit(event.at_s, f"verify: {event.decision}{why}")
            return
        sg = event.target
        self._searching.discard(sg)
        j = self._judge.setdefault(sg, {"round": self._round.get(sg)})
        j["decision"] = event.decision
        if "belief" in j:
            self._flush_judge(sg, event.at_s)

    def close(self, at_s: float) -> None:
        for sg in list({*self._select, *self._judge}):
            self._flush(sg, at_s)
        for node in list(self._open):
            self._emit(at_s, node)
        self._open.clear()
