"""LLM client overhead per call against the fake OpenAI-compatible server, excluding the server's sleep.

Compares the deepsearch openai backend (and a full structured-output call) with a bare httpx POST of
the same request, so the server's own cost cancels out.

    python -m bench.llm_client_overhead [--calls 200] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm import ChatMessage, LLMClient, LLMRequest, generate_structured
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from pydantic import BaseModel

from bench.stats import print_table, summary
from tests.fakes.openai_server import FakeOpenAIServer


class Answer(BaseModel):
    answer: str
    confidence: float


MESSAGES = [ChatMessage(role="user", content="What is the capital of France?")]


async def _measure(calls: int, latency_s: float) -> dict[str, dict[str, float]]:
    with FakeOpenAIServer(latency_s=latency_s) as server:
        backend = OpenAIBackend(LLMSettings(base_url=[server.base_url], model="fake-model", server_kind="vllm"))
        client = LLMClient(backend)
        request = LLMRequest(messages=MESSAGES, max_tokens=32)
        body = {"model": "fake-model", "messages": [m.model_dump() for m in MESSAGES], "max_tokens": 32}
        bare, ours, structured = [], [], []
        async with httpx.AsyncClient() as http:
            for _ in range(5):  # warm up connections and discovery
                await client.complete(request)
                await http.post(f"{server.base_url}/chat/completions", json=body)
            for _ in range(calls):
                t = time.perf_counter()
                r = await http.post(f"{server.base_url}/chat/completions", json=body)
                json.loads(r.content)
                bare.append(time.perf_counter() - t - latency_s)
                t = time.perf_counter()
                await client.complete(request)
                ours.append(time.perf_counter() - t - latency_s)
                t = time.perf_counter()
                await generate_structured(
                    client, MESSAGES, Answer, role="bench", fallback=Answer(answer="", confidence=0)
                )
                structured.append(time.perf_counter() - t - latency_s)
        await backend.aclose()
    ms = {
        name: summary([x * 1000 for x in xs])
        for name, xs in (("bare_httpx_ms", bare), ("backend_ms", ours), ("structured_ms", structured))
    }
    ms["client_overhead_ms"] = {"median": ms["backend_ms"]["median"] - ms["bare_httpx_ms"]["median"]}
    return ms


def run(calls: int = 200, latency_ms: float = 20.0) -> dict:
    figures = asyncio.run(_measure(calls, latency_ms / 1000))
    figures["ratio_backend_to_bare"] = figures["backend_ms"]["median"] / max(figures["bare_httpx_ms"]["median"], 1e-9)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the fake server's sleep per call")
    args = parser.parse_args()
    f = run(args.calls, args.latency_ms)

    def fmt(s: dict) -> str:
        return f"median {s['median']:.2f} ms (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"

    print_table(
        f"LLM client overhead per call, server sleep {args.latency_ms:.0f} ms excluded",
        [
            ("bare httpx POST", fmt(f["bare_httpx_ms"])),
            ("openai backend", fmt(f["backend_ms"])),
            ("structured output call", fmt(f["structured_ms"])),
            ("backend − bare (median)", f"{f['client_overhead_ms']['median']:.2f} ms"),
            ("ratio backend / bare", f"{f['ratio_backend_to_bare']:.2f}×"),
        ],
    )


if __name__ == "__main__":
    main()
