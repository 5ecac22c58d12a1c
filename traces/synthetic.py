"""Synthetic research runs recorded through the public recorder API: for tests, benchmarks and demos.

Each run has what a real research run records: a planner call (with a parse repair on some runs), a
DAG, per sub-goal a search, page fetches, the judge's call, the passages it was shown and kept (a rerank
step with their texts), its verdict, information gain and budget; then an answer (sometimes a draft
rejected by the verifier and revised) and scores.
"""

from __future__ import annotations

import random
from pathlib import Path

from deepsearch.agent.llm.structured import ParseFailure, StructuredOutcome
from deepsearch.agent.llm.types import ChatMessage, LLMRequest, LLMResponse, Usage
from deepsearch.agent.result import RunUsage
from pydantic import BaseModel

from .recorder import TraceRecorder
from .redact import Redactor
from .schema import Header, ToolSpec

SEARCH_TOOL = ToolSpec(
    name="web_search",
    description="Search the web.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
FETCH_TOOL = ToolSpec(
    name="fetch_page",
    description="Fetch a page and extract its text.",
    parameters={"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
)


class _Plan(BaseModel):
    subgoals: list[str]


class _Verdict(BaseModel):
    answer: str
    answered: bool
    decision: str
    passages: list[dict]


def _call(rec: TraceRecorder, role: str, prompt: str, output: str, *, reasoning: str | None = None, **kw) -> tuple:
    request = LLMRequest(
        messages=[ChatMessage(role="system", content=f"You are the {role}."), ChatMessage(role="user", content=prompt)],
        role=role,
        max_tokens=256,
        temperature=0.0,
    )
    raw = f"<think>{reasoning}</think>{output}" if reasoning else output
    response = LLMResponse(
        text=output,
        raw_text=raw,
        reasoning=reasoning,
        finish_reason="stop",
        usage=Usage(prompt_tokens=len(prompt.split()) + 6, completion_tokens=len(raw.split())),
        latency_s=0.01,
        backend="fake",
        model="fake-model",
    )
    return request, response, rec.llm_call(request, response, **kw)


def record_synthetic_run(directory: Path, seed: int, *, redactor: Redactor | None = None) -> str:
    """Record one finished run; returns its trace id. Deterministic in `seed` (apart from ids and times)."""
    rng = random.Random(seed)
    topic = f"topic{seed % 97}"
    question = f"Who founded {topic} and when?"
    gold = [f"founder{seed % 13}"]
    header = Header(question=question, mode="research", gold=gold, tools=[SEARCH_TOOL, FETCH_TOOL])
    rec = TraceRecorder.start(directory, header, redactor=redactor)
    n_sub = rng.randint(1, 3)
    subgoals = [f"sg{i}" for i in range(n_sub)]

    plan_json = '{"subgoals": [' + ", ".join(f'"part {i} of {topic}"' for i in range(n_sub)) + "]}"
    if rng.random() < 0.3:  # the first planner reply is broken, the retry parses
        bad_req, bad_resp, _ = _call(rec, "planner", question, "Sure! Here is the plan: subgoals ...")
        req, resp, _ = _call(rec, "planner", question + " (reply with JSON)", plan_json, reasoning="Split it.")
        failure = ParseFailure(attempt=1, kind="no_json", detail="no JSON object", raw_excerpt=bad_resp.raw_text)
        outcome = StructuredOutcome[_Plan](
            value=_Plan.model_validate_json(plan_json), status="retried", failures=[failure], responses=[bad_resp, resp]
        )
    else:
        req, resp, _ = _call(rec, "planner", question, plan_json, reasoning="Split it.")
        outcome = StructuredOutcome[_Plan](value=_Plan.model_validate_json(plan_json), status="ok", responses=[resp])
    rec.structured(outcome)
    for i, sg in enumerate(subgoals):
        rec.dag_change("added", {"id": sg, "question": f"part {i} of {topic}", "source": "web"}, reason="initial plan")

    searches = fetches = 0
    cited: dict | None = None
    for r, sg in enumerate(subgoals):
        query = f"{topic} founder {r}"
        verdict = f'{{"answer": "founder{seed % 13}", "answered": true, "decision": "done", "passages": []}}'
        hits = [
            {"url": f"https://example.org/{topic}/{k}", "title": f"{topic} {k}", "snippet": f"{topic} page {k}",
             "score": 1 / (k + 1)}
            for k in range(rng.randint(2, 5))
        ]  # fmt: skip
        rec.tool_call("web_search", {"query": query}, results=hits, latency_s=0.2, subgoal=sg, round=1)
        searches += 1
        shown = []
        for k, hit in enumerate(hits[:2]):
            fact = f"{topic} was founded by founder{seed % 13} in {1900 + seed % 100}."
            page = f"{hit['title']}. {fact} " * 20
            rec.tool_call("fetch_page", {"url": hit["url"]}, results=[{**hit, "text": page}], subgoal=sg, round=1)
            fetches += 1
            passage = " ".join(page.split()[:60])  # the page's passage as the judge's prompt showed it
            shown.append({"id": f"web:{topic}{k}#0", "title": hit["title"], "source": hit["url"], "text": passage,
                          "fact": fact})  # fmt: skip
        _, resp, _ = _call(rec, "judge", f"Judge: part {r} of {topic}\n" + shown[0]["text"], verdict,
                           subgoal=sg, round=1)  # fmt: skip
        rec.structured(StructuredOutcome[_Verdict](value=_Verdict.model_validate_json(verdict), status="ok",
                                                   responses=[resp]))  # fmt: skip
        candidates = []
        for k, p in enumerate(shown):
            kept = k == 0
            candidates.append({"id": p["id"], "score": 0.9 - k / 10, "rationale": "names the founder", "kept": kept,
                               "reason": "graded 9, kept as its quote" if kept else "graded 3, below the keep grade",
                               "text_hash": rec.content(p["text"], p["source"]), "title": p["title"],
                               "source": p["source"], "evidence_id": f"ev-{sg}" if kept else None})  # fmt: skip
            if kept and cited is None:
                cited = {"n": 1, "evidence_id": f"ev-{sg}", "source": p["source"], "quote": p["fact"]}
        rec.step("rerank", query=query, candidates=candidates, cutoff=None, method="judge grades", subgoal=sg,
                 round=1)  # fmt: skip
        rec.step(
            "judge",
            target=sg,
            labels={},
            rationale="the pages agree",
            decision="done",
            subgoal=sg,
            round=1,
        )
        rec.step("information", belief=-0.2 * (r + 1), measure="logprob", gain=rng.uniform(0.0, 0.5), subgoal=sg,
                 round=1)  # fmt: skip
        rec.step("budget", used={"llm_calls": 2 + r, "searches": searches}, limits={"llm_calls": 40, "searches": 20})
        done = {"id": sg, "question": f"part {r} of {topic}", "status": "done"}
        rec.dag_change("changed", done, reason="judged done")

    correct = rng.random() < 0.6
    answer = f"founder{seed % 13} [1]" if correct else f"someone else{seed} [1]"
    _, _, draft = _call(rec, "answerer", f"Answer: {question}", answer, reasoning="The evidence names the founder.")
    if rng.random() < 0.2:  # the verifier rejects a first draft; the revision supersedes it
        rec.step(
            "judge",
            target="answer",
            target_kind="answer",
            labels={"supported": False},
            rationale="claim lacks a citation",
            decision="revise",
        )
        answer += " (revised)"
        _call(rec, "answerer", f"Answer: {question}", answer, supersedes=draft)
    rec.finish(
        answer,
        termination="answered",
        citations=[cited],
        usage=RunUsage(llm_calls=4, prompt_tokens=120, completion_tokens=40, searches=searches, fetches=fetches),
        gold=gold,
    )
    return rec.id
