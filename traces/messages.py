"""A trajectory as one chat sample: OpenAI messages with assistant `tool_calls` and `tool` results
(the shape TRL and vLLM chat templates take), or the same conversation in ShareGPT form.

The graph chooses tools through structured outputs; here consecutive calls of the same tool (the
queries of one round, the pages fetched together) become one assistant turn with parallel
`tool_calls`, answered by one `tool` message per call; a different tool starts a new turn, since it
usually depends on what the previous one returned. Reasoning of
the LLM calls that led to a turn is dropped, kept in `reasoning_content`, or inlined as <think>.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from deepsearch.prompts import load_prompt

from .schema import LLMCallStep, ToolCallStep, ToolSpec, Trajectory

ReasoningMode = Literal["drop", "field", "think"]
SYSTEM_PROMPT = {"closed_book": "closed_book"}  # mode -> prompt; research runs use sft_agent
DEFAULT_PROMPT = "sft_agent"


def used_llm_calls(traj: Trajectory) -> list[LLMCallStep]:
    """LLM calls whose output the run used: not failed, not rejected by the parser, not superseded."""
    superseded = {s.supersedes for s in traj.llm_calls() if s.supersedes is not None}
    return [s for s in traj.llm_calls() if s.error is None and s.accepted is not False and s.index not in superseded]


def _with_reasoning(message: dict[str, Any], reasoning: list[str], mode: ReasoningMode) -> dict[str, Any]:
    text = "\n\n".join(r.strip() for r in reasoning if r and r.strip())
    if not text or mode == "drop":
        return message
    if mode == "field":
        return {**message, "reasoning_content": text}
    return {**message, "content": f"<think>\n{text}\n</think>\n\n{message['content']}".rstrip()}


def tool_result_text(step: ToolCallStep, traj: Trajectory, max_chars: int) -> str:
    """What the model sees from a tool: the results as JSON, page texts cut to `max_chars`."""
    if not step.success:
        return json.dumps({"error": step.error or "failed"}, ensure_ascii=False)
    results = []
    for r in step.results:
        item = r.model_dump(exclude_none=True, exclude={"content_hash"})
        content = traj.contents.get(r.content_hash) if r.content_hash else None
        if content is not None:
            item["text"] = content.text[:max_chars]
        results.append(item)
    return json.dumps(results, ensure_ascii=False)


def _spec(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def tool_specs(traj: Trajectory) -> list[dict[str, Any]]:
    """The declared tools, plus a schema inferred from the arguments of any tool used without one."""
    specs = {t.name: _spec(t) for t in traj.tools}
    for step in traj.tool_calls():
        if step.tool not in specs:
            props = {k: {"type": _json_type(v)} for k, v in step.arguments.items()}
            specs[step.tool] = _spec(ToolSpec(name=step.tool, parameters={"type": "object", "properties": props}))
    return list(specs.values())


def _json_type(value: Any) -> str:
    for py, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array")):
        if isinstance(value, py):
            return name
    return "object"


def final_text(traj: Trajectory) -> str:
    assert traj.final is not None
    sources = "\n".join(f"[{c.n}] {c.source}" for c in traj.final.citations)
    return f"{traj.final.answer}\n\nSources:\n{sources}" if sources else traj.final.answer


def to_messages(traj: Trajectory, *, reasoning: ReasoningMode = "drop", max_tool_chars: int = 4000) -> dict[str, Any]:
    """One finished trajectory as {"id", "messages", "tools"}; the last message is the final answer."""
    if traj.final is None:
        raise ValueError(f"trajectory {traj.id} has no final answer")
    prompt = load_prompt(SYSTEM_PROMPT.get(traj.mode, DEFAULT_PROMPT))
    messages: list[dict[str, Any]] = prompt.render(question=traj.resolved_question or traj.question)
    used = {s.index for s in used_llm_calls(traj)}
    thoughts: list[str] = []
    steps = traj.steps
    i = 0
    while i < len(steps):
        step = steps[i]
        if isinstance(step, LLMCallStep) and step.index in used and step.reasoning:
            thoughts.append(step.reasoning)
        if not isinstance(step, ToolCallStep):
            i += 1
            continue
        group: list[ToolCallStep] = []
        while i < len(steps) and isinstance(steps[i], ToolCallStep) and steps[i].tool == step.tool:
            group.append(steps[i])  # type: ignore[arg-type]
            i += 1
        calls = [
            {
                "id": f"call_{s.index}",
                "type": "function",
                "function": {"name": s.tool, "arguments": json.dumps(s.arguments, ensure_ascii=False)},
            }
            for s in group
        ]
        messages.append(_with_reasoning({"role": "assistant", "content": "", "tool_calls": calls}, thoughts, reasoning))
        thoughts = []
        messages += [
            {
                "role": "tool",
                "tool_call_id": f"call_{s.index}",
                "name": s.tool,
                "content": tool_result_text(s, traj, max_tool_chars),
            }
            for s in group
        ]
    messages.append(_with_reasoning({"role": "assistant", "content": final_text(traj)}, thoughts, reasoning))
    return {"id": traj.id, "messages": messages, "tools": tool_specs(traj)}


_SHAREGPT_FROM = {"user": "human", "assistant": "gpt"}


def to_sharegpt(sample: dict[str, Any]) -> dict[str, Any]:
    """ShareGPT (LLaMA-Factory flavour): system apart, `function_call` / `observation` turns for tools.

    Parallel calls become one function_call turn holding a JSON list and one observation turn holding
    the list of results, keeping the human/gpt alternation. Reasoning before a call has no place in
    this format and is left out; reasoning of the final answer stays inlined when it was.
    """
    system = ""
    turns: list[dict[str, str]] = []
    observations: list[str] = []
    for m in sample["messages"]:
        if m["role"] == "tool":
            observations.append(m["content"])
            continue
        if observations:
            value = observations[0] if len(observations) == 1 else json.dumps(observations, ensure_ascii=False)
            turns.append({"from": "observation", "value": value})
            observations = []
        if m["role"] == "system":
            system = m["content"]
        elif m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in m["tool_calls"]
            ]
            value = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
            turns.append({"from": "function_call", "value": value})
        else:
            turns.append({"from": _SHAREGPT_FROM[m["role"]], "value": m["content"]})
    return {"id": sample["id"], "system": system, "conversations": turns, "tools": json.dumps(sample["tools"])}
