"""How a batch answers one question: the research graph or the closed-book baseline, on one shared backend.

The backend (and with it `llm.concurrency` and round-robin over servers) and the opened indexes and
web tools are shared by every question; each question gets its own ResearchTools view, because that
view carries the run's budget counters and recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..llm import LLMBackend
from ..research_tools import ResearchTools
from ..result import AskResult
from .inputs import BatchQuestion


class Answerer(Protocol):
    mode: str

    async def __call__(self, question: BatchQuestion) -> AskResult: ...

    def close(self) -> None: ...


# Names a question's trajectory in advance (Ray workers: a retried question replaces its earlier trajectory).
TraceIds = Callable[[BatchQuestion], str]


def _meta(question: BatchQuestion, batch: str) -> dict[str, Any]:
    return {"batch": batch, "batch_id": question.id}


class ClosedBookAnswerer:
    mode = "closed_book"

    def __init__(self, settings: Settings, backend: LLMBackend, batch: str, trace_ids: TraceIds | None = None):
        self.settings, self.backend, self.batch, self.trace_ids = settings, backend, batch, trace_ids

    async def __call__(self, question: BatchQuestion) -> AskResult:
        from ..closed_book import arecord_closed_book

        return await arecord_closed_book(
            self.settings,
            question.question,
            self.backend,
            gold=question.answers or None,
            meta=_meta(question, self.batch),
            trace_id=self.trace_ids(question) if self.trace_ids else None,
        )

    def close(self) -> None:
        pass


class ResearchAnswerer:
    mode = "research"

    def __init__(self, settings: Settings, backend: LLMBackend, batch: str, trace_ids: TraceIds | None = None):
        from ..run import build_tools

        self.settings, self.backend, self.batch, self.trace_ids = settings, backend, batch, trace_ids
        # Opened once: indexes are memory-mapped and thread-safe; the web tools share their rate limiter and caches.
        self.shared = build_tools(settings, settings.agent.indexes, settings.agent.web)

    def _tools(self) -> ResearchTools:
        s = self.shared
        return ResearchTools(s.local, s.web, s.fetcher, local_k=s.local_k, web_pages=s.web_pages)

    async def __call__(self, question: BatchQuestion) -> AskResult:
        from ..run import aresearch

        # No checkpoints: a batch resumes whole questions, and one SQLite file would serialise every run.
        return await aresearch(
            question.question, settings=self.settings, backend=self.backend, tools=self._tools(),
            gold=question.answers or None, meta=_meta(question, self.batch), checkpoint=False,
            trace_id=self.trace_ids(question) if self.trace_ids else None,
        )  # fmt: skip

    def close(self) -> None:
        self.shared.close()


def build_answerer(
    settings: Settings, backend: LLMBackend, *, closed_book: bool, batch: Path | str, trace_ids: TraceIds | None = None
) -> Answerer:
    cls = ClosedBookAnswerer if closed_book else ResearchAnswerer
    return cls(settings, backend, str(batch), trace_ids)
