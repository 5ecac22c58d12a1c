"""The directory index: one SQLite row per run (question, time, termination, score, tokens), derived
from the logs. `sync()` re-reads only logs whose size or mtime changed, so it is cheap to call before
every listing; `rebuild()` throws the table away and reads everything again. The recorder never
touches the index: a run killed mid-way cannot leave it inconsistent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from .reader import LogReport, log_paths, read_log
from .schema import Trajectory

INDEX_FILE = "index.sqlite"
INDEX_VERSION = 1  # bump when the columns change
ANSWER_CHARS = 200
_COLUMNS = (
    "id TEXT PRIMARY KEY, file TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, "
    "created TEXT NOT NULL, ended TEXT, status TEXT NOT NULL, problem TEXT, question TEXT NOT NULL, answer TEXT, "
    "mode TEXT, model TEXT, termination TEXT, correct INTEGER, score REAL, tokens INTEGER NOT NULL, "
    "llm_calls INTEGER NOT NULL, tool_calls INTEGER NOT NULL, info_gain REAL NOT NULL"
)


class RunSummary(BaseModel):
    id: str
    file: str
    mtime_ns: int
    size: int
    created: datetime
    ended: datetime | None = None
    status: str  # complete, incomplete, damaged
    problem: str | None = None
    question: str = ""
    answer: str | None = Field(None, description="the final answer, clipped")
    mode: str | None = None
    model: str | None = None
    termination: str | None = None
    correct: bool | None = None
    score: float | None = None
    tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    info_gain: float = 0.0


def summarize(traj: Trajectory | None, report: LogReport, path: Path) -> RunSummary:
    st = path.stat()
    base = {"id": path.stem, "file": path.name, "mtime_ns": st.st_mtime_ns, "size": st.st_size}
    if traj is None or report.errors:
        created = traj.created if traj else datetime.fromtimestamp(st.st_mtime).astimezone()
        problem = (report.errors or ["unreadable"])[0]
        question = traj.question if traj else ""
        return RunSummary(**base, created=created, status="damaged", problem=problem, question=question)
    scores = traj.final.scores if traj.final else None
    return RunSummary(
        **base,
        created=traj.created,
        ended=traj.ended,
        status=traj.status,
        question=traj.question,
        answer=traj.final.answer[:ANSWER_CHARS] if traj.final else None,
        mode=traj.mode,
        model=", ".join(sorted({m.model for m in traj.models} | {s.model for s in traj.llm_calls() if s.model}))
        or None,
        termination=traj.final.termination if traj.final else None,
        correct=traj.correct,
        score=None if scores is None else (scores.f1 if scores.f1 is not None else scores.em),
        tokens=traj.tokens,
        llm_calls=len(traj.llm_calls()),
        tool_calls=len(traj.tool_calls()),
        info_gain=round(traj.info_gain, 6),
    )


class TraceIndex:
    def __init__(self, traces_dir: Path):
        self.dir = Path(traces_dir).expanduser()
        self.path = self.dir / INDEX_FILE

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits and closes; an unreadable index file is replaced (it is only a cache)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            db = self._open()
        except sqlite3.DatabaseError:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            db = self._open()
        try:
            with db:
                yield db
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:  # older layout: rebuild
                db.execute("DROP TABLE IF EXISTS runs")
                db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            db.execute(f"CREATE TABLE IF NOT EXISTS runs ({_COLUMNS})")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def sync(self) -> list[RunSummary]:
        """Bring the index up to date with the logs; returns every run, newest first."""
        if not self.dir.is_dir():
            return []  # nothing recorded yet: listing must not create the directory
        with self._connect() as db:
            known = {row[0]: (row[1], row[2]) for row in db.execute("SELECT id, mtime_ns, size FROM runs")}
            on_disk = set()
            for path in log_paths(self.dir):
                on_disk.add(path.stem)
                st = path.stat()
                if known.get(path.stem) == (st.st_mtime_ns, st.st_size):
                    continue
                summary = summarize(*read_log(path), path)
                data = summary.model_dump(mode="json")
                columns, marks = ", ".join(data), ", ".join("?" * len(data))
                db.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})", list(data.values()))
            gone = [(i,) for i in known.keys() - on_disk]
            db.executemany("DELETE FROM runs WHERE id = ?", gone)
        return self.runs()

    def rebuild(self) -> list[RunSummary]:
        with self._connect() as db:
            db.execute("DELETE FROM runs")
        return self.sync()

    def runs(self) -> list[RunSummary]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC, id DESC").fetchall()
        return [RunSummary.model_validate(dict(zip(row.keys(), row, strict=True))) for row in rows]
