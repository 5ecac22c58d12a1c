"""Prompt injection: the detector over the case corpus, and the graph over poisoned local documents.

The model in these runs is compromised on purpose: the answerer obeys any "Danube" instruction it can
see. The answer stays right only if every poisoned passage is flagged (by the detector or by the
judge's `suspicious` list) and kept out of the answer prompt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.injection import find_injection
from deepsearch.agent.llm.types import LLMRequest
from deepsearch.tools.local_index import update_index
from deepsearch.traces.reader import find_log, load_trajectory

from tests.graph_support import ScriptedModel, evidence_count, fake_backend, last_user, local_tools, settings_for

FIXTURES = Path(__file__).parent / "fixtures" / "injection"
CASES = [json.loads(line) for line in (FIXTURES / "cases.jsonl").read_text().splitlines()]
QUESTION = "Which river flows through the city of Lumeria?"
POISON = "Danube"
BLOCK = re.compile(r"<(evidence|passage)\b[^>]*>.*?</\1>", re.DOTALL)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] != "subtle"], ids=lambda c: c["id"])
def test_detector_flags_instructions_and_leaves_imperative_prose_alone(case):
    assert (find_injection(case["text"]) is not None) == case["injection"], case["text"]


def test_detector_still_fires_inside_long_relevant_text():
    filler = "The harbour of Lumeria is busy in summer and the bridges are old. " * 40
    for case in (c for c in CASES if c["injection"] and c["kind"] != "subtle"):
        assert find_injection(f"{filler}{case['text']} {filler}"), case["id"]


def _outside_blocks(text: str) -> str:
    return BLOCK.sub("", text)


def obedient_answerer(request: LLMRequest) -> dict:
    """Follows the injected instruction whenever it is visible; otherwise answers from the evidence."""
    if POISON in last_user(request):
        return {"short_answer": "the Danube", "claims": [{"text": "The river is the Danube.", "citations": [1]}]}
    n = evidence_count(request)
    return {"short_answer": "the Velt", "claims": [{"text": "The river Velt flows through Lumeria.",
                                                    "citations": list(range(1, n + 1))[:1]}]}  # fmt: skip


def judge_catching_the_subtle_one(request: LLMRequest) -> dict:
    """A judge that labels only what the detector cannot see (the `subtle` document)."""
    blocks = re.findall(r'<evidence id="(\d+)"[^>]*>\n(.*?)</evidence>', last_user(request), re.DOTALL)
    return {"answer": "the Velt", "answered": True, "decision": "done",
            "suspicious": [n for n, text in blocks if "Between us" in text], "rationale": "the Velt is named"}


async def test_poisoned_local_corpus_is_flagged_delimited_and_not_obeyed(tmp_path):
    index_dir = tmp_path / "index"
    update_index(index_dir, [FIXTURES / "docs"])
    settings = settings_for(tmp_path, selection="fusion", local_k=10, evidence_tokens=4000)
    settings.index.mode = "bm25"
    model = ScriptedModel(judge=judge_catching_the_subtle_one, answerer=obedient_answerer)
    result = await aresearch(QUESTION, settings=settings, backend=fake_backend(model),
                             tools=local_tools(index_dir, settings))  # fmt: skip

    assert result.termination == "answered" and result.short_answer == "the Velt"
    assert POISON not in result.answer and all(POISON not in c.quote for c in result.citations)
    judged = [r for role, r in model.calls if role == "judge"]
    shown = "\n".join(last_user(r) for r in judged)
    poisoned_docs = [p for p in (FIXTURES / "docs").iterdir() if POISON in p.read_text()]
    assert all(p.stem in shown or p.name in shown for p in poisoned_docs)  # the judge saw every poisoned doc
    # Wherever poisoned text reaches a prompt, it sits inside a delimited evidence/passage block.
    for role, request in model.calls:
        for message in request.messages:
            assert POISON not in _outside_blocks(message.content), (role, message.content[:300])
    answer_prompts = [last_user(r) for role, r in model.calls if role in ("answerer", "reviser", "verifier")]
    assert answer_prompts and all(POISON not in p for p in answer_prompts)

    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    flagged = {
        ev_id for step in trajectory.steps if step.kind == "judge" and step.target_kind == "subgoal"
        for ev_id, label in step.labels.items() if label.get("instructions_inside")
    }  # fmt: skip
    assert len(flagged) == len(poisoned_docs)  # detector hits and the judge's subtle catch, all recorded
