"""What a web search returns: normalised results and an outcome whose status the agent can act on."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .snapshots import RecordedRef

SearchStatus = Literal["ok", "no_results", "unavailable", "not_recorded"]


class SearchResult(BaseModel):
    title: str
    url: str
    snippet: str = ""
    rank: int = Field(ge=1, description="1-based position after de-duplication")
    backend: str = Field(description="engine that produced it, e.g. ddgs:brave or searxng:wikipedia")
    retrieved_at: datetime


class SearchOutcome(BaseModel):
    """`unavailable` means the search could not be done (rate limit, timeout, engine down): not "no results";
    `not_recorded`: a replayed run asked for a search its snapshot does not hold (nothing was sent)."""

    status: SearchStatus
    query: str = Field(description="the query as sent, after the length guard")
    results: list[SearchResult] = Field(default_factory=list)
    provider: str = Field("", description="ddgs or searxng: who answered, or who was tried last")
    message: str = Field("", description="why the search is unavailable, or why it fell back or may be incomplete")
    attempts: int = Field(0, description="requests made, retries and fallback included")
    query_truncated: bool = False
    from_cache: bool = False
    elapsed_ms: float = 0.0
    recorded: RecordedRef | None = Field(None, description="its object in the snapshot store, or the one replayed")

    def to_llm_text(self) -> str:
        """A compact rendering for a model's context."""
        if self.status in ("unavailable", "not_recorded"):
            return self.message
        if self.status == "no_results":
            # The message says when "nothing" may be an engine blocking us rather than an empty web.
            return f"no results for: {self.query}" + (f" ({self.message})" if self.message else "")
        lines = [f"[{r.rank}] {r.title}\n{r.url}\n{r.snippet}".rstrip() for r in self.results]
        return "\n\n".join(lines)
