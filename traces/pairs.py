"""Per-role supervised pairs and preference pairs from the LLM calls of a trajectory, and preference pairs
between sibling runs of one question.

Role pairs (TRL prompt-completion form): the exact messages a role was sent and the output the run
accepted; a structured output the parser had to repair is emitted as the canonical JSON of the
accepted value, so the training target is what the model should have written. Each carries the accepted
parsed value (`parsed`, a JSON string) and what the step later earned (`meta.labels`, see labels.py).

Preference pairs exist where a run made them: a parse retry (the failed first reply vs the accepted
retry, both answers to the first prompt) and a revision (an output the verifier rejected vs the call
that superseded it, on the rejected call's prompt). Sibling pairs (`sibling_pairs`, `SiblingCollector`)
set a correct run's whole conversation against a wrong run's on the same question.

Every record of a kind has the same keys, and every preference record (of any kind) the same keys and
message keys (None where they do not apply), so one file is one Arrow schema for HF `datasets`.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .filters import question_key
from .labels import label_keys, step_labels
from .messages import ReasoningMode, to_messages, used_llm_calls
from .schema import LLMCallStep, Trajectory

if TYPE_CHECKING:
    from .paths import PathScrubber

# The keys of a chat message in our exports (TRL / OpenAI form); preference records carry all of them.
MESSAGE_KEYS = ("role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name")
PREFERENCE_META_KEYS = (
    "kind", "trace_id", "question", "snapshot", "chosen_trace", "rejected_trace", "chosen_step", "rejected_step",
    "tools",
)  # fmt: skip
SIBLING_ROLE = "agent"  # a sibling pair trains the whole conversation, not one role's call


def accepted_output(step: LLMCallStep) -> str:
    if step.status == "repaired" and step.parsed is not None:
        return json.dumps(step.parsed, ensure_ascii=False)
    return step.output or ""


def _completion(text: str, reasoning: str | None, mode: ReasoningMode) -> list[dict[str, Any]]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning and mode == "think":
        message["content"] = f"<think>\n{reasoning.strip()}\n</think>\n\n{text}"
    elif mode == "field":  # the key on every message of the mode, so the column has one type
        message["reasoning_content"] = reasoning or None
    return [message]


def uniform_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with every key of MESSAGE_KEYS (None where absent), as Arrow would read them back anyway;
    a key beyond those is kept."""
    return [{k: m.get(k) for k in MESSAGE_KEYS} | {k: m[k] for k in m if k not in MESSAGE_KEYS} for m in messages]


def snapshot_of(traj: Trajectory) -> str | None:
    """The run's corpus / web snapshot (`meta.snapshot`) as a string: sibling runs pair only on equal ones."""
    snapshot = traj.meta.get("snapshot")
    if snapshot is None or isinstance(snapshot, str):
        return snapshot
    return json.dumps(snapshot, sort_keys=True, ensure_ascii=False)


def _parsed_json(step: LLMCallStep) -> str | None:
    return json.dumps(step.parsed, ensure_ascii=False) if step.parsed is not None else None


def role_pairs(
    traj: Trajectory, *, reasoning: ReasoningMode = "drop", roles: set[str] | None = None
) -> Iterator[dict[str, Any]]:
    steps = [s for s in used_llm_calls(traj) if not roles or s.role in roles]
    labels = step_labels(traj, steps)
    for step in steps:
        yield {
            "role": step.role,
            "prompt": [m.model_dump() for m in step.messages],
            "completion": _completion(accepted_output(step), step.reasoning, reasoning),
            "parsed": _parsed_json(step),
            "meta": {
                "trace_id": traj.id,
                "step": step.index,
                "status": step.status or "text",
                "subgoal": step.subgoal,
                "round": step.round,
                "snapshot": snapshot_of(traj),
                "labels": labels.get(step.index) or dict.fromkeys(label_keys(step.role)),
            },
        }


def _preference(role: str, prompt: list, chosen: list, rejected: list, **meta: Any) -> dict[str, Any]:
    return {
        "role": role,
        "prompt": uniform_messages(prompt),
        "chosen": uniform_messages(chosen),
        "rejected": uniform_messages(rejected),
        "meta": {k: meta.get(k) for k in PREFERENCE_META_KEYS},
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
            yield _preference(
                chosen.role,
                [m.model_dump() for m in rejected.messages],
                _completion(accepted_output(chosen), chosen.reasoning, reasoning),
                _completion(rejected.output or rejected.raw_output, rejected.reasoning, reasoning),
                kind=kind,
                trace_id=traj.id,
                question=traj.question,
                snapshot=snapshot_of(traj),
                chosen_trace=traj.id,
                rejected_trace=traj.id,
                chosen_step=chosen.index,
                rejected_step=rejected.index,
            )


# ---- sibling runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sibling:
    trace_id: str
    question: str
    correct: bool
    conversation: bytes  # zlib-compressed JSON of the conversation: a run's pages are most of its size


def _split(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(prompt, continuation): the messages before the first assistant turn, and the rest."""
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    return messages[:first], messages[first:]


class SiblingCollector:
    """Gathers the runs of an export and pairs sibling runs: the same question (normalised) on the same
    snapshot (None equals None), one correct and one wrong. `add` keeps only what pairing needs: the
    question key, snapshot, outcome, trace id, and the conversation of a run whose outcome is known.

    `conversation` builds a run's conversation ({"messages", "tools", …}, as `to_messages` does); without it,
    `to_messages(traj, **kwargs)`.
    """

    def __init__(self, conversation: Callable[[Trajectory], dict[str, Any]] | None = None, **kwargs: Any):
        if conversation is not None and kwargs:
            raise TypeError("pass either conversation or to_messages keyword arguments, not both")
        self._conversation = conversation or functools.partial(to_messages, **kwargs)
        self._groups: dict[tuple[str, str | None], list[_Sibling]] = {}

    def add(self, traj: Trajectory, scrub: PathScrubber | None = None) -> None:
        """Keep `traj` for pairing; `scrub` takes machine paths out of its conversation. A run whose citations
        do not resolve to a passage it was shown (conversation meta `grounded` false) is no chosen answer."""
        correct = traj.correct
        if correct is None or traj.final is None:  # no gold and no judge: nothing says which run is better
            return
        sample = self._conversation(traj)
        if scrub is not None:
            sample = scrub.clean(sample)
        if correct and sample.get("meta", {}).get("grounded") is False:
            return
        kept = {"messages": sample["messages"], "tools": sample.get("tools")}
        blob = zlib.compress(json.dumps(kept, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        key = (question_key(traj.question), snapshot_of(traj))
        self._groups.setdefault(key, []).append(_Sibling(traj.id, traj.question, correct, blob))

    def __len__(self) -> int:
        return sum(len(runs) for runs in self._groups.values())

    def pairs(self) -> Iterator[dict[str, Any]]:
        """Per (question, snapshot), in key order: the correct runs and the wrong runs each sorted by trace id,
        the i-th correct run against the i-th wrong one (each run in at most one pair: 3 correct and 2 wrong
        runs give 2 pairs)."""
        for key in sorted(self._groups, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
            runs = sorted(self._groups[key], key=lambda r: r.trace_id)
            good = [r for r in runs if r.correct]
            bad = [r for r in runs if not r.correct]
            for chosen, rejected in zip(good, bad, strict=False):
                yield self._pair(chosen, rejected, key[1])

    @staticmethod
    def _pair(chosen: _Sibling, rejected: _Sibling, snapshot: str | None) -> dict[str, Any]:
        good = json.loads(zlib.decompress(chosen.conversation))
        bad = json.loads(zlib.decompress(rejected.conversation))
        # Both prompts are the same system prompt and question. Should the resolved questions differ (a
        # follow-up resolved two ways), the chosen run's prompt is the pair's: DPO needs one prompt.
        prompt, chosen_rest = _split(good["messages"])
        _, rejected_rest = _split(bad["messages"])
        tools = good.get("tools")
        return _preference(
            SIBLING_ROLE,
            prompt,
            chosen_rest,
            rejected_rest,
            kind="sibling",
            question=chosen.question,
            snapshot=snapshot,
            chosen_trace=chosen.trace_id,
            rejected_trace=rejected.trace_id,
            tools=tools if tools is None or isinstance(tools, str) else json.dumps(tools, ensure_ascii=False),
        )


def sibling_pairs(trajs: Iterable[Trajectory], **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Preference pairs between sibling runs (see SiblingCollector); `kwargs` go to `to_messages`."""
    collector = SiblingCollector(**kwargs)
    for traj in trajs:
        collector.add(traj)
    yield from collector.pairs()
