"""Per-role supervised pairs and preference pairs from the LLM calls of a trajectory.

Role pairs (TRL prompt-completion form): the exact messages a role was sent and the output the run
accepted; a structured output the parser had to repair is emitted as the canonical JSON of the
accepted value, so the training target is what the model should have written.

Preference pairs exist where a run made them: a parse retry (the failed first reply vs the accepted
retry, both answers to the first prompt) and a revision (an output the verifier rejected vs the call
that superseded it, on the rejected call's prompt).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .messages import ReasoningMode, used_llm_calls
from .schema import LLMCallStep, Trajectory


def accepted_output(step: LLMCallStep) -> str:
    if step.status == "repaired" and step.parsed is not None:
        return json.dumps(step.parsed, ensure_ascii=False)
    return step.output or ""


def _completion(text: str, reasoning: str | None, mode: ReasoningMode) -> list[dict[str, str]]:
    message = {"role": "assistant", "content": text}
    if reasoning and mode == "think":
        message["content"] = f"<think>\n{reasoning.strip()}\n</think>\n\n{text}"
    elif reasoning and mode == "field":
        message["reasoning_content"] = reasoning
    return [message]


def role_pairs(
    traj: Trajectory, *, reasoning: ReasoningMode = "drop", roles: set[str] | None = None
) -> Iterator[dict[str, Any]]:
    for step in used_llm_calls(traj):
        if roles and step.role not in roles:
            continue
        yield {
            "role": step.role,
            "prompt": [m.model_dump() for m in step.messages],
            "completion": _completion(accepted_output(step), step.reasoning, reasoning),
            "meta": {"trace_id": traj.id, "step": step.index, "status": step.status or "text"},
        }


def preference_pairs(traj: Trajectory, *, reasoning: ReasoningMode = "drop") -> Iterator[dict[str, Any]]:
    calls = {s.index: s for s in traj.llm_calls()}
    superseded = {s.supersedes for s in calls.values() if s.supersedes is not None}
    for chosen in calls.values():
        if chosen.error is not None or chosen.accepted is False or chosen.index in superseded:
            continue
        for kind, rejected_index in (("parse_retry", chosen.retry_of), ("revision", chosen.supersedes)):
            rejected = calls.get(rejected_index) if rejected_index is not None else None
            if rejected is None or rejected.raw_output is None or rejected.role != chosen.role:
                continue
            yield {
                "role": chosen.role,
                "prompt": [m.model_dump() for m in rejected.messages],
                "chosen": _completion(accepted_output(chosen), chosen.reasoning, reasoning),
                "rejected": _completion(rejected.output or rejected.raw_output, rejected.reasoning, reasoning),
                "meta": {
                    "trace_id": traj.id,
                    "kind": kind,
                    "chosen_step": chosen.index,
                    "rejected_step": rejected.index,
                },
            }
