"""A scripted model for tests: a list of replies, or a function of the request."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from .base import LLMBackend
from .parsing import split_think
from .types import LLMRequest, LLMResponse, TokenLogprob, Usage

Reply = str | LLMResponse | BaseException
Script = list[Reply] | Callable[[LLMRequest], Reply]


class FakeBackend(LLMBackend):
    """Replies from a script. A string becomes a response with one logprob per word (-0.1 each), or
    `logprob` if given."""

    name = "fake"

    def __init__(self, script: Script, *, model: str = "fake-model", latency_s: float = 0.0, logprob: float = -0.1):
        self._script = script
        self.logprob = logprob
        self._model = model
        self.latency_s = latency_s
        self.requests: list[LLMRequest] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def guided_json(self) -> bool:
        return False

    def _next(self, request: LLMRequest) -> Reply:
        if callable(self._script):
            return self._script(request)
        if not self._script:
            raise AssertionError(f"fake model script exhausted at a {request.role} call")
        return self._script.pop(0)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        reply = self._next(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, LLMResponse):
            return reply
        text, reasoning = split_think(reply)
        words = re.findall(r"\S+\s*", text)  # tokens keep their whitespace: they concatenate back to the text
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        return LLMResponse(
            text=text,
            raw_text=reply,
            reasoning=reasoning,
            logprobs=[TokenLogprob(token=w, logprob=self.logprob) for w in words] if request.logprobs else None,
            finish_reason="stop",
            usage=Usage(prompt_tokens=prompt_words, completion_tokens=len(words)),
            latency_s=self.latency_s,
            backend=self.name,
            model=self._model,
            guided=False,
        )
