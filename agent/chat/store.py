"""Chat sessions in SQLite: each session is a list of turns, each turn one research run (its own thread).

The tables live in the same file as the LangGraph checkpoints (`agent.checkpoint_db`), so one file
holds a session's turns and the checkpointed state of every run in it. A turn is written when its
question starts (`running`) and updated when it ends, so a session killed mid-question still shows it.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import UsageError
from ..result import AskResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_sessions (
    id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, title TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS chat_turns (
    session_id TEXT NOT NULL REFERENCES chat_sessions(id), n INTEGER NOT NULL, question TEXT NOT NULL,
    trace_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT, result TEXT, created REAL NOT NULL,
    PRIMARY KEY (session_id, n)
);
"""


class Turn(BaseModel):
    n: int = Field(description="1-based position in the session")
    question: str
    trace_id: str = Field(description="the run's trajectory id, also its checkpoint thread id")
    status: str = Field(description="running, or the run's termination (answered, cancelled, error_<kind>, …)")
    error: str | None = None
    result: AskResult | None = None

    @property
    def answered(self) -> bool:
        return self.result is not None and bool(self.result.answer)


class SessionInfo(BaseModel):
    id: str
    created: float
    updated: float
    title: str
    turns: int


class SessionStore:
    def __init__(self, path: Path):
        self.path = Path(path).expanduser()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as e:
            raise UsageError(f"cannot open the session store {self.path}: {e}") from None
        try:
            with db:
                yield db
        finally:
            db.close()

    def create(self) -> str:
        now = time.time()
        with self._db() as db:
            while True:
                session_id = secrets.token_hex(4)
                try:
                    db.execute("INSERT INTO chat_sessions VALUES (?, ?, ?, '')", (session_id, now, now))
                    return session_id
                except sqlite3.IntegrityError:  # 1 in 4 billion: draw again
                    continue

    def resolve(self, ref: str) -> str:
        """A session id from an id, a unique prefix of one, or `last`."""
        with self._db() as db:
            if ref == "last":
                row = db.execute("SELECT id FROM chat_sessions ORDER BY updated DESC LIMIT 1").fetchone()
                if row is None:
                    raise UsageError("no chat sessions yet: start one with `deepsearch chat`")
                return row[0]
            rows = db.execute("SELECT id FROM chat_sessions WHERE substr(id, 1, ?) = ?", (len(ref), ref)).fetchall()
        ids = [r[0] for r in rows]
        if ref in ids:
            return ref
        if not ids:
            raise UsageError(f"no chat session {ref!r}; `deepsearch chat --list` shows them")
        if len(ids) > 1:
            raise UsageError(f"session prefix {ref!r} matches {len(ids)} sessions; give more of it")
        return ids[0]

    def sessions(self) -> list[SessionInfo]:
        """Every session, most recently used first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT s.id, s.created, s.updated, s.title, COUNT(t.n) FROM chat_sessions s "
                "LEFT JOIN chat_turns t ON t.session_id = s.id GROUP BY s.id ORDER BY s.updated DESC"
            ).fetchall()
        return [SessionInfo(id=r[0], created=r[1], updated=r[2], title=r[3], turns=r[4]) for r in rows]

    def turns(self, session_id: str) -> list[Turn]:
        with self._db() as db:
            rows = db.execute(
                "SELECT n, question, trace_id, status, error, result FROM chat_turns WHERE session_id = ? ORDER BY n",
                (session_id,),
            ).fetchall()
        return [
            Turn(n=n, question=q, trace_id=t, status=s, error=e, result=AskResult.model_validate_json(r) if r else None)
            for n, q, t, s, e, r in rows
        ]

    def start_turn(self, session_id: str, question: str, trace_id: str) -> Turn:
        now = time.time()
        with self._db() as db:
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM chat_turns WHERE session_id = ?", (session_id,))
            n = n.fetchone()[0]
            db.execute(
                "INSERT INTO chat_turns (session_id, n, question, trace_id, status, created) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                (session_id, n, question, trace_id, now),
            )
            # The first question names the session in `--list`.
            db.execute(
                "UPDATE chat_sessions SET updated = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                (now, question[:200], session_id),
            )
        return Turn(n=n, question=question, trace_id=trace_id, status="running")

    def finish_turn(self, session_id: str, turn: Turn) -> None:
        result = turn.result.model_dump_json() if turn.result else None
        with self._db() as db:
            db.execute(
                "UPDATE chat_turns SET status = ?, error = ?, result = ? WHERE session_id = ? AND n = ?",
                (turn.status, turn.error, result, session_id, turn.n),
            )
            db.execute("UPDATE chat_sessions SET updated = ? WHERE id = ?", (time.time(), session_id))

    def discard_if_empty(self, session_id: str) -> None:
        """A session left without asking anything is not worth listing."""
        with self._db() as db:
            db.execute(
                "DELETE FROM chat_sessions WHERE id = ? AND NOT EXISTS (SELECT 1 FROM chat_turns WHERE session_id = ?)",
                (session_id, session_id),
            )
