"""Driving `deepsearch chat`'s loop in-process: scripted keyboard input, a recording console, a scripted model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from deepsearch.agent.chat.engine import Engine
from deepsearch.agent.chat.repl import Repl
from deepsearch.agent.chat.session import ChatSession
from deepsearch.agent.chat.store import SessionStore
from deepsearch.agent.llm.base import LLMBackend
from rich.console import Console

from tests.graph_support import local_tools, settings_for

CTRL_C = object()  # in a script of input lines: the user presses Ctrl-C at that prompt


class ScriptedStdin(io.TextIOBase):
    """What the user types, line by line; CTRL_C raises KeyboardInterrupt; the end of the script is EOF."""

    def __init__(self, lines: list[Any]):
        self.lines = list(lines)
        self.read_count = 0

    def readline(self, size: int = -1) -> str:
        if not self.lines:
            return ""
        self.read_count += 1
        line = self.lines.pop(0)
        if line is CTRL_C:
            raise KeyboardInterrupt
        return line + "\n"

    def isatty(self) -> bool:
        return False


class ChatRun:
    """One chat session run to the end of its script: what it printed, what it stored."""

    def __init__(self, tmp_path: Path, index_dir: Path, backend: LLMBackend, lines: list[Any], monkeypatch,
                 resume: str | None = None, **agent: Any):  # fmt: skip
        self.settings = settings_for(tmp_path, **agent)
        self.out = io.StringIO()
        console = Console(file=self.out, width=160, no_color=True, highlight=False)
        self.store = SessionStore(self.settings.agent.checkpoint_db)
        self.stdin = ScriptedStdin(lines)
        monkeypatch.setattr("sys.stdin", self.stdin)
        tools = local_tools(index_dir, self.settings)
        self.session = ChatSession.open(console, self.store, self.settings, resume, plain=True)
        engine = Engine(self.settings, [], False, backend=backend, tools=tools)
        try:
            Repl(self.session, engine).run()
        finally:
            engine.close()

    @property
    def text(self) -> str:
        return self.out.getvalue()

    @property
    def turns(self):
        return self.store.turns(self.session.id)
