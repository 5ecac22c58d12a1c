"""LLM access: one interface (`LLMBackend`, `LLMClient`), backends openai / llamacpp / fake."""

from .base import LLMBackend, LLMClient, UsageTotals
from .errors import LLMError, LLMServerError, LLMUnavailable
from .factory import build_backend
from .structured import StructuredOutcome, generate_structured
from .types import ChatMessage, LLMRequest, LLMResponse

__all__ = [
    "ChatMessage",
    "LLMBackend",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "LLMServerError",
    "LLMUnavailable",
    "StructuredOutcome",
    "UsageTotals",
    "build_backend",
    "generate_structured",
]
