"""Runs a session's questions on one event loop in a background thread.

The terminal thread stays free to draw, read clarification replies and notice Ctrl-C; it talks to a
running question only through its `Job`: a queue of messages out (a clarification to ask, done) and
`cancel()` in. One backend serves every question of the session (the embedded model loads once), and
the local indexes stay open between questions.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..events import ProgressEvent
from ..llm import LLMBackend, build_backend
from ..report.models import ReportRequest
from ..research_tools import ResearchTools
from ..result import AskResult
from ..run import aresearch, build_tools
from ..state import ClarificationRequest


@dataclass
class Clarification:
    """The agent asks the user something; `reply` sends the answer back into the paused run."""

    request: ClarificationRequest
    reply: Callable[[str], None]


class Done:
    """The question's task has finished (answered, failed or cancelled): read `Job.outcome()`."""


class Job:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.messages: queue.Queue[Clarification | Done] = queue.Queue()
        self._task: asyncio.Task | None = None
        self._finished = threading.Event()

    def _start(self, make_coro: Callable[[Job], Coroutine[Any, Any, AskResult]]) -> None:
        def start() -> None:
            self._task = self._loop.create_task(make_coro(self))
            self._task.add_done_callback(self._done)

        self._loop.call_soon_threadsafe(start)

    def _done(self, _: asyncio.Task) -> None:
        self._finished.set()
        self.messages.put(Done())

    def cancel(self) -> None:
        """Cancel the running question; its trajectory ends `cancelled`. Done arrives when it has unwound."""
        self._loop.call_soon_threadsafe(lambda: self._task.cancel() if self._task else None)

    def outcome(self) -> AskResult:
        """The answer, or the exception the run ended with (asyncio.CancelledError when cancelled)."""
        self._finished.wait()
        assert self._task is not None
        if self._task.cancelled():
            raise asyncio.CancelledError
        return self._task.result()

    async def clarify(self, request: ClarificationRequest) -> str:
        """Called by the run (on the loop): hand the question to the terminal and wait for its reply."""
        answer: asyncio.Future[str] = self._loop.create_future()

        def reply(text: str) -> None:
            self._loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(text))

        self.messages.put(Clarification(request, reply))
        return await answer


class Engine:
    def __init__(
        self, settings: Settings, indexes: list[str], web: bool, *, traces_dir: Path | None = None,
        backend: LLMBackend | None = None, tools: ResearchTools | None = None,
    ):  # fmt: skip
        self.settings, self.traces_dir = settings, traces_dir
        # A missing index or an unusable backend setting fails here, before the session opens.
        self._tools = tools or build_tools(settings, indexes, web)
        self.backend = backend or build_backend(settings.llm)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="deepsearch-chat-loop", daemon=True)
        self._thread.start()

    @property
    def sources(self) -> str:
        local = ", ".join(self._tools.local) or "no local index"
        return f"{local} · web {'on' if self._tools.web is not None else 'off'}"

    def _fresh_tools(self) -> ResearchTools:
        """Per-question tool state (web degraded for this question only, its fetched pages) over shared searchers."""
        t = self._tools
        return ResearchTools(t.local, t.web, t.fetcher, local_k=t.local_k, web_pages=t.web_pages)

    def ask(
        self,
        question: str,
        history: list[dict[str, str]],
        trace_id: str,
        on_event: Callable[[ProgressEvent], None],
        resume_thread: str | None = None,
        report: ReportRequest | None = None,
    ) -> Job:
        """Research `question` in the background; with `resume_thread`, continue that run from its checkpoint;
        with `report`, write a research report."""
        job = Job(self._loop)
        job._start(
            lambda j: aresearch(
                question, settings=self.settings, history=history, backend=self.backend, tools=self._fresh_tools(),
                on_event=on_event, traces_dir=self.traces_dir, clarify=j.clarify, trace_id=trace_id,
                thread_id=resume_thread or trace_id, resume=resume_thread is not None, report=report,
            )  # fmt: skip
        )
        return job

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()
            self._tools.close()
