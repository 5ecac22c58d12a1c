"""LLM failures, each with a one-line message a user can act on."""

from __future__ import annotations

from ..errors import DeepsearchError


class LLMError(DeepsearchError):
    """The backend failed to produce a completion. `kind` feeds the run's `error_<kind>` termination."""

    kind = "llm"


class LLMUnavailable(LLMError):
    """Nothing answered at the endpoint (connection refused, DNS, timeout) after all retries."""

    exit_code = 2
    kind = "llm_unreachable"

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach the LLM at {url} ({reason}); is the server running? try `deepsearch doctor`")
        self.url = url


class LLMServerError(LLMError):
    """The server answered with an error status (after retries for 429/5xx)."""

    kind = "llm_server"

    def __init__(self, url: str, status: int | None, detail: str):
        super().__init__(f"the LLM at {url} answered {status or 'an error'}: {detail[:300]}")
        self.status = status


class EmbeddedModelMissing(LLMError):
    exit_code = 2
    kind = "llm_model_missing"
