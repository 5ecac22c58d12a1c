"""Trajectories of a Ray batch: recorded on the worker, shipped back with the row, stored by the driver.

Why ship them back rather than have workers write to the traces directory: a Ray cluster need not
share a filesystem, and only a finished attempt should leave a trajectory. A worker records into its
own scratch folder; the driver receives the log bytes with the row and stores them under the
configured traces directory before it appends the row, so a row always points at a stored log.

Each question's trajectory id is fixed in advance by (output file, question id). An attempt lost
with its worker leaves nothing (its scratch log dies with the worker); a question redone after the
driver was killed between storing a log and appending its row replaces that log instead of adding a
second one. Either way: one trajectory per question, and the row points at it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ...traces.recorder import RUNS_DIR, TraceWriteError

SCRATCH_PREFIX = "deepsearch-ray-"


def stable_trace_id(batch: str, question_id: str) -> str:
    """`ray-<batch>-<question>`: 8 + 16 hex digits, a safe file name whatever the id holds."""
    batch_key = hashlib.sha1(batch.encode()).hexdigest()[:8]
    question_key = hashlib.sha1(question_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"ray-{batch_key}-{question_key}"


def take_trajectory(traces_dir: Path, trace_id: str) -> bytes | None:
    """The log of a finished run in a worker's scratch folder, removed from there; None if it has none."""
    path = traces_dir / RUNS_DIR / f"{trace_id}.jsonl"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    path.unlink()
    return data


def store_trajectory(traces_dir: Path, trace_id: str, data: bytes, *, fsync: bool = False) -> Path:
    """Write a shipped log under `<traces dir>/runs/`, whole or not at all (it replaces an earlier one)."""
    runs = Path(traces_dir).expanduser() / RUNS_DIR
    path = runs / f"{trace_id}.jsonl"
    partial = runs / f".{trace_id}.shipped"  # hidden from readers until complete, like the recorder's `.starting`
    try:
        runs.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError as e:
        raise TraceWriteError(f"cannot write trajectories to {runs}: {e.strerror or e}") from None
    return path


def make_scratch() -> Path:
    """A worker's private traces folder; folders left by killed workers on this node are removed first."""
    _sweep_stale_scratch(Path(tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))


def _sweep_stale_scratch(tmp: Path) -> None:
    for folder in tmp.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
