"""Where a run's checkpoints go: SQLite per thread (or memory), with the types they may hold allowed by name.

LangGraph's serializer warns (and will refuse) when a checkpoint holds a class it was not told about;
these are the pydantic models our graph state carries, so resuming a run never depends on a default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


def _state_types() -> list[type]:
    from deepsearch.tools.rerank.models import Candidate

    from .belief import Belief
    from .researcher.state import BestAnswer, PassageGrade, RoundVerdict
    from .result import Citation
    from .state import AnswerClaim, DagChange, DraftAnswer, Evidence, SubGoal, SubGoalResult

    return [SubGoal, Evidence, SubGoalResult, DagChange, DraftAnswer, AnswerClaim, Citation, RoundVerdict,
            PassageGrade, Belief, BestAnswer, Candidate]  # fmt: skip


def serializer():
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=_state_types())


@asynccontextmanager
async def open_checkpointer(path: Path | None, in_memory: bool, *, fsync: bool = False) -> AsyncIterator[Any]:
    """SQLite checkpoints at `path`; with no path, memory when `in_memory` (an interactive run must pause
    somewhere), else none.

    The saver writes in WAL mode and commits every step. SQLite's default (synchronous=FULL) fsyncs each commit,
    most of a checkpointed step's cost; synchronous=NORMAL keeps every committed step through a killed or crashed
    process (a WAL commit is atomic) and can lose only the last steps to a power cut, which resuming redoes. With
    `fsync` (traces.fsync: survive power loss) commits stay FULL."""
    if path is None:
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver(serde=serializer()) if in_memory else None
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()  # WAL mode and the tables (the saver would do it on first use)
        await conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        yield saver
