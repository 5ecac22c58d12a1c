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
import re
from typing import Any, Literal

from deepsearch.agent.report.markdown import SOURCES_HEADING as REPORT_SOURCES
from deepsearch.prompts import load_prompt

from .reading import Passage, Round, rounds
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
    """A tool's results as JSON, page texts cut to `max_chars`: for logs recorded before the passages the model
    was shown were kept (their tool turns cannot hold what the model read; the export flags them)."""
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


def _read_result(step: ToolCallStep, passages: list[tuple[int, Passage]], max_chars: int) -> str:
    """What a tool returned as the model read it: the passages it brought, numbered across the conversation,
    with their text as the agent's prompt showed it; a web search also lists its results."""
    if not step.success:
        return json.dumps({"error": step.error or "failed"}, ensure_ascii=False)
    body: dict[str, Any] = {}
    if step.tool == "web_search":
        body["results"] = [{"title": r.title, "url": r.url, "snippet": r.snippet} for r in step.results]
    elif step.tool == "fetch_page":
        page = step.results[0] if step.results else None
        body |= {"url": page.url if page else step.arguments.get("url"), "title": page.title if page else None}
    body["passages"] = [
        {"n": n, "title": p.title, "source": p.source, "text": p.text[:max_chars] if max_chars else p.text}
        for n, p in passages
    ]
    return json.dumps(body, ensure_ascii=False)


def _call_turn(calls: list[ToolCallStep]) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"call_{s.index}", "type": "function",
         "function": {"name": s.tool, "arguments": json.dumps(s.arguments, ensure_ascii=False)}}
        for s in calls
    ]}  # fmt: skip


def _result_turn(step: ToolCallStep, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": f"call_{step.index}", "name": step.tool, "content": content}


def _thoughts_before(traj: Trajectory, used: set[int], until: int, since: int) -> list[str]:
    return [s.reasoning for s in traj.llm_calls() if since <= s.index < until and s.index in used and s.reasoning]


_CITE = re.compile(r"\[(\d+)\]")


def _final(traj: Trajectory, numbers: dict[str, int] | None) -> tuple[str, list[str]]:
    """The answer with its citations as the conversation's passage numbers, its sources list, and what does
    not resolve (a citation whose passage no earlier tool turn holds). `numbers`: evidence id -> n (None:
    a log without shown passages, whose citations stay as the answerer wrote them and cannot be checked)."""
    assert traj.final is not None
    final, problems = traj.final, []
    body = final.answer
    if any(s.kind == "report" for s in traj.steps):  # a report: its own sources list and footer (trace id) go,
        body = body.split(REPORT_SOURCES)[0].rstrip()  # the conversation's numbering replaces them
    mapped: dict[int, int] = {}
    for c in final.citations:
        if numbers is None:
            mapped[c.n] = c.n
        elif c.evidence_id in numbers:
            mapped[c.n] = numbers[c.evidence_id]
        else:
            problems.append(f"citation [{c.n}] ({c.source}): its passage is in no tool result")
    if numbers is None and final.citations:
        problems.append("recorded without the passages the model was shown: citations cannot be checked")
    answer = _CITE.sub(lambda m: f"[{mapped[int(m[1])]}]" if int(m[1]) in mapped else m[0], body)
    problems += [f"[{n}] in the answer names no citation" for n in map(int, _CITE.findall(body))
                 if n not in mapped]  # fmt: skip
    sources = "\n".join(f"[{mapped[c.n]}] {c.source}" for c in final.citations if c.n in mapped)
    return (f"{answer}\n\nSources:\n{sources}" if sources else answer), problems


def _quote_shown(quote: str, passage: str) -> bool:
    """The citation's quote is words of the passage as shown (the quote may be cut short with "…")."""
    q = " ".join(quote.split()).removesuffix("…").strip()
    return not q or q in " ".join(passage.split())


def to_messages(traj: Trajectory, *, reasoning: ReasoningMode = "drop", max_tool_chars: int = 4000) -> dict[str, Any]:
    """One finished trajectory as {"id", "messages", "tools", "grounding"}; the last message is the final answer.

    Each research round is an assistant turn calling its searches (parallel `tool_calls`), their results, then
    a turn calling the page fetches they led to, and theirs. Every passage the model was shown appears once,
    numbered n in conversation order, in the result of the call that brought it, with its text as the prompt
    showed it; the answer's citations are renumbered to those n. `grounding` lists what does not resolve:
    a citation whose passage no tool turn holds, or whose quote is not in that passage's text.
    """
    if traj.final is None:
        raise ValueError(f"trajectory {traj.id} has no final answer")
    prompt = load_prompt(SYSTEM_PROMPT.get(traj.mode, DEFAULT_PROMPT))
    messages: list[dict[str, Any]] = prompt.render(question=traj.resolved_question or traj.question)
    used = {s.index for s in used_llm_calls(traj)}
    read = rounds(traj)
    numbers: dict[str, int] | None = None if read is None else {}
    shown_text: dict[int, str] = {}
    since = 0
    for turn_calls, attached in _turns(traj, read):
        thoughts = _thoughts_before(traj, used, turn_calls[0].index, since)
        since = turn_calls[-1].index
        messages.append(_with_reasoning(_call_turn(turn_calls), thoughts, reasoning))
        for step in turn_calls:
            if attached is None:
                messages.append(_result_turn(step, tool_result_text(step, traj, max_tool_chars)))
                continue
            numbered = []
            for p in attached.get(step.index, []):
                n = len(shown_text) + 1
                shown_text[n] = p.text
                if p.evidence_id and numbers is not None:
                    numbers.setdefault(p.evidence_id, n)
                numbered.append((n, p))
            messages.append(_result_turn(step, _read_result(step, numbered, max_tool_chars)))
    text, problems = _final(traj, numbers)
    if numbers is not None:
        for c in traj.final.citations:
            n = numbers.get(c.evidence_id)
            if n is not None and not _quote_shown(c.quote, shown_text[n]):
                problems.append(f"citation [{n}]: its quote is not in the passage's text")
    thoughts = _thoughts_before(traj, used, len(traj.steps), since)
    messages.append(_with_reasoning({"role": "assistant", "content": text}, thoughts, reasoning))
    return {"id": traj.id, "messages": messages, "tools": tool_specs(traj), "grounding": problems}


def _turns(traj: Trajectory, read: list[Round] | None):
    """(tool calls of one assistant turn, passages by call index or None for an old log), in run order."""
    if read is None:  # an old log: consecutive calls of the same tool make one turn, results as recorded
        steps = traj.tool_calls()
        i = 0
        while i < len(steps):
            j = i
            while j < len(steps) and steps[j].tool == steps[i].tool:
                j += 1
            yield steps[i:j], None
            i = j
        return
    for rnd in read:
        attached = rnd.attach()
        for calls in (rnd.searches, rnd.fetches):
            if calls:
                yield calls, attached


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
