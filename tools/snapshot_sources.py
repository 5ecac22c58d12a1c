"""A snapshot from recorded runs: the outcomes their trajectories reference, gathered into one manifest."""

from __future__ import annotations

from pathlib import Path

from ..agent.errors import UsageError
from .snapshots import Entry, Manifest, SnapshotStore, entry_for


def snapshot_of_runs(trace_ids: list[str], store: SnapshotStore, traces_dir: Path | None,
                     source: str = "") -> Manifest:  # fmt: skip
    """The manifest of every web outcome the runs `trace_ids` recorded (saved in the store), or a one-line
    UsageError naming what is missing (an unknown run, a run that never searched the web, objects not here)."""
    from deepsearch.traces.reader import find_log, load_trajectory

    if traces_dir is None:
        raise UsageError(f"{source or trace_ids[0]}: not a snapshot file or id, and no traces directory to look in")
    entries: list[Entry] = []
    missing = 0
    runs = []
    for trace_id in trace_ids:
        try:
            traj = load_trajectory(find_log(traces_dir, trace_id))
        except UsageError:
            raise UsageError(f"{trace_id!r} is no snapshot id, file or trace id known here") from None
        runs.append(traj.id)
        for step in traj.tool_calls():
            if step.recorded is None:
                continue
            entry = entry_for(step.recorded, store)
            if entry is None:
                missing += 1
            else:
                entries.append(entry)
    if missing:
        raise UsageError(f"{source or trace_ids[0]}: {missing} recorded outcome(s) are not in the snapshot store "
                         f"{store.root} (import the snapshot that holds them)")  # fmt: skip
    if not entries:
        raise UsageError(f"{source or trace_ids[0]}: the run(s) recorded no web search or fetch to replay")
    recorded_by = {"deepsearch": _version(), "runs": runs, "source": source or ", ".join(trace_ids)}
    return store.save_manifest(entries, recorded_by)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepsearch")
    except PackageNotFoundError:
        return "unknown"


def snapshot_of_batch(rows: list[dict], settings) -> str | None:
    """The snapshot a batch ran on: the one it replayed, or the one its runs recorded (saved in the store,
    so `--replay` of it, its id or the batch output replays the same web); None for a batch without web."""
    if settings.snapshot.replay:
        from .replay import cached_snapshot

        return cached_snapshot(settings.snapshot.replay, settings.snapshot.dir, settings.traces.dir).id
    ids = [r["trace_id"] for r in rows if r.get("trace_id")]
    if not (ids and settings.agent.web and settings.snapshot.record):
        return None
    try:
        return snapshot_of_runs(ids, SnapshotStore(settings.snapshot.dir), settings.traces.dir, source="batch").id
    except UsageError:
        return None  # no run searched the web (or their outcomes are gone): nothing to name


def trace_ids_in(output: Path) -> list[str]:
    """The trace ids of a batch/eval output's rows (read as `--resume` reads it: a torn last line is skipped)."""
    from deepsearch.agent.batch.output import scan_output

    return [str(r["trace_id"]) for r in scan_output(output).rows if r.get("trace_id")]
