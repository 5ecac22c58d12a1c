"""What `fetch_page` returns: the page's main text and metadata, or a failure kind the agent can act on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .extract import Extractor, TextFormat
from .http_fetch import FetchErrorKind
from .snapshots import RecordedRef

# not_recorded: a replayed run asked for a page its snapshot does not hold (nothing was fetched).
PageStatus = Literal["ok", "empty", "http_error", "extraction_failed", "not_recorded"] | FetchErrorKind


class PageOutcome(BaseModel):
    status: PageStatus
    url: str = Field(description="the URL asked for")
    final_url: str = Field("", description="where the content came from, after redirects")
    message: str = Field("", description="why it failed, or notes (truncated body, fallback extractor)")
    title: str = ""
    author: str = ""
    date: str = ""
    sitename: str = ""
    description: str = ""
    text: str = ""
    text_format: TextFormat = "markdown"
    content_type: str = ""
    charset: str = ""
    http_status: int | None = None
    bytes_read: int = 0
    truncated: bool = Field(False, description="the body exceeded fetch.max_bytes and was cut")
    extractor: Extractor | None = None
    redirects: list[str] = Field(default_factory=list)
    from_cache: bool = False
    cache_degraded: str | None = Field(None, description="why the page cache is off (it failed); None = fine")
    elapsed_ms: float = 0.0
    recorded: RecordedRef | None = Field(None, description="its object in the snapshot store, or the one replayed")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_llm_text(self) -> str:
        """A compact rendering for a model's context."""
        if not self.ok:
            return f"fetch failed ({self.status}): {self.message}"
        head = [f"Title: {self.title}" if self.title else "", f"URL: {self.final_url or self.url}"]
        if self.date:
            head.append(f"Date: {self.date}")
        return "\n".join(h for h in head if h) + "\n\n" + self.text
