"""Recorder overhead per step (µs): each step kind written through the public API, redaction on.

Baseline: the same event dict serialised with json.dumps and appended with one os.write, i.e. what
any JSONL logger pays; the ratio shows what validation and redaction add on top.

    .venv/bin/python -m bench.traces_recorder [--steps 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from deepsearch.agent.llm.types import ChatMessage, LLMRequest, LLMResponse, Usage
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.redact import Redactor
from deepsearch.traces.schema import Header

from bench.stats import print_table, summary

SYSTEM = "You are the query rewriter of a research agent. Rewrite the sub-goal into 3 web queries. " * 8
REQUEST = LLMRequest(
    messages=[ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content="Sub-goal: who founded X?")],
    role="query_rewriter",
    max_tokens=256,
)
RESPONSE = LLMResponse(
    text='{"queries": ["x founder", "x founded by", "history of x"]}',
    raw_text='{"queries": ["x founder", "x founded by", "history of x"]}',
    usage=Usage(prompt_tokens=220, completion_tokens=18),
    latency_s=0.4,
    backend="openai",
    model="m",
)
HITS = [
    {"id": f"e{k}", "url": f"https://example.org/{k}", "title": f"Result {k}", "score": 1 / (k + 1)} for k in range(8)
]
CANDIDATES = [
    {"id": f"e{k}", "score": 1 / (k + 1), "rationale": "mentions the founder", "kept": k < 3, "reason": "cutoff"}
    for k in range(8)
]


def _kinds(rec: TraceRecorder) -> dict:
    return {
        "llm_call": lambda: rec.llm_call(REQUEST, RESPONSE, subgoal="sg1", round=1),
        "tool_call": lambda: rec.tool_call("web_search", {"query": "x founder"}, results=HITS, subgoal="sg1"),
        "rerank": lambda: rec.step("rerank", query="x founder", candidates=CANDIDATES, cutoff=0.3, subgoal="sg1"),
        "judge": lambda: rec.step("judge", target="sg1", labels={"correct": True}, decision="done"),
        "budget": lambda: rec.step("budget", used={"llm_calls": 3, "tokens": 1200}, limits={"llm_calls": 40}),
    }


def _baseline_us(directory: Path, steps: int) -> float:
    event = {
        "ev": "step",
        "seq": 0,
        "step": {
            "kind": "llm_call",
            "messages": [m.model_dump() for m in REQUEST.messages],
            "raw_output": RESPONSE.raw_text,
        },
    }
    fd = os.open(directory / "baseline.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for i in range(steps):
        event["seq"] = i
        os.write(fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed / steps * 1e6


def _per_kind_us(directory: str, redactor: Redactor, steps: int, repeats: int) -> dict[str, float]:
    per_kind: dict[str, list[float]] = {}
    for _ in range(repeats):
        rec = TraceRecorder.start(directory, Header(question="bench"), redactor=redactor)
        for kind, record in _kinds(rec).items():
            start = time.perf_counter()
            for _ in range(steps):
                record()
            per_kind.setdefault(kind, []).append((time.perf_counter() - start) / steps * 1e6)
        rec.finish("done", termination="answered")
    medians = {k: summary(v)["median"] for k, v in per_kind.items()}
    return medians | {"per_step": summary(list(medians.values()))["median"]}


def run(steps: int = 2000, repeats: int = 5) -> dict:
    """Median µs per step by kind: default redaction (API key + built-ins) and with a configured pattern."""
    secret = "sk-bench-secret-000000"
    with tempfile.TemporaryDirectory() as tmp:
        default = _per_kind_us(tmp, Redactor(secrets=[secret]), steps, repeats)
        patterned = _per_kind_us(tmp, Redactor(secrets=[secret], patterns=[r"ACME-\d+"]), steps, repeats)
        baseline = summary([_baseline_us(Path(tmp), steps) for _ in range(repeats)])["median"]
    figures = {f"recorder_overhead_us_{k}": v for k, v in default.items()}
    figures |= {f"recorder_overhead_us_{k}_with_pattern": v for k, v in patterned.items()}
    figures["plain_jsonl_write_us"] = baseline
    figures["recorder_vs_plain_ratio"] = default["llm_call"] / baseline
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps of each kind per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    f = run(args.steps, args.repeats)
    kinds = [k.removeprefix("recorder_overhead_us_") for k in f if k.startswith("recorder_o") and "pattern" not in k]
    rows = [
        (
            k,
            f"{f[f'recorder_overhead_us_{k}']:.1f} µs (with a configured pattern: "
            f"{f[f'recorder_overhead_us_{k}_with_pattern']:.1f} µs)",
        )
        for k in kinds
    ]
    rows += [
        ("plain json line + write", f"{f['plain_jsonl_write_us']:.1f} µs"),
        ("llm_call vs plain", f"{f['recorder_vs_plain_ratio']:.1f}x"),
    ]
    print_table(f"recorder overhead per step (median of {args.repeats} x {args.steps} steps per kind)", rows)


if __name__ == "__main__":
    main()
