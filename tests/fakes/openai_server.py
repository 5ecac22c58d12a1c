"""A fake OpenAI-compatible server (vLLM-flavoured) on 127.0.0.1 for tests and benchmarks.

A real HTTP peer: /v1/models and /v1/chat/completions with response_format json_schema, vLLM's
`structured_outputs`, llama.cpp's json_object+schema, logprobs/top_logprobs, reasoning_content and
SSE streaming. Faults (429, 500, timeout, connection reset, malformed JSON body, truncated stream,
garbage content) are injected on a schedule: by request number, or at a seeded rate.

A responder returns the content, or a dict with `content`, optionally `reasoning`, and `logprob`: one
log-probability for every token of this reply (a model sure or unsure of its answer); without it tokens
get a fixed pattern near -0.1. `prompt_tokens` (a callable over the messages) replaces the word count.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FAULTS = ("429", "500", "timeout", "reset", "malformed_body", "truncated_stream", "garbage")

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


def instance_from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A small value that validates against `schema` (objects fill required fields)."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return instance_from_schema(root.get("$defs", {}).get(name, {}), root)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return instance_from_schema(options[0], root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: instance_from_schema(props[k], root) for k in schema.get("required", props.keys())}
    if kind == "array":
        n = max(1, schema.get("minItems", 1))
        return [instance_from_schema(schema.get("items", {"type": "string"}), root) for _ in range(n)]
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    return "fake"


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    if fmt.get("type") == "json_object" and "schema" in fmt:
        return fmt["schema"]
    return (body.get("structured_outputs") or {}).get("json")


def default_responder(body: dict[str, Any]) -> str:
    schema = requested_schema(body)
    if schema is not None:
        return json.dumps(instance_from_schema(schema))
    last = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    return f"fake answer to: {last[:40]}"


class FakeOpenAIServer:
    """Use as a context manager; `base_url` is http://127.0.0.1:PORT/v1."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        owned_by: str = "vllm",
        responder: Responder | None = None,
        latency_s: float = 0.0,
        reasoning: str | None = None,
        faults: dict[int, str] | None = None,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = FAULTS,
        seed: int = 0,
        timeout_sleep_s: float = 3.0,
        api_key: str | None = None,
        prompt_tokens: Callable[[list[dict[str, Any]]], int] | None = None,
    ):
        self.model, self.owned_by = model, owned_by
        self.responder = responder or default_responder
        self.latency_s, self.reasoning = latency_s, reasoning
        self.faults = dict(faults or {})
        self.fault_rate, self.fault_kinds = fault_rate, fault_kinds
        self._rng = random.Random(seed)
        self.timeout_sleep_s = timeout_sleep_s
        self.api_key = api_key
        self.prompt_tokens = prompt_tokens
        self.auth_error = "invalid api key"  # the 401 message (real servers may quote the rejected key)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.injected: list[str] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- behaviour --------------------------------------------------------------------------
    def _next_fault(self) -> str | None:
        with self._lock:
            n = len(self.requests)  # 1-based number of the request being served
            fault = self.faults.get(n)
            if fault is None and self.fault_rate and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.fault_kinds)
            if fault:
                self.injected.append(fault)
            return fault

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: 32 clients connecting at once overflow it and the kernel drops their SYNs,
    # which the clients resend only after a second (vLLM's uvicorn listens with a backlog of 2048).
    request_queue_size = 1024


def _tokens(text: str) -> list[str]:
    out, word = [], ""
    for ch in text:
        word += ch
        if ch in ' ,.:{}[]"':
            out.append(word)
            word = ""
    return [*out, word] if word else out


def _logprobs(tokens: list[str], k: int, fixed: float | None = None) -> dict[str, Any]:
    content = []
    for i, tok in enumerate(tokens):
        lp = -0.05 * (i % 3 + 1) if fixed is None else fixed
        # A sure token leaves its alternatives far behind; an unsure one has close rivals (high entropy).
        gap = 2.0 if fixed is None or fixed > -1.0 else 0.1
        top = [{"token": tok, "logprob": lp, "bytes": None}]
        top += [{"token": f"alt{j}", "logprob": lp - gap - j * gap / 2, "bytes": None} for j in range(max(0, k - 1))]
        content.append({"token": tok, "logprob": lp, "bytes": None, "top_logprobs": top[:k]})
    return {"content": content}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send_json(self, status: int, payload: Any, raw: bytes | None = None, headers: dict | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.fake.api_key and self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            self._send_json(401, {"error": {"message": self.fake.auth_error, "type": "auth"}})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": self.fake.model, "object": "model", "created": 0, "owned_by": self.fake.owned_by}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "not found"}})
            return
        fake = self.fake
        with fake._lock:
            fake.requests.append(body)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
        fault = fake._next_fault()
        fake._enter()
        try:
            self._complete(body, fault)
        finally:
            fake._leave()

    def _complete(self, body: dict[str, Any], fault: str | None) -> None:
        fake = self.fake
        if fake.latency_s:
            time.sleep(fake.latency_s)
        if fault == "429":
            self._send_json(
                429, {"error": {"message": "rate limited", "type": "rate_limit"}}, headers={"Retry-After": "0"}
            )
            return
        if fault == "500":
            self._send_json(500, {"error": {"message": "injected server error", "type": "server"}})
            return
        if fault == "timeout":
            time.sleep(fake.timeout_sleep_s)
            self.close_connection = True
            return
        if fault == "reset":
            # SO_LINGER 0 makes close() send RST: the client sees a connection reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault == "malformed_body":
            self._send_json(200, None, raw=b'{"id": "x", "choices": [{"message": ')
            return

        reply = fake.responder(body)
        reply = {"content": reply} if isinstance(reply, str) else dict(reply)
        content = "I am sure }{ this is not JSON" if fault == "garbage" else reply.get("content", "")
        reasoning = reply.get("reasoning", fake.reasoning)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        tokens = _tokens(content)
        finish = "stop"
        if max_tokens and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
            content = "".join(tokens)
        k = int(body.get("top_logprobs") or 1)
        logprobs = _logprobs(tokens, k, reply.get("logprob")) if body.get("logprobs") else None
        messages = body.get("messages", [])
        if fake.prompt_tokens is not None:
            prompt_tokens = fake.prompt_tokens(messages)
        else:
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        if body.get("stream"):
            self._stream(tokens, reasoning, finish, usage, truncated=fault == "truncated_stream")
            return
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        self._send_json(
            200,
            {
                "id": f"chatcmpl-{len(fake.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": fake.model,
                "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _stream(self, tokens: list[str], reasoning: str | None, finish: str, usage: dict, truncated: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            payload = {
                "id": "chatcmpl-stream",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.fake.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if reasoning:
            chunk({"reasoning_content": reasoning})
        cut = len(tokens) // 2 if truncated else len(tokens)
        for tok in tokens[:cut]:
            chunk({"content": tok})
        if truncated:
            return  # connection closes without finish_reason or [DONE]
        chunk({}, finish, usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()



class FakeOpenAIServerProcess:
    """A FakeOpenAIServer in a child process, so that its CPU (and its share of the GIL) is not the caller's.

    `responder_factory` is "module:function", a function of no arguments that returns the responder; it runs in
    the child, a fresh interpreter (`python -m tests.fakes.openai_server`) with the caller's sys.path, so nothing
    of the caller's state crosses. Other keyword arguments go to FakeOpenAIServer (JSON values only). Use as a
    context manager; `base_url` as for FakeOpenAIServer, `pid` the child's, `requests` (a count) once stopped.
    """

    def __init__(self, responder_factory: str | None = None, **kwargs: Any):
        self.factory = responder_factory or f"{__name__}:_default_responder_factory"
        self.kwargs = kwargs
        self.base_url = ""
        self.requests = 0
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> FakeOpenAIServerProcess:
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.openai_server", self.factory, json.dumps(self.kwargs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self._process.kill()
            raise RuntimeError(f"the fake server process did not start (exit {self._process.wait()})")
        self.base_url = line
        self.pid = self._process.pid
        return self

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (user + system), where /proc tells it (Linux); else None."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc) -> None:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.close()  # the child's signal to stop
            count = process.stdout.readline().strip()
            self.requests = int(count) if count.isdigit() else self.requests
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _default_responder_factory() -> Responder:
    return default_responder


def _serve(factory: str, kwargs: dict[str, Any]) -> None:
    module, _, name = factory.partition(":")
    responder = getattr(importlib.import_module(module), name)()
    with FakeOpenAIServer(responder=responder, **kwargs) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or goes away)
        print(len(server.requests), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
