"""Step labels (what each used LLM call later earned), role records with parsed values and labels, and
preference pairs between sibling runs; every record of a file has one key set, so HF `datasets` loads it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from deepsearch.agent.claim_check import ClaimVerdict, Verification
from deepsearch.agent.llm.structured import StructuredOutcome
from deepsearch.agent.llm.types import ChatMessage, LLMRequest, LLMResponse, Usage
from deepsearch.agent.nodes.plan import Plan, PlannedStep
from deepsearch.agent.nodes.reflect import PlanChange, Reflection
from deepsearch.agent.researcher.state import PassageGrade, RoundVerdict
from deepsearch.agent.state import AnswerClaim, DraftAnswer
from deepsearch.traces.labels import label_keys, step_labels
from deepsearch.traces.messages import to_messages
from deepsearch.traces.pairs import (
    MESSAGE_KEYS,
    PREFERENCE_META_KEYS,
    SiblingCollector,
    preference_pairs,
    role_pairs,
    sibling_pairs,
)
from deepsearch.traces.reader import load_trajectory
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header, RerankCandidate, Trajectory
from deepsearch.traces.synthetic import record_synthetic_run
from pydantic import BaseModel

QUESTION = "Who founded the Analytical Society?"
GOLD = ["Charles Babbage"]
WITH_GOLD = "The Analytical Society was founded in 1812 by Charles Babbage and friends."
WITHOUT_GOLD = "The society met in Cambridge and published its Memoirs in 1813."


def _call(rec: TraceRecorder, role: str, prompt: str, value: BaseModel | None, *, text: str | None = None,
          subgoal: str | None = None, round: int | None = None, supersedes: int | None = None) -> int:  # fmt: skip
    """One LLM call of `role`; a structured one (`value`) also gets its outcome, as ctx.structured records it."""
    output = text if text is not None else value.model_dump_json()
    request = LLMRequest(messages=[ChatMessage(role="system", content=f"You are the {role}."),
                                   ChatMessage(role="user", content=prompt)], role=role, max_tokens=200)  # fmt: skip
    response = LLMResponse(text=output, raw_text=output, finish_reason="stop", latency_s=0.01, backend="fake",
                           model="fake", usage=Usage(prompt_tokens=10, completion_tokens=5))  # fmt: skip
    index = rec.llm_call(request, response, subgoal=subgoal, round=round, supersedes=supersedes)
    if value is not None:
        rec.structured(StructuredOutcome[type(value)](value=value, status="ok", responses=[response]))
    return index


def record_run(directory: Path, *, answer: str = "Charles Babbage", gold: list[str] | None = GOLD,
               question: str = QUESTION, snapshot=None, rounds=None, reflect: bool = False,
               revise: bool = False) -> Trajectory:  # fmt: skip
    """A research run of one sub-goal: a planner call; per round a search, a fetch per passage, the judge's
    call (a RoundVerdict), its rerank, judge and information steps; an answerer call, the verifier's call
    and claim steps (a rejected first draft and a reviser call when `revise`); finished with gold and scores.

    `rounds`: per round (decision, judge answer, [(passage id, text, kept)]); round 1 keeps the passage
    naming the founder, round 2 keeps one that does not (and drops the one that does)."""
    rounds = rounds or [
        ("continue", "Charles Babbage", [("p1", WITH_GOLD, True), ("p2", WITHOUT_GOLD, False)]),
        ("done", "Charles Babbage", [("p3", WITHOUT_GOLD + " Again.", True), ("p4", WITH_GOLD + " Again.", False)]),
    ]
    meta = {"snapshot": snapshot} if snapshot is not None else {}
    rec = TraceRecorder.start(directory, Header(question=question, gold=gold, meta=meta))
    _call(rec, "planner", question, Plan(subgoals=[PlannedStep(question=question)]))
    rec.dag_change("added", {"id": "g1", "question": question, "source": "web"}, reason="initial plan")
    for r, (decision, said, passages) in enumerate(rounds, 1):
        listed = [{"url": f"https://example.org/{pid}", "title": pid} for pid, _, _ in passages]
        rec.tool_call("web_search", {"query": f"founder {r}"}, results=listed, subgoal="g1", round=r)
        for pid, text, _ in passages:
            rec.tool_call("fetch_page", {"url": f"https://example.org/{pid}"}, subgoal="g1", round=r,
                          results=[{"id": pid, "url": f"https://example.org/{pid}", "text": text}])  # fmt: skip
        grades = [PassageGrade(id=f"P{k}", grade=9 if kept else 2, quote="") for k, (_, _, kept) in
                  enumerate(passages, 1)]  # fmt: skip
        verdict = RoundVerdict(answer=said, answered=said != "unknown", decision=decision, passages=grades)
        _call(rec, "judge", f"round {r}", verdict, subgoal="g1", round=r)
        candidates = [{"id": pid, "score": 0.9 if kept else 0.2, "kept": kept} for pid, _, kept in passages]
        rec.step("rerank", query=question, candidates=candidates, method="judge grades", subgoal="g1", round=r)
        rec.step("judge", target="g1", rationale="", decision=decision, subgoal="g1", round=r)
        rec.step("information", belief=0.4 * r, measure="logprob", gain=0.4, draft=said, subgoal="g1", round=r)
        rec.step("budget", used={"llm_calls": 2 * r}, subgoal="g1", round=r)
    if reflect:
        change = PlanChange(op="add", id="g2", question="When was it founded?", reason="the date is missing")
        _call(rec, "planner", "reflect", Reflection(changes=[change]))
        rec.dag_change("added", {"id": "g2", "question": "When was it founded?"}, reason="the date is missing")
    claims = [AnswerClaim(text=f"It was founded by {answer}.", citations=[1]),
              AnswerClaim(text="It met in Cambridge.", citations=[1, 2])]  # fmt: skip
    _call(rec, "answerer", "answer", DraftAnswer(short_answer=answer, claims=claims))

    def verify(supported: list[bool]) -> None:
        verdicts = [ClaimVerdict(claim=i, supported=ok) for i, ok in enumerate(supported, 1)]
        _call(rec, "verifier", "verify", Verification(verdicts=verdicts))
        for v in verdicts:
            rec.step("judge", target=f"claim {v.claim}", target_kind="claim", labels={"supported": v.supported},
                     decision="accept" if v.supported else "reject")  # fmt: skip

    if revise:  # claim 2 is rejected; the revision drops it
        verify([True, False])
        _call(rec, "reviser", "revise", DraftAnswer(short_answer=answer, claims=claims[:1]))
        verify([True])
    else:
        verify([True, True])
    cited = {"n": 1, "evidence_id": "p1", "source": "https://example.org/p1", "quote": WITH_GOLD}
    rec.finish(f"It was founded by {answer} [1].", termination="answered", gold=gold, short_answer=answer,
               citations=[cited])  # fmt: skip
    return load_trajectory(rec.path)


def _by_role(traj: Trajectory) -> dict[str, list[dict]]:
    labels = step_labels(traj)
    roles = {s.index: s.role for s in traj.llm_calls()}
    out: dict[str, list[dict]] = {}
    for index, label in labels.items():
        out.setdefault(roles[index], []).append(label)
    return out


def test_judge_labels_say_whether_the_round_kept_the_gold(tmp_path):
    traj = record_run(tmp_path)
    judge = _by_role(traj)["judge"]
    assert [j["evidence_has_gold"] for j in judge] == [True, False]  # round 2 dropped the gold passage
    assert [j["decision"] for j in judge] == ["continue", "done"]
    assert [j["belief"] for j in judge] == [0.4, 0.8] and [j["gain"] for j in judge] == [0.4, 0.4]
    assert [j["kept"] for j in judge] == [1, 1] and [j["last_round"] for j in judge] == [False, True]
    assert [j["evidence_text"] for j in judge] == ["passage", "passage"]  # the passages' texts are in the log
    assert all(j["answer_has_gold"] and j["subgoal_answered"] and j["subgoal_answer"] == "Charles Babbage"
               for j in judge)  # fmt: skip
    assert all(j["run_correct"] is True and j["termination"] == "answered" for j in judge)
    for role, labels in _by_role(traj).items():
        assert all(list(x) == list(label_keys(role)) for x in labels), role


def test_kept_passage_text_from_text_hash(tmp_path):
    if "text_hash" not in RerankCandidate.model_fields:
        pytest.skip("rerank candidates do not carry text_hash yet")
    rec = TraceRecorder.start(tmp_path, Header(question=QUESTION, gold=GOLD))
    _call(rec, "judge", "round 1", RoundVerdict(answer="x", answered=True, decision="done"), subgoal="g1", round=1)
    shown = [{"id": "web:aa#0", "score": 0.9, "kept": True, "text_hash": rec.content(WITH_GOLD)}]
    rec.step("rerank", query=QUESTION, candidates=shown, subgoal="g1", round=1)
    rec.finish("x", termination="answered", gold=GOLD)
    (label,) = step_labels(load_trajectory(rec.path)).values()
    assert label["evidence_has_gold"] is True and label["evidence_text"] == "passage" and label["run_correct"] is False


def test_kept_passage_text_falls_back_to_the_citation_then_the_page(tmp_path):
    """An older log: no text_hash; a kept passage is found as the answer's quote of it, or as the page it was cut
    from (research_tools names a page's passages web:<sha1(url)[:10]>#n)."""
    url = "https://example.org/babbage"
    page_id = "web:" + hashlib.sha1(url.encode()).hexdigest()[:10] + "#3"
    rec = TraceRecorder.start(tmp_path, Header(question=QUESTION, gold=GOLD))
    rec.tool_call("fetch_page", {"url": url}, results=[{"url": url, "text": WITHOUT_GOLD + " " + WITH_GOLD}])
    for r, kept in enumerate((["web:cited#0"], [page_id], ["web:cited#0", "web:lost#1"]), 1):
        _call(rec, "judge", f"round {r}", RoundVerdict(answer="x", answered=True, decision="continue"),
              subgoal="g1", round=r)  # fmt: skip
        shown = [{"id": i, "score": 0.9, "kept": True} for i in kept]
        rec.step("rerank", query=QUESTION, candidates=shown, subgoal="g1", round=r)
    cited = {"n": 1, "evidence_id": "web:cited#0", "source": "https://example.org/c", "quote": WITHOUT_GOLD}
    rec.finish("x [1]", termination="answered", gold=GOLD, citations=[cited])
    labels = list(step_labels(load_trajectory(rec.path)).values())
    assert [(x["evidence_has_gold"], x["evidence_text"]) for x in labels] == [
        (False, "citation"), (True, "page"), (None, "citation")]  # round 3: one kept passage is nowhere  # fmt: skip


def test_run_outcome_propagates_and_no_gold_says_nothing(tmp_path):
    wrong = record_run(tmp_path, answer="Augustus De Morgan")
    assert {x["run_correct"] for labels in _by_role(wrong).values() for x in labels} == {False}
    assert [j["evidence_has_gold"] for j in _by_role(wrong)["judge"]] == [True, False]  # the evidence had it
    assert {x["answer_has_gold"] for x in _by_role(wrong)["answerer"]} == {False}
    unscored = record_run(tmp_path, gold=None)
    labels = [x for ls in _by_role(unscored).values() for x in ls]
    assert {x["run_correct"] for x in labels} == {None} and {x["run_f1"] for x in labels} == {None}
    assert {j["evidence_has_gold"] for j in _by_role(unscored)["judge"]} == {None}


def test_planner_answerer_and_verifier_labels(tmp_path):
    traj = record_run(tmp_path, reflect=True, revise=True)
    plan, reflection = _by_role(traj)["planner"]
    assert (plan["kind"], plan["subgoals"], plan["replanned"], plan["subgoals_answered"]) == ("plan", 1, True, 1)
    assert (reflection["kind"], reflection["subgoals"], reflection["changes"], reflection["replanned"]) == (
        "reflect", 1, 1, False)  # fmt: skip
    assert reflection["subgoals_answered"] == 0  # g2 never ran
    (draft,) = _by_role(traj)["answerer"]
    (revision,) = _by_role(traj)["reviser"]
    assert (draft["claims"], draft["claims_supported"], draft["verified_share"]) == (2, 1, 0.5)
    assert draft["cited"] == 2 and draft["revised"] is True and draft["answer_has_gold"] is True
    assert (revision["verified_share"], revision["revised"]) == (1.0, False)
    first, second = _by_role(traj)["verifier"]
    assert (first["verdicts"], first["supported"], first["rejected"], first["revision_followed"]) == (2, 1, 1, True)
    assert (second["verdicts"], second["supported"], second["revision_followed"]) == (1, 1, False)


def test_role_records_carry_parsed_value_and_labels(tmp_path):
    traj = record_run(tmp_path)
    records = list(role_pairs(traj))
    judge = [r for r in records if r["role"] == "judge"]
    assert json.loads(judge[0]["parsed"])["decision"] == "continue"
    assert judge[0]["meta"]["labels"]["evidence_has_gold"] is True
    assert (judge[0]["meta"]["subgoal"], judge[0]["meta"]["round"]) == ("g1", 1)
    steps = {s.index: s for s in traj.llm_calls()}
    for r in records:  # today's prompt and completion are kept
        step = steps[r["meta"]["step"]]
        assert r["prompt"] == [m.model_dump() for m in step.messages]
        assert r["completion"] == [{"role": "assistant", "content": step.output}]
        assert r["meta"]["labels"] == step_labels(traj)[step.index]


def _runs(tmp_path: Path, outcomes: list[bool], **kw) -> list[Trajectory]:
    return [record_run(tmp_path, answer="Charles Babbage" if ok else "Augustus De Morgan", **kw) for ok in outcomes]


def test_sibling_pairs_set_a_correct_run_against_a_wrong_one(tmp_path):
    runs = _runs(tmp_path, [True, False, True])
    pairs = list(sibling_pairs(runs))
    assert len(pairs) == 1  # two correct, one wrong: each run is in at most one pair
    (pair,) = pairs
    correct = sorted((r for r in runs if r.correct), key=lambda r: r.id)
    wrong = next(r for r in runs if r.correct is False)
    assert (pair["meta"]["chosen_trace"], pair["meta"]["rejected_trace"]) == (correct[0].id, wrong.id)
    assert pair["meta"]["kind"] == "sibling" and pair["meta"]["question"] == QUESTION
    for traj, side in ((correct[0], "chosen"), (wrong, "rejected")):
        messages = to_messages(traj)["messages"]
        first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
        assert [m["content"] for m in pair["prompt"]] == [m["content"] for m in messages[:first]]
        assert [m["content"] for m in pair[side]] == [m["content"] for m in messages[first:]]
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert "Charles Babbage" in pair["chosen"][-1]["content"] and "De Morgan" in pair["rejected"][-1]["content"]
    assert json.loads(pair["meta"]["tools"]) == to_messages(correct[0])["tools"]


def test_sibling_pairs_need_the_same_question_snapshot_and_a_verdict(tmp_path):
    assert len(list(sibling_pairs(_runs(tmp_path, [True, True, True, False, False])))) == 2
    a = record_run(tmp_path, question="who founded the analytical society")  # the same question, normalised
    b = record_run(tmp_path, answer="Augustus De Morgan")
    assert len(list(sibling_pairs([a, b]))) == 1
    snap_a, snap_b = (record_run(tmp_path, snapshot="2024-06"), record_run(tmp_path, answer="no", snapshot="2025-01"))
    assert list(sibling_pairs([snap_a, snap_b])) == []  # different snapshots
    assert list(sibling_pairs([a, snap_b])) == []  # None is not 2025-01
    same = record_run(tmp_path, answer="no", snapshot={"web": "2024-06"})
    other = record_run(tmp_path, snapshot={"web": "2024-06"})
    assert [p["meta"]["snapshot"] for p in sibling_pairs([same, other])] == ['{"web": "2024-06"}']
    unscored = _runs(tmp_path, [True, False], gold=None)
    assert list(sibling_pairs(unscored)) == []  # no gold, no judge: nothing says which is better
    assert len(list(sibling_pairs([record_run(tmp_path, question="Another question?"), b]))) == 0


def test_sibling_collector_keeps_only_runs_with_a_verdict(tmp_path):
    built = []

    def conversation(traj: Trajectory) -> dict:
        built.append(traj.id)
        return to_messages(traj, max_tool_chars=20)

    collector = SiblingCollector(conversation)
    runs = [*_runs(tmp_path, [True, False]), record_run(tmp_path, gold=None)]
    for traj in runs:
        collector.add(traj)
    assert len(collector) == 2 and built == [r.id for r in runs[:2]]  # the unscored run is not kept
    (pair,) = collector.pairs()
    assert pair == next(sibling_pairs(runs[:2], max_tool_chars=20))
    with pytest.raises(TypeError):
        SiblingCollector(conversation, max_tool_chars=20)


def _dpo_records(tmp_path: Path) -> list[dict]:
    synthetic = tmp_path / "synthetic"
    for seed in range(12):  # parse retries and revisions
        record_synthetic_run(synthetic, seed)
    trajs = [load_trajectory(p) for p in sorted((synthetic / "runs").glob("*.jsonl"))]
    records = [p for t in trajs for p in preference_pairs(t)]
    assert {r["meta"]["kind"] for r in records} == {"parse_retry", "revision"}
    records += sibling_pairs(_runs(tmp_path, [True, False, True, False]))
    assert records[-1]["meta"]["kind"] == "sibling"
    return records


def _assert_one_schema(records: list[dict]) -> None:
    keys = [(set(r), set(r["meta"]), set(r["meta"].get("labels") or {})) for r in records]
    assert all(k == keys[0] for k in keys), "every record of a file has the same keys"
    for field in ("prompt", "completion", "chosen", "rejected"):
        message_keys = {frozenset(m) for r in records for m in r.get(field) or []}
        assert len(message_keys) <= 1, (field, message_keys)


def test_every_record_of_a_file_has_the_same_keys(tmp_path):
    runs = [record_run(tmp_path, reflect=True, revise=True), record_run(tmp_path, gold=None), *_runs(tmp_path, [True])]
    by_role: dict[str, list[dict]] = {}
    for traj in runs:
        for r in role_pairs(traj):
            by_role.setdefault(r["role"], []).append(r)
    assert set(by_role) == {"planner", "judge", "answerer", "verifier", "reviser"}
    for records in by_role.values():
        _assert_one_schema(records)
    dpo = _dpo_records(tmp_path)
    _assert_one_schema(dpo)
    assert set(dpo[0]["meta"]) == set(PREFERENCE_META_KEYS)
    assert all(set(m) == set(MESSAGE_KEYS) for r in dpo for side in ("prompt", "chosen", "rejected") for m in r[side])


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_datasets_loads_a_roles_file_and_a_dpo_file_as_written(tmp_path):
    datasets = pytest.importorskip("datasets")
    runs = [record_run(tmp_path, reflect=True, revise=True), record_run(tmp_path, gold=None),
            *_runs(tmp_path, [True, False])]  # fmt: skip
    judge = [r for t in runs for r in role_pairs(t, roles={"judge"})]
    dpo = _dpo_records(tmp_path)
    for name, records in (("judge.jsonl", judge), ("dpo.jsonl", dpo)):
        loaded = datasets.load_dataset("json", data_files=str(_write(tmp_path / name, records)), split="train",
                                       cache_dir=str(tmp_path / "hf-cache"))  # fmt: skip
        assert loaded.num_rows == len(records)
        assert [dict(row) for row in loaded] == records, name
