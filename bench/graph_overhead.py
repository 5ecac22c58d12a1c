"""The research graph's own costs, with a scripted model and instant tools.

- orchestration overhead per graph step (zero-latency model and tools), checkpointing on and off;
- its share of wall time when every LLM call takes 200 ms (the fake OpenAI-compatible server, in a child process so
  that its own CPU and its share of the GIL are not counted as the graph's);
- critical-path speed-up: 3 independent sub-goals vs the same run forced sequential (a dependency chain);
- prefix reuse: share of prompt tokens that repeat a prefix of an earlier call in the same run.

    python -m bench.graph_overhead [--runs 5] [--latency-ms 200] [--trace PATH ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from deepsearch.agent.config import LLMSettings
from deepsearch.agent.events import NodeEvent
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from deepsearch.agent.research_tools import ResearchTools
from deepsearch.agent.run import aresearch
from deepsearch.agent.tokens import encoding
from deepsearch.tools.rerank.models import Candidate

from bench.stats import print_table, summary
from tests.fakes.openai_server import FakeOpenAIServerProcess
from tests.graph_support import ScriptedModel, fake_backend, server_responder, settings_for

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
PASSAGES = [
    ("Shirley Temple", "Shirley Temple Black was an American actress and diplomat who served as Chief of Protocol."),
    ("Kiss and Tell", "Kiss and Tell is a 1945 film starring Shirley Temple as Corliss Archer."),
    ("Janet Waldo", "Janet Waldo was an American radio actress who voiced Corliss Archer on the radio."),
]


class InstantTools(ResearchTools):
    """Search that answers at once with the same passages (no index, no I/O)."""

    def __init__(self):
        super().__init__({}, None, None, local_k=3, web_pages=0)
        self.web_unavailable = None

    async def search(self, queries, source, subgoal_id):
        self._count("searches")
        return [
            Candidate(id=f"{subgoal_id}-{i}-{q[:20]}", title=t, text=x, source=f"mem://{t}", prior_score=1 / (i + 1))
            for q in queries
            for i, (t, x) in enumerate(PASSAGES)
        ]


def _plan(steps: list[tuple[str, list[int]]]):
    def planner(request):
        if "Plan and results" in request.messages[-1].content:
            return {"changes": []}
        return {"subgoals": [{"question": q, "depends_on": d, "source": "local"} for q, d in steps]}

    return planner


ONE = [(QUESTION, [])]
THREE_PARALLEL = [("Who played Corliss Archer?", []), ("What is Kiss and Tell?", []), ("Who was Janet Waldo?", [])]
THREE_CHAINED = [("Who played Corliss Archer?", []), ("What is Kiss and Tell?", [1]), ("Who was Janet Waldo?", [2])]


async def _run(tmp: Path, steps, backend=None, checkpoint=True, latency_s=0.0):
    model = ScriptedModel(planner=_plan(steps))
    nodes = []
    started = time.perf_counter()
    result = await aresearch(
        QUESTION, settings=settings_for(tmp), backend=backend or fake_backend(model, latency_s=latency_s),
        tools=InstantTools(), checkpoint=checkpoint,
        on_event=lambda e: nodes.append(e) if isinstance(e, NodeEvent) and e.phase == "started" else None,
    )  # fmt: skip
    wall = time.perf_counter() - started
    research_branches = len(result.subgoals)
    return wall, len(nodes) + research_branches, result


def scripted_responder():
    """The server's responder for the one-sub-goal run (built in the server's process)."""
    return server_responder(ScriptedModel(planner=_plan(ONE)))


def prefix_reuse(prompts: list[str]) -> float:
    """Share of prompt tokens that repeat the longest token prefix of some earlier prompt."""
    enc = encoding()
    seen: list[list[int]] = []
    reused = total = 0
    for text in prompts:
        ids = enc.encode(text, disallowed_special=())
        best = 0
        for earlier in seen:
            n = 0
            for a, b in zip(ids, earlier, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        reused += best
        total += len(ids)
        seen.append(ids)
    return reused / total if total else 0.0


def prompts_of_trace(path: Path) -> list[str]:
    prompts = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        step = event.get("step") or {}
        if event.get("ev") == "step" and step.get("kind") == "llm_call":
            prompts.append("".join(f"<{m['role']}>{m['content']}" for m in step["messages"]))
    return prompts


async def _measure(runs: int, latency_s: float) -> dict:
    figures: dict = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for checkpoint in (False, True):
            per_step = []
            for _ in range(runs):
                wall, steps, _ = await _run(tmp, ONE, checkpoint=checkpoint)
                per_step.append(wall / steps * 1000)
            figures[f"overhead_per_step_ms{'_checkpointed' if checkpoint else ''}"] = summary(per_step)

        shares = []
        with FakeOpenAIServerProcess("bench.graph_overhead:scripted_responder", latency_s=latency_s) as server:
            backend = OpenAIBackend(LLMSettings(base_url=[server.base_url], model="fake-model", server_kind="vllm"))
            for _ in range(runs):
                wall, _, result = await _run(tmp, ONE, backend=backend)
                calls = result.usage.llm_calls  # every call is on the critical path (one sub-goal)
                shares.append((wall - calls * latency_s) / wall)
            await backend.aclose()
        figures["overhead_share_at_latency"] = summary(shares)
        figures["llm_calls_per_run"] = result.usage.llm_calls

        parallel, chained = [], []
        for _ in range(runs):
            parallel.append((await _run(tmp, THREE_PARALLEL, latency_s=latency_s))[0])
            chained.append((await _run(tmp, THREE_CHAINED, latency_s=latency_s))[0])
        figures["three_subgoals_parallel_s"] = summary(parallel)
        figures["three_subgoals_sequential_s"] = summary(chained)
        figures["critical_path_speedup"] = summary([c / p for c, p in zip(chained, parallel, strict=True)])

        traces = sorted((tmp / "traces" / "runs").glob("*.jsonl"))
        figures["prefix_reuse_fake_run"] = prefix_reuse(prompts_of_trace(traces[-1]))
    return figures


def run(runs: int = 5, latency_ms: float = 200.0, traces: list[Path] | None = None) -> dict:
    figures = asyncio.run(_measure(runs, latency_ms / 1000))
    for path in traces or []:
        figures[f"prefix_reuse:{path.name}"] = prefix_reuse(prompts_of_trace(path))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=200.0, help="per LLM call, for the share and speed-up")
    parser.add_argument("--trace", type=Path, action="append", help="also measure prefix reuse in this trajectory")
    args = parser.parse_args()
    f = run(args.runs, args.latency_ms, args.trace)

    def fmt(s: dict, unit: str = "", scale: float = 1.0) -> str:
        low, high = s["min"] * scale, s["max"] * scale
        return f"median {s['median'] * scale:.2f}{unit} (min {low:.2f}, max {high:.2f}, n={s['n']})"

    rows = [
        ("graph overhead per step", fmt(f["overhead_per_step_ms"], " ms")),
        ("  with sqlite checkpoints", fmt(f["overhead_per_step_ms_checkpointed"], " ms")),
        (f"overhead share of wall @ {args.latency_ms:.0f} ms/call", fmt(f["overhead_share_at_latency"], " %", 100)),
        ("3 independent sub-goals", fmt(f["three_subgoals_parallel_s"], " s")),
        ("same, forced sequential", fmt(f["three_subgoals_sequential_s"], " s")),
        ("critical-path speed-up", fmt(f["critical_path_speedup"], "×")),
        ("prefix reuse (scripted run)", f"{f['prefix_reuse_fake_run'] * 100:.1f} % of prompt tokens"),
    ]
    rows += [(k, f"{v * 100:.1f} % of prompt tokens") for k, v in f.items() if k.startswith("prefix_reuse:")]
    print_table("research graph", rows)


if __name__ == "__main__":
    main()
