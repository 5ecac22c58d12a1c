"""Fault-suite completion rate: batches against the fake OpenAI-compatible server injecting 429s, 500s,
timeouts, resets, malformed bodies, truncated streams and garbage at a rate. Reports the share of questions
that end with a row saying what happened (answer or explicit error), lost and duplicated rows, retries.

    .venv/bin/python -m bench.fault_suite [--questions 200] [--fault-rate 0.2] [--repeats 3] [--closed-book]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.stats import print_table, summary
from tests.fault_batch import run_faulty_batch

LIGHT_GRAPH = {"agent.selection": "fusion", "agent.max_rounds": 1}  # fewer calls per question, same fault paths


def run(questions: int = 200, fault_rate: float = 0.2, repeats: int = 3, closed_book: bool = False) -> dict:
    reports = []
    for seed in range(1, repeats + 1):
        with tempfile.TemporaryDirectory() as d:
            reports.append(asyncio.run(run_faulty_batch(
                Path(d), questions=questions, fault_rate=fault_rate, seed=seed, closed_book=closed_book,
                overrides=None if closed_book else LIGHT_GRAPH,
            )))  # fmt: skip
    return {
        "mode": "closed_book" if closed_book else "research",
        "questions": questions,
        "fault_rate": fault_rate,
        "completion_rate": summary([r.completion_rate for r in reports]),
        "answered_share": summary([r.terminations.get("answered", 0) / questions for r in reports]),
        "lost_rows": sum(r.lost for r in reports),
        "duplicated_rows": sum(r.duplicated for r in reports),
        "faults_injected": summary([sum(r.faults_injected.values()) for r in reports]),
        "calls_retried": summary([r.calls_retried for r in reports]),
        "seconds": summary([r.seconds for r in reports]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--closed-book", action="store_true", help="one LLM call per question instead of the graph")
    args = parser.parse_args()
    f = run(args.questions, args.fault_rate, args.repeats, args.closed_book)
    fmt = lambda s, p="": f"{s['median']:{p}} (min {s['min']:{p}}, max {s['max']:{p}})"  # noqa: E731
    print_table(
        f"Fault suite: {f['questions']} {f['mode']} questions at {f['fault_rate']:.0%} injected faults",
        [("completion rate", fmt(f["completion_rate"], ".1%")), ("answered", fmt(f["answered_share"], ".1%")),
         ("lost / duplicated rows", f"{f['lost_rows']} / {f['duplicated_rows']}"),
         ("faults injected", fmt(f["faults_injected"])), ("LLM calls retried", fmt(f["calls_retried"])),
         ("seconds", fmt(f["seconds"], ".1f"))],
    )  # fmt: skip


if __name__ == "__main__":
    main()
