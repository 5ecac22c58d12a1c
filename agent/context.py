"""Everything a run's nodes share that is not graph state: settings, LLM client, tools, budget, recorder, events.

Passed to LangGraph as the run's `context` (never checkpointed). Which sub-goal and round an LLM call
belongs to travels in context variables, so parallel research branches tag their own calls.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ..prompts import load_prompt
from .budget import Budget, BudgetExhausted
from .config import Settings
from .llm import ChatMessage, LLMClient, LLMRequest, LLMResponse, StructuredOutcome, generate_structured
from .llm.errors import LLMError

if TYPE_CHECKING:
    from deepsearch.traces.recorder import TraceRecorder

    from .events import ProgressEvent
    from .research_tools import ResearchTools

T = TypeVar("T", bound=BaseModel)

CURRENT_SUBGOAL: contextvars.ContextVar[str | None] = contextvars.ContextVar("subgoal", default=None)
CURRENT_ROUND: contextvars.ContextVar[int | None] = contextvars.ContextVar("round", default=None)
# Set inside research steps: their LLM calls stop at a spent budget (answer and verify are exempt).
BUDGETED: contextvars.ContextVar[bool] = contextvars.ContextVar("budgeted", default=False)


def stop_reason(error: BaseException) -> str:
    """A failed call as a stop reason: budget_<kind> for a spent budget, else error_<kind>."""
    kind = getattr(error, "kind", "llm")
    return kind if kind.startswith("budget_") else f"error_{kind}"


def render(prompt: str, **variables: Any) -> list[ChatMessage]:
    return [ChatMessage(**m) for m in load_prompt(prompt).render(**variables)]


@dataclass
class RunContext:
    settings: Settings
    client: LLMClient
    tools: ResearchTools
    budget: Budget
    recorder: TraceRecorder | None = None
    on_event: Callable[[ProgressEvent], None] | None = None
    interactive: bool = False
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.recorder is not None:
            recorder = self.recorder

            def observe(request: LLMRequest, response: LLMResponse | None, error: BaseException | None) -> None:
                recorder.llm_call(request, response, error, subgoal=CURRENT_SUBGOAL.get(), round=CURRENT_ROUND.get())

            self.client.observers.append(observe)
        self.client.gate = self._budget_gate
        self.failures: list[dict[str, str]] = []  # LLM calls that failed: {role, kind, error}

        def note_failure(request: LLMRequest, response: LLMResponse | None, error: BaseException | None) -> None:
            if error is not None:
                self.failures.append({"role": request.role, "kind": stop_reason(error), "error": str(error)[:300]})

        self.client.observers.append(note_failure)

    def _budget_gate(self) -> None:
        if BUDGETED.get() and (spent := self.budget.exhausted()):
            raise BudgetExhausted(spent)

    @property
    def agent(self):
        return self.settings.agent

    def emit(self, event: ProgressEvent) -> None:
        if self.on_event is not None:
            event.at_s = round(time.monotonic() - self.started, 3)
            self.on_event(event)

    def record(self, kind: str, **fields: Any) -> None:
        if self.recorder is not None:
            self.recorder.step(kind, subgoal=CURRENT_SUBGOAL.get(), round=CURRENT_ROUND.get(), **fields)

    def content(self, text: str, url: str | None = None) -> str | None:
        """Store a text once in the trajectory's content table; its hash (None when nothing records)."""
        return self.recorder.content(text, url) if self.recorder is not None else None

    def record_budget(self) -> None:
        snap = self.budget.snapshot()
        used = {k: v for k, v in snap.items() if not k.startswith("max_")}
        limits = {k[4:]: v for k, v in snap.items() if k.startswith("max_")}
        self.record("budget", used=used, limits=limits)

    async def structured(
        self,
        prompt: str,
        model: type[T],
        *,
        role: str,
        fallback: T,
        logprobs: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        **variables: Any,
    ) -> StructuredOutcome[T]:
        """Render a prompt file, get a typed output, and attach the outcome to the recorded calls.

        A failed call (server down after retries, a spent research budget) never ends the run here: the
        outcome is the fallback with `error` set to the stop reason; the llm_call step names the failed call.
        """
        try:
            outcome = await generate_structured(
                self.client,
                render(prompt, **variables),
                model,
                role=role,
                fallback=fallback,
                logprobs=logprobs and self.client.backend.supports_logprobs,
                top_logprobs=self.settings.llm.belief_top_logprobs,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
        except LLMError as e:
            # The failed call itself is in the trajectory: the client's observers record it with its error.
            return StructuredOutcome(value=fallback, status="fallback", error=stop_reason(e))
        if self.recorder is not None:
            self.recorder.structured(outcome)
        return outcome
