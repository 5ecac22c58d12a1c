"""Hard caps on a run (LLM calls, tokens, searches, fetches, wall time): the backstop behind plateau stopping.

The fetch cap is not a stop: at the cap, web results fall back to their search snippets
(ResearchTools._page). Research checks `exhausted()` before each round and before each LLM call inside
one (the client's gate, see `BudgetExhausted`), so reranking cannot overshoot; answering is exempt.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from .llm.base import UsageTotals
from .llm.errors import LLMError


class BudgetExhausted(LLMError):
    """Raised by the LLM client's gate instead of a call a spent research budget does not allow."""

    def __init__(self, reason: str):
        super().__init__(f"research budget spent ({reason})")
        self.kind = reason  # budget_<kind>: the stop reason as it is


class BudgetLimits(BaseModel):
    llm_calls: int
    tokens: int
    searches: int
    fetches: int
    seconds: float


class Budget:
    """Counters for one run."""

    def __init__(self, limits: BudgetLimits, usage: UsageTotals):
        self.limits = limits
        self.usage = usage  # the run's LLMClient totals, updated by every call
        self.searches = 0
        self.fetches = 0
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def exhausted(self) -> str | None:
        """The first cap reached, as a termination reason (`budget_<kind>`), or None."""
        u, lim = self.usage, self.limits
        if u.llm_calls >= lim.llm_calls:
            return "budget_llm_calls"
        if u.prompt_tokens + u.completion_tokens >= lim.tokens:
            return "budget_tokens"
        if self.searches >= lim.searches:
            return "budget_searches"
        if self.seconds >= lim.seconds:
            return "budget_time"
        return None

    def snapshot(self) -> dict[str, float]:
        u = self.usage
        return {
            "llm_calls": u.llm_calls,
            "tokens": u.prompt_tokens + u.completion_tokens,
            "searches": self.searches,
            "fetches": self.fetches,
            "seconds": round(self.seconds, 3),
            **{f"max_{k}": v for k, v in self.limits.model_dump().items()},
        }
