"""The state of one open chat session: its id, its turns, where they are stored, and how to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..config import Settings
from ..errors import UsageError
from .store import SessionStore, Turn

HISTORY_TURNS = 4  # intake reads the last few turns to make a follow-up standalone


@dataclass
class ChatSession:
    console: Console
    store: SessionStore
    settings: Settings
    id: str
    traces_dir: Path
    plain: bool = False
    turns: list[Turn] = field(default_factory=list)

    @classmethod
    def open(
        cls, console: Console, store: SessionStore, settings: Settings, resume_id: str | None, plain: bool,
        traces_dir: Path | None = None,
    ) -> ChatSession:  # fmt: skip
        """Continue the stored session `resume_id`, or start a new one."""
        session_id = resume_id or store.create()
        return cls(console, store, settings, session_id, traces_dir or settings.traces.dir, plain,
                   store.turns(session_id))  # fmt: skip

    def history(self) -> list[dict[str, str]]:
        """Earlier answered turns, as the graph's intake expects them."""
        answered = [t for t in self.turns if t.answered]
        return [{"question": t.question, "answer": t.result.answer} for t in answered[-HISTORY_TURNS:]]

    def turn(self, ref: str | None, *, answered: bool = False) -> Turn:
        """Turn N (1-based), or the last one (the last answered one when `answered`)."""
        candidates = [t for t in self.turns if t.answered] if answered else self.turns
        if ref is None:
            if not candidates:
                raise UsageError("no answered question in this session yet" if answered else "no question yet")
            return candidates[-1]
        try:
            n = int(ref)
        except ValueError:
            raise UsageError(f"expected a turn number, got {ref!r}") from None
        match = next((t for t in self.turns if t.n == n), None)
        if match is None:
            raise UsageError(f"no turn {n}; this session has {len(self.turns)}")
        if answered and not match.answered:
            raise UsageError(f"turn {n} has no answer ({match.status})")
        return match

    def renew(self) -> None:
        """Start a new, empty session (the old one stays stored and can be resumed)."""
        self.store.discard_if_empty(self.id)
        self.id = self.store.create()
        self.turns = []
