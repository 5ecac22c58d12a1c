"""The grounded reader (tests/fakes/grounded_reader.py): it answers only from what a prompt shows.

Prompts are rendered from the real templates (prompts/*.md) and evidence blocks from the real formatters,
so a change of layout that blinds the reader fails here, not as a silently worse benchmark.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from string import Template

import httpx
import pytest
from deepsearch.agent.evidence import format_evidence
from deepsearch.agent.state import Evidence
from deepsearch.prompts import load_prompt
from deepsearch.tools.rerank.models import Candidate
from deepsearch.tools.rerank.prompting import passage_block

from tests.fakes.grounded_reader import SURE, UNSURE, GroundedReader, contains, content_words, norm
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import split_known

SLICE = Path(__file__).parent / "fixtures" / "musique_slice"


@pytest.fixture(scope="module")
def data():
    from deepsearch.agent.eval.datasets import load_dataset

    return load_dataset(str(SLICE), Path("."))


@pytest.fixture(scope="module")
def reader(data):
    return GroundedReader.from_dataset(data)


def body(name: str, **variables) -> dict:
    """A chat request as the pipeline sends it (safe_substitute: a variable added to a prompt later is not a
    crash here; the reader must still find its sections)."""
    p = load_prompt(name)
    values = {k: str(v) for k, v in variables.items()}
    system, user = Template(p.system).safe_substitute(values), Template(p.user).safe_substitute(values)
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


def reply(reader: GroundedReader, request: dict) -> tuple[dict, float | None]:
    out = reader(request)
    return json.loads(out["content"]), out.get("logprob")


def q_by_shape(reader: GroundedReader, hops: int):
    return next(q for q in reader.questions.values() if len(q.hops) == hops)


def passages(data, q):
    """The question's paragraphs as pooled passages: (title, text) each."""
    row = next(x for x in data.questions if x.id == q.id)
    by_id = {p.id: p for p in data.passages}
    gold = {by_id[p].text for p in row.meta["gold_passages"]}
    return [p for p in data.passages if p.text in gold], [p for p in data.passages if p.text not in gold]


def evidence_text(items) -> str:
    evs = [Evidence(id=f"ev{i}", subgoal_id="g1", kind="local", source=f"pool://{i}", title=t, text=x)
           for i, (t, x) in enumerate(items)]  # fmt: skip
    return format_evidence(evs, 5000)[0]


def holding(items, answer: str):
    return [(p.title, p.text) for p in items if contains(f"{p.title}\n{p.text}", answer)]


def test_split_known_flattens_nested_parent_answers():
    core, pairs = split_known("What is #2 ? (known: Where is #1 ? (known: Who made X (film)? → Ann) → Paris (France))")
    assert core == "What is #2 ?"
    assert pairs == [("Who made X (film)?", "Ann"), ("Where is #1 ?", "Paris (France)")]
    assert split_known("Midway (near Pleasant Plains), #2 , #1 >> country") == (
        "Midway (near Pleasant Plains), #2 , #1 >> country", [])  # fmt: skip


def test_plans_with_the_gold_decomposition(reader):
    q = next(q for q in reader.questions.values() if any(len(h.parents) == 2 for h in q.hops))
    plan, _ = reply(reader, body("plan", question=q.question, max_subgoals=4, reading=""))
    assert [s["question"] for s in plan["subgoals"]] == [h.question for h in q.hops]
    assert [s["depends_on"] for s in plan["subgoals"]] == [[p + 1 for p in h.parents] for h in q.hops]
    assert any(len(s["depends_on"]) == 2 for s in plan["subgoals"])
    # Each step's first searches: its own words, `#k` kept where a parent's answer goes, never an answer.
    for step, hop in zip(plan["subgoals"], q.hops, strict=True):
        assert 1 <= len(step["queries"]) <= 2
        assert not any(contains(x, a) for x in step["queries"] for a in hop.answers), step["queries"]
        assert all(f"#{p + 1}" in step["queries"][0] for p in hop.parents), step["queries"]
    bare = GroundedReader([type("Q", (), {"id": "h1", "question": "Who is X?", "answers": ["Y"]})()])
    step = reply(bare, body("plan", question="Who is X?", max_subgoals=4, reading=""))[0]["subgoals"]
    assert [(s["question"], s["depends_on"]) for s in step] == [("Who is X?", [])]
    assert reply(reader, body("reflect", question=q.question, progress="- g1: …"))[0] == {"changes": []}


def judge(reader, q, subgoal: str, evidence="(no evidence yet)", passages="(none)", previous="(none)"):
    return reply(reader, body("judge", question=q.question, subgoal=subgoal, evidence=evidence, passages=passages,
                              previous=previous, max_queries=2))  # fmt: skip


def passage_text(items) -> str:
    return "\n\n".join(passage_block(f"P{i}", Candidate(id=str(i), text=x, title=t), 600)
                       for i, (t, x) in enumerate(items, 1))  # fmt: skip


def test_judge_answers_gold_only_when_an_evidence_block_holds_it(reader, data):
    q = q_by_shape(reader, 2)
    hop = q.hops[0]
    gold, other = passages(data, q)
    with_answer = holding(gold, hop.answers[0])
    without = [(p.title, p.text) for p in other if not any(contains(p.text, a) for a in hop.answers)][:4]
    assert with_answer and without
    found, lp_found = judge(reader, q, hop.question, evidence=evidence_text(without + with_answer))
    assert list(found)[:4] == ["answer", "answered", "decision", "next_queries"]  # the answer before any rationale
    assert (found["answer"], found["answered"], found["decision"]) == (hop.answers[0], True, "done")
    assert lp_found == SURE
    missed, lp_missed = judge(reader, q, hop.question, evidence=evidence_text(without))
    assert (missed["answer"], missed["answered"], missed["decision"]) == ("unknown", False, "continue")
    assert missed["next_queries"] and not any(contains(x, a) for x in missed["next_queries"] for a in hop.answers)
    assert lp_missed == UNSURE
    draft, lp = reply(reader, body("draft", question=q.question, subgoal=hop.question, evidence="(no evidence yet)"))
    assert (draft, lp) == ({"answer": "unknown"}, UNSURE)


def test_judge_grades_new_passages_and_quotes_the_sentence_that_holds_the_answer(reader, data):
    q = q_by_shape(reader, 2)
    hop = q.hops[0]
    gold, other = passages(data, q)
    shown = [(p.title, p.text) for p in other if not contains(p.text, hop.answers[0])][:3] + holding(
        gold, hop.answers[0])[:1]  # fmt: skip
    verdict, lp = judge(reader, q, hop.question, passages=passage_text(shown))
    assert verdict["answer"] == hop.answers[0] and lp == SURE  # read off a new passage
    grades = {g["id"]: g for g in verdict["passages"]}
    assert sorted(grades) == ["P1", "P2", "P3", "P4"] and grades["P4"]["grade"] == 10
    assert contains(grades["P4"]["quote"], hop.answers[0]) and grades["P4"]["quote"] in shown[3][1]
    assert all(grades[f"P{i}"]["grade"] < 10 for i in (1, 2, 3))


def test_a_dependant_is_recognised_through_its_known_suffix(reader, data):
    q = q_by_shape(reader, 2)
    parent, hop = q.hops
    gold, _ = passages(data, q)
    subgoal = f"{hop.question} (known: {parent.question} → {parent.answers[0]})"
    verdict, _ = reply(reader, body("judge", question=q.question, subgoal=subgoal,
                                    evidence=evidence_text(holding(gold, hop.answers[0]))))  # fmt: skip
    assert verdict["answer"] == hop.answers[0]
    # Only the parent's passage shown: the parent's answer is there, the hop's is not.
    only_parent = [x for x in holding(gold, parent.answers[0]) if not any(contains(x[1], a) for a in hop.answers)]
    verdict, _ = reply(reader, body("judge", question=q.question, subgoal=subgoal, evidence=evidence_text(only_parent)))
    assert verdict["answer"] == "unknown"


def test_queries_are_the_subgoals_own_words_never_its_answer(reader):
    for q in reader.questions.values():
        for k, hop in enumerate(q.hops):
            known = "; ".join(f"{q.hops[p].question} → {q.hops[p].answers[0]}" for p in hop.parents)
            task = f"{hop.question} (known: {known})" if known else hop.question
            out, _ = judge(reader, q, task)
            assert 1 <= len(out["next_queries"]) <= 2
            for query in out["next_queries"]:
                assert "#" not in query and not any(contains(query, a) for a in hop.answers), (q.id, k, query)
                if hop.parents:  # the parent answer shown in the prompt names the entity
                    assert any(contains(query, q.hops[p].answers[0]) for p in hop.parents), query
            again, _ = judge(reader, q, task, previous="\n".join(f"- {x}" for x in out["next_queries"]))
            assert not {norm(x) for x in again["next_queries"]} & {norm(x) for x in out["next_queries"]}


def test_a_dependant_whose_parent_found_nothing_searches_with_the_questions_words(reader):
    q = q_by_shape(reader, 2)
    hop = q.hops[1]
    out, _ = judge(reader, q, hop.question)
    wide = [x for x in out["next_queries"] if set(content_words(q.question)) <= set(norm(x).split())]
    assert wide and not any(contains(x, a) for x in out["next_queries"] for a in hop.answers)


def test_reranker_puts_the_answer_passage_first_and_lists_every_id(reader, data):
    q = q_by_shape(reader, 3)
    hop = q.hops[0]
    gold, other = passages(data, q)
    shown = other[:5] + [p for p in gold if contains(f"{p.title}\n{p.text}", hop.answers[0])][:1]
    blocks = "\n\n".join(passage_block(f"P{i}", Candidate(id=str(i), text=p.text, title=p.title), 1200)
                         for i, p in enumerate(shown, 1))  # fmt: skip
    ranked, _ = reply(reader, body("rerank_listwise", query=hop.question, passages=blocks))
    assert sorted(e["id"] for e in ranked["ranking"]) == sorted(f"P{i}" for i in range(1, len(shown) + 1))
    assert ranked["ranking"][0] == {"id": f"P{len(shown)}", "grade": 10, "why": "states the answer to the query"}
    assert all(e["grade"] < 10 for e in ranked["ranking"][1:])


def test_evidence_copies_the_sentence_that_holds_the_answer(reader, data):
    q = q_by_shape(reader, 2)
    hop = q.hops[1]
    gold, other = passages(data, q)
    p = next(p for p in gold if contains(p.text, hop.answers[0]))
    query = f"{hop.question} (known: {q.hops[0].question} → {q.hops[0].answers[0]})"
    cand = Candidate(id="c", text=p.text, title=p.title)
    out, _ = reply(reader, body("evidence_extract", query=query, passage=passage_block(None, cand, 4800)))
    assert out["evidence"] in p.text and contains(out["evidence"], hop.answers[0])
    miss = next(p for p in other if not contains(p.text, hop.answers[0]))
    cand = Candidate(id="d", text=miss.text, title=miss.title)
    out, _ = reply(reader, body("evidence_extract", query=query, passage=passage_block(None, cand, 4800)))
    assert miss.text.startswith(out["evidence"])  # no answer: the first sentence


def test_answerer_and_verifier_rest_on_the_block_that_holds_the_answer(reader, data):
    q = q_by_shape(reader, 2)
    gold, other = passages(data, q)
    final = q.hops[-1].answers[0]
    items = [(p.title, p.text) for p in other[:2]] + holding(gold, final)
    draft, _ = reply(reader, body("answer", question=q.question, reading="", evidence=evidence_text(items),
                                  findings="(none)", feedback=""))  # fmt: skip
    assert draft["short_answer"] == final and draft["claims"][0]["citations"] == [3]
    none, _ = reply(reader, body("answer", question=q.question, reading="", evidence=evidence_text(items[:2]),
                                 findings="(none)", feedback=""))  # fmt: skip
    assert none["short_answer"] == "unknown"

    def verdict(claim: str, cited: str) -> bool:
        claims = f'Claim 1: {claim}\n<evidence id="3">\n{cited}\n</evidence>'
        return reply(reader, body("verify", question=q.question, claims=claims))[0]["verdicts"][0]["supported"]

    assert verdict(f"The answer is {final}.", items[2][1])
    assert not verdict(f"The answer is {final}.", items[0][1])
    assert not verdict("The answer is somebody else.", items[2][1])


def test_a_generic_hop_is_told_apart_by_its_parents(reader):
    # "#1 >> spouse"-like hops repeat across questions: the known parent question decides which is meant.
    q = next(q for q in reader.questions.values() if q.hops and q.hops[-1].question.startswith("#1 >>"))
    twin = type("Q", (), {"id": "twin", "question": "Who is the spouse of someone else?", "answers": ["Nobody"]})()
    decomp = {"twin": [{"question": "Who is someone else?", "answer": "X"},
                       {"question": q.hops[-1].question, "answer": "Nobody"}]}  # fmt: skip
    two = GroundedReader(
        [twin, *(type("Q", (), {"id": q.id, "question": q.question, "answers": q.answers})(),)],
        {**decomp, q.id: [{"question": h.question, "answer": h.answers[0]} for h in q.hops]},
    )
    query = f"{q.hops[-1].question} (known: {q.hops[0].question} → {q.hops[0].answers[0]})"
    assert two.hop_of_query(query)[0].id == q.id
    assert two.hop_of_query(f"{q.hops[-1].question} (known: Who is someone else? → X)")[0].id == "twin"


def test_yes_no_counts_as_held_when_every_supporting_passage_is_shown():
    q = type("Q", (), {"id": "c", "question": "Are A and B both rivers?", "answers": ["yes"]})()
    support = [("A", "A is a river in France."), ("B", "B is a river in Spain.")]
    r = GroundedReader([q], supporting={"c": support})
    both, lp = reply(r, body("judge", question=q.question, subgoal=q.question, evidence=evidence_text(support)))
    assert (both["answer"], lp) == ("yes", SURE)
    one, lp = reply(r, body("judge", question=q.question, subgoal=q.question, evidence=evidence_text(support[:1])))
    assert (one["answer"], lp) == ("unknown", UNSURE)


def test_logprobs_reach_the_client_high_when_found_low_when_not(reader, data):
    q = q_by_shape(reader, 2)
    hop = q.hops[0]
    gold, _ = passages(data, q)
    with FakeOpenAIServer(responder=reader) as server:
        means = []
        for items in (holding(gold, hop.answers[0]), []):
            request = body("judge", question=q.question, subgoal=hop.question, evidence=evidence_text(items))
            request |= {"model": "fake-model", "logprobs": True, "top_logprobs": 3}
            choice = httpx.post(f"{server.base_url}/chat/completions", json=request).json()["choices"][0]
            tokens = choice["logprobs"]["content"]
            means.append(sum(t["logprob"] for t in tokens) / len(tokens))
    assert means == pytest.approx([SURE, UNSURE])


def test_the_agent_answers_a_two_hop_question_through_the_server(reader, data, tmp_path):
    """Every prompt of a real run is recognised (an unknown prompt would fail its call) and planned by hop."""
    from deepsearch.agent.config import load_settings
    from deepsearch.agent.eval.pool import pooled_index
    from deepsearch.agent.run import aresearch

    q = next(x for x in data.questions if len(reader.question(x.question).hops) == 2)
    with FakeOpenAIServer(responder=reader) as server:
        settings = load_settings(overrides={
            "llm.base_url": server.base_url, "llm.backend": "openai", "agent.web": False, "index.dense": False,
            "traces.dir": str(tmp_path / "traces"), "agent.checkpoint_db": str(tmp_path / "ckpt.sqlite"),
            "cache.dir": str(tmp_path / "cache")}).settings  # fmt: skip
        index = pooled_index(data, settings)
        result = asyncio.run(aresearch(q.question, settings=settings, indexes=[str(index)], web=False))
    assert len(result.subgoals) == 2 and result.subgoals[1]["depends_on"] == [result.subgoals[0]["id"]]
    assert norm(result.short_answer) in {norm(a) for a in q.answers}
