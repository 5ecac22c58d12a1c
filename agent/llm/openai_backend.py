"""Any OpenAI-compatible server; vLLM (`vllm serve MODEL`) is the production target.

- JSON-schema output the way each server understands it: vLLM `structured_outputs` in the body,
  llama.cpp `response_format={"type": "json_object", "schema": …}` (strings bounded: grammar_schema), others
  `response_format` json_schema.
- llama.cpp servers decode like the embedded backend: `repeat_penalty` 1.0 (see LLAMACPP_SAMPLING).
- `max_tokens` is sent as such (langchain-openai's `max_completion_tokens` is ignored by llama.cpp).
- Retries with exponential backoff and jitter on 429/5xx/connection errors, moving to another endpoint.
- One concurrency limit per backend, shared by every caller; several base URLs balanced by least outstanding
  requests, a failing one out of rotation for a cooldown (endpoints.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
from pydantic import ValidationError

from ..config import LLMSettings
from ..masking import display_url, scrub, url_secrets
from .base import LLMBackend, chat_kwargs
from .endpoints import EndpointPool
from .errors import LLMServerError, LLMUnavailable
from .llamacpp_backend import grammar_schema
from .openai_wire import parse_completion
from .parsing import split_think
from .types import LLMRequest, LLMResponse, Usage

RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError, openai.APITimeoutError)
# A 200 whose body is not the promised JSON: a broken proxy or a crashing server; worth one more try.
MALFORMED = (json.JSONDecodeError, openai.APIResponseValidationError, ValidationError)
# llama-cpp-python's server defaults repeat_penalty to 1.1 (server/types.py repeat_penalty_field), where
# Llama.create_chat_completion, the embedded backend's call, defaults to 1.0 (llama.py). Over its last 64 tokens the
# penalty pushes a grammar-bound reply off the quotes and braces JSON must repeat: `{"city": "Tokyo` never gets its
# closing quote and the string runs on to max_tokens. OpenAI's API has no such penalty; llama.cpp's C++ server
# defaults to 1.0 as well.
LLAMACPP_SAMPLING = {"repeat_penalty": 1.0}
SERVER_KINDS = {"vllm": "vllm", "llamacpp": "llamacpp", "me": "llamacpp", "llama.cpp": "llamacpp"}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, once: an SSLContext is safe to share between clients."""
    return httpx.create_ssl_context()


class _Endpoint:
    """One server URL: a client per request in flight, each with its own single keep-alive connection.

    httpcore's pool walks every connection it holds (and polls each idle socket) whenever a request starts or
    ends: with one pool of 32 connections that is ~7 ms of CPU per request, more than the rest of a call. A
    request here takes an idle client (or makes one) and gives it back, so each pool holds one connection; the
    backend's semaphore bounds how many exist. The TLS context is built once per process and shared (loading the CA
    bundle takes ~70 ms of CPU).
    """

    def __init__(self, url: str, api_key: str, timeout_s: float):
        self.url = url.rstrip("/")
        self.display = display_url(self.url)  # what messages and trajectories show: no credentials
        self._api_key, self._timeout = api_key, httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._idle: list[openai.AsyncOpenAI] = []
        self._all: list[openai.AsyncOpenAI] = []

    def _new_client(self) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=self.url,
            api_key=self._api_key,
            timeout=self._timeout,
            max_retries=0,  # retries are ours: backoff with jitter, and endpoint rotation
            http_client=httpx.AsyncClient(verify=_tls_context(), limits=httpx.Limits(max_connections=1)),
        )
        self._all.append(client)
        return client

    @contextmanager
    def client(self) -> Iterator[openai.AsyncOpenAI]:
        client = self._idle.pop() if self._idle else self._new_client()
        try:
            yield client
        finally:
            self._idle.append(client)

    async def aclose(self) -> None:
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.close()


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(self, settings: LLMSettings, *, backoff_base_s: float = 0.5, backoff_cap_s: float = 8.0):
        if not settings.base_url:
            raise ValueError("the openai backend needs at least one base URL")
        self.settings = settings
        key = settings.api_key.get_secret_value() if settings.api_key else "EMPTY"
        self.endpoints = [_Endpoint(u, key, settings.timeout_s) for u in settings.base_url]
        self.pool = EndpointPool(self.endpoints, cooldown_s=settings.endpoint_cooldown_s)
        # Never echoed: a server may quote the rejected key, an error may quote the URL it failed on.
        self._secrets = [s for u in settings.base_url for s in url_secrets(u)]
        if settings.api_key:
            self._secrets.append(key)
        self._model = settings.model
        self._kind = None if settings.server_kind == "auto" else settings.server_kind
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._discover_lock: asyncio.Lock | None = None
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s

    @property
    def model(self) -> str:
        return self._model

    @property
    def server_kind(self) -> str | None:
        return self._kind

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            self._semaphores[loop] = asyncio.Semaphore(self.settings.concurrency)
        return self._semaphores[loop]

    async def list_models(self, endpoint: _Endpoint | None = None) -> list[dict[str, Any]]:
        """The models `endpoint` serves; without one, the first endpoint that answers (those in rotation first)."""
        if endpoint is not None:
            return await self._list_models(endpoint)
        candidates = self.pool.by_preference()
        for ep in candidates[:-1]:
            try:
                return await self._list_models(ep)
            except LLMUnavailable:
                continue
        return await self._list_models(candidates[-1])

    async def _list_models(self, ep: _Endpoint) -> list[dict[str, Any]]:
        try:
            with ep.client() as client:
                page = await client.models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as e:
            raise LLMUnavailable(ep.display, self._clean(_reason(e))) from None
        except openai.APIStatusError as e:
            raise LLMServerError(ep.display, e.status_code, self._clean(str(e.message))) from None
        return [m.model_dump() for m in page.data]

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def _discover(self) -> None:
        """Fill in the model name and server kind from /v1/models, once."""
        if self._model and self._kind:
            return
        if self._discover_lock is None:
            self._discover_lock = asyncio.Lock()
        async with self._discover_lock:
            if self._model and self._kind:
                return
            models = await self.list_models()
            if not self._model:
                if not models:
                    raise LLMServerError(self.endpoints[0].display, None, "the server lists no models")
                self._model = models[0]["id"]
            if not self._kind:
                owner = next((m.get("owned_by", "") for m in models if m["id"] == self._model), "")
                self._kind = SERVER_KINDS.get(str(owner).lower(), "openai")

    def _payload(self, request: LLMRequest) -> dict[str, Any]:
        """The request body of /chat/completions (what the SDK's `extra_body` would add is at the top level)."""
        kwargs = {"model": self._model, **chat_kwargs(request, self.settings)}
        if self._kind == "llamacpp":
            kwargs |= LLAMACPP_SAMPLING
        if request.json_schema is not None:
            schema = request.json_schema
            if self._kind == "vllm":
                kwargs["structured_outputs"] = {"json": schema}
            elif self._kind == "llamacpp":
                kwargs["response_format"] = {"type": "json_object", "schema": grammar_schema(schema)}
            else:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": schema},
                }
        return kwargs

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await self._discover()
        payload = self._payload(request)
        retries = 0
        async with self._semaphore():
            while True:
                with self.pool.lease() as lease:  # the failing endpoint sits out while we back off
                    ep = lease.endpoint
                    started = time.perf_counter()
                    try:
                        # A plain dict posted as is: the SDK's request transform and reply models cost more CPU
                        # than the rest of a call (openai_wire.py); errors and auth still come from the SDK.
                        with ep.client() as client:
                            body = await client.post("/chat/completions", body=payload, cast_to=bytes)
                        response = self._response(body, request, ep, time.perf_counter() - started, retries)
                    except (*RETRYABLE, *MALFORMED) as e:
                        lease.ok, error = False, e
                    except openai.APIStatusError as e:
                        raise LLMServerError(ep.display, e.status_code, self._clean(str(e.message))) from None
                    else:
                        lease.ok = True
                        return response
                if retries >= self.settings.max_retries:
                    raise _final_error(ep.display, error, self._clean) from None
                await asyncio.sleep(self._backoff(retries, error))
                retries += 1

    def _backoff(self, attempt: int, error: Exception) -> float:
        retry_after = getattr(getattr(error, "response", None), "headers", {}).get("retry-after")
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_cap_s)
            except ValueError:
                pass
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def _response(self, body: bytes, request: LLMRequest, ep: _Endpoint, latency: float, retries: int) -> LLMResponse:
        completion = parse_completion(body)
        if not completion.choices:
            raise LLMServerError(ep.display, None, "response has no choices")
        choice = completion.choices[0]
        message = choice.message
        raw = message.content or ""
        text, inline_reasoning = split_think(raw)
        usage = completion.usage
        return LLMResponse(
            text=text,
            raw_text=raw,
            reasoning=message.reasoning_content or message.reasoning or inline_reasoning,
            logprobs=(choice.logprobs.content or None) if choice.logprobs else None,
            finish_reason=choice.finish_reason,
            usage=Usage(
                prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
                completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            ),
            latency_s=latency,
            retries=retries,
            backend=self.name,
            model=completion.model or self._model,
            endpoint=ep.display,
            guided=request.json_schema is not None,
        )

    async def aclose(self) -> None:
        for ep in self.endpoints:
            await ep.aclose()


def _final_error(url: str, error: Exception, clean: Callable[[str], str]) -> LLMServerError | LLMUnavailable:
    if isinstance(error, openai.APIStatusError):
        return LLMServerError(url, error.status_code, clean(str(error.message)))
    if isinstance(error, ValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(map(str, first.get("loc", ()))) or "body"
        return LLMServerError(url, 200, clean(f"malformed response body ({where}: {first.get('msg', error)})"))
    if isinstance(error, MALFORMED):
        return LLMServerError(url, 200, clean(f"malformed response body ({error})"))
    return LLMUnavailable(url, clean(_reason(error)))


def _reason(error: Exception) -> str:
    if isinstance(error, openai.APITimeoutError):
        return "timed out"
    cause = error.__cause__ or error.__context__
    text = str(cause or error).strip() or type(error).__name__
    if "refused" in text.lower() or "connect" in text.lower() and "errno 111" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]
