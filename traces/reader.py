"""Read event logs back: tolerate a torn last line, fold events into a Trajectory, report problems.

A log without a finish event is an `incomplete` trajectory (the run was killed or is still going),
not an error. Errors are what no crash can produce: a bad line before the end, gaps in the
sequence, references to steps that do not exist, a schema newer than this reader.
"""

from __future__ import annotations

from pathlib import Path

from deepsearch.agent.errors import DeepsearchError, UsageError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from .events import (
    AnnotateEvent,
    ContentEvent,
    DagEvent,
    Event,
    FinishEvent,
    ResolvedEvent,
    StartEvent,
    StepEvent,
)
from .recorder import RUNS_DIR
from .schema import SCHEMA_VERSION, LLMCallStep, SubGoal, Trajectory

_EVENT = TypeAdapter(Event)


class TraceReadError(DeepsearchError):
    """A trajectory log that cannot be read at all."""


class LogReport(BaseModel):
    """What reading one log found."""

    path: Path
    trace_id: str | None = None
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    incomplete: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def read_events(path: Path, report: LogReport | None = None) -> list:
    """Parse every line; a torn final line (no newline: the writer was killed) is dropped with a warning."""
    report = report or LogReport(path=path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TraceReadError(f"cannot read {path}: {e.strerror or e}") from None
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        report.warnings.append(f"torn last line ({len(tail)} bytes) dropped: the writer stopped mid-line")
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(_EVENT.validate_json(line))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            report.errors.append(f"line {number}: {where + ': ' if where else ''}{err['msg']}")
    return events


def fold(events: list, report: LogReport) -> Trajectory | None:
    """Rebuild the trajectory; problems go to `report`. None when there is no start event."""
    if not events or not isinstance(events[0], StartEvent):
        report.errors.append("the log does not begin with a start event")
        return None
    start: StartEvent = events[0]
    report.trace_id = start.trace_id
    if start.schema_version > SCHEMA_VERSION:
        report.errors.append(f"schema version {start.schema_version} is newer than this reader ({SCHEMA_VERSION})")
        return None
    traj = Trajectory(
        id=start.trace_id,
        created=start.created,
        status="incomplete",
        schema_version=start.schema_version,
        **start.header.model_dump(),
    )
    dag: dict[str, SubGoal] = {}
    for expected, ev in enumerate(events):
        if ev.seq != expected:
            report.errors.append(f"event {expected}: sequence number {ev.seq}, expected {expected}")
        if traj.final is not None:
            report.errors.append(f"event {ev.seq}: {ev.ev} after the finish event")
        if isinstance(ev, StepEvent):
            if ev.step.index != len(traj.steps):
                report.errors.append(f"event {ev.seq}: step index {ev.step.index}, expected {len(traj.steps)}")
            traj.steps.append(ev.step)
        elif isinstance(ev, AnnotateEvent):
            step = traj.steps[ev.step_index] if 0 <= ev.step_index < len(traj.steps) else None
            if not isinstance(step, LLMCallStep):
                report.errors.append(f"event {ev.seq}: annotates step {ev.step_index}, which is not an llm_call")
                continue
            step.status, step.accepted, step.parsed = ev.status, ev.accepted, ev.parsed
            step.parse_failures, step.retry_of = ev.parse_failures, ev.retry_of
        elif isinstance(ev, ContentEvent):
            traj.contents[ev.content.hash] = ev.content
        elif isinstance(ev, DagEvent):
            change = ev.change
            if change.caused_by is not None and not 0 <= change.caused_by < len(traj.steps):
                report.errors.append(f"event {ev.seq}: DAG change caused by unknown step {change.caused_by}")
            if change.action == "dropped":
                change.subgoal.status = "dropped"
            dag[change.subgoal.id] = change.subgoal
            traj.dag_changes.append(change)
        elif isinstance(ev, ResolvedEvent):
            traj.resolved_question = ev.question
        elif isinstance(ev, FinishEvent):
            traj.final, traj.ended, traj.status = ev.final, ev.ended, "complete"
        elif isinstance(ev, StartEvent) and ev.seq:
            report.errors.append(f"event {ev.seq}: a second start event")
    traj.dag = list(dag.values())
    missing = {r.content_hash for s in traj.tool_calls() for r in s.results if r.content_hash} - traj.contents.keys()
    if missing:
        report.errors.append(f"{len(missing)} tool result(s) point at contents that were never stored")
    report.incomplete = traj.status == "incomplete"
    return traj


def read_log(path: Path) -> tuple[Trajectory | None, LogReport]:
    report = LogReport(path=path)
    return fold(read_events(path, report), report), report


def load_trajectory(path: Path) -> Trajectory:
    """The trajectory in `path`, or TraceReadError when the log is damaged beyond a crash."""
    traj, report = read_log(path)
    if traj is None or report.errors:
        raise TraceReadError(f"{path.name}: {(report.errors or ['unreadable'])[0]}")
    return traj


def log_paths(traces_dir: Path) -> list[Path]:
    """Every run's log, oldest first (ids begin with the UTC start time)."""
    runs = Path(traces_dir).expanduser() / RUNS_DIR
    return sorted(runs.glob("*.jsonl")) if runs.is_dir() else []


def find_log(traces_dir: Path, trace_id: str) -> Path:
    """The log whose id is `trace_id` or starts with it; `last` = the newest run."""
    paths = log_paths(traces_dir)
    if trace_id == "last":
        if not paths:
            raise UsageError(f"no trajectories in {traces_dir}")
        return paths[-1]
    matches = [p for p in paths if p.stem == trace_id] or [p for p in paths if p.stem.startswith(trace_id)]
    if not matches:
        raise UsageError(f"no trajectory with id {trace_id!r} in {traces_dir}")
    if len(matches) > 1:
        raise UsageError(f"id prefix {trace_id!r} matches {len(matches)} runs; give more of it")
    return matches[0]
