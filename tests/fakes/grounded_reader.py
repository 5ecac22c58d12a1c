"""The grounded reader: a scripted model, behind the fake OpenAI server, that answers only from its prompt.

It knows a data set's questions, their gold answers and (MuSiQue) their gold decomposition, and uses them
for one thing: to recognise an answer when the pipeline puts it in front of it. Each reply is built from
the prompt alone:

- planner: the gold decomposition as sub-goals ("#k" → depends_on k), else the bare question; no revisions.
- planner queries / judge's next_queries: the sub-goal's own words ("#k" filled with the parent answer the
  prompt shows), never a gold title, passage or answer the pipeline has not found.
- judge / drafter: the hop's gold answer when an evidence block holds it, else "unknown"; logprobs are
  high (SURE) when found, low (UNSURE) when not, so belief from logprobs means something.
- reranker: passages holding the hop answer graded 10, the rest by words shared with the query;
  evidence extraction copies the sentence holding the answer, else the first sentence.
- answerer / reviser: the final answer when a block holds it, citing that block; else "unknown" (a reader
  short of the last hop does not offer an earlier hop's answer as the answer). verifier: a claim is
  supported only when a cited block holds its answer, or when it is a sentence of a cited block.
- report outliner: a heading and purpose per research step; section writer / reviser: for each block that
  holds a hop's answer, the sentence stating it, citing that block; nothing when no block holds one. With
  `miscite=True` it also writes, in every draft, one sentence naming a found answer but citing a block that
  does not state it (a writer's slip the verifier must catch: removed after the revision repeats it).

A yes/no gold answer cannot be read off a passage: it counts as held when the question's supporting
passages are all shown. An instrument for tests and benchmarks, not a backend users choose.

    reader = GroundedReader.from_dataset(load_dataset("tests/fixtures/musique_slice", Path(".")))
    with FakeOpenAIServer(responder=reader) as server: ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.graph_support import (
    evidence_blocks,
    passage_blocks,
    prompt_text,
    rerank_kind,
    role_of_prompt,
    section_of,
    split_known,
)

SURE, UNSURE = -0.02, -2.5  # per-token logprobs: exp → belief 0.98 when found, 0.08 when not
UNKNOWN = "unknown"
_STOP = {
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "was", "were",
    "are", "be", "been", "did", "does", "do", "what", "which", "who", "whom", "whose", "when", "where", "why",
    "how", "many", "much", "that", "this", "these", "those", "as", "it", "its", "into", "than", "then", "there",
    "their", "his", "her", "he", "she", "they", "located", "name", "called"
}  # fmt: skip
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "no", "co", "inc", "ltd", "mt", "ft"}
Block = tuple[int | str, str, str]  # (id, title, text)


def norm(text: str) -> str:
    """Lower case, punctuation to spaces, no articles: "then-girlfriend" and "then - girlfriend" agree."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in {"a", "an", "the"})


def contains(haystack: str, needle: str) -> bool:
    n = norm(needle)
    return bool(n) and f" {n} " in f" {norm(haystack)} "


def content_words(text: str) -> list[str]:
    return [w for w in norm(text).split() if w not in _STOP]


@dataclass(frozen=True)
class Hop:
    question: str  # as the data set writes it, "#k" references kept
    answers: tuple[str, ...]  # gold answer first, then aliases
    parents: tuple[int, ...] = ()  # 0-based indexes of the hops it references


@dataclass(frozen=True)
class GroundedQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    hops: tuple[Hop, ...]  # the gold decomposition; empty = none (HotpotQA)
    supporting: tuple[tuple[str, str], ...] = ()  # (title, text) of the gold supporting passages

    @property
    def whole(self) -> Hop:
        """The question itself as one sub-goal (the plan when there is no decomposition)."""
        return Hop(self.question, self.answers)

    def all_hops(self) -> list[Hop]:
        return [*self.hops, self.whole]

    def held(self, hop: Hop, blocks: Iterable[Block]) -> tuple[str, list[int | str]] | None:
        """(the answer, ids of the blocks holding it), or None: what the prompt shows of the hop's answer."""
        blocks = list(blocks)
        if {norm(a) for a in hop.answers} <= {"yes", "no"}:
            shown = [b for b in blocks if any(_is_passage(b, t, x) for t, x in self.supporting)]
            covered = all(any(_is_passage(b, t, x) for b in shown) for t, x in self.supporting)
            return (hop.answers[0], [b[0] for b in shown]) if self.supporting and covered else None
        for answer in hop.answers:
            ids = [b[0] for b in blocks if contains(f"{b[1]}\n{b[2]}", answer)]
            if ids:
                return answer, ids
        return None


def _is_passage(block: Block, title: str, text: str) -> bool:
    """The block shows this passage: same title, or its opening words."""
    opening = " ".join(norm(text).split()[:8])
    return (bool(block[1]) and norm(block[1]) == norm(title)) or (bool(opening) and contains(block[2], opening))


def _closest(q: GroundedQuestion, core: str) -> Hop:
    """A reworded sub-goal: the hop sharing most of its words (Jaccard ≥ 0.6), else the whole question."""
    words = set(content_words(re.sub(r"#\d+", " ", core)))

    def overlap(h: Hop) -> float:
        other = set(content_words(re.sub(r"#\d+", " ", h.question)))
        return len(words & other) / max(1, len(words | other))

    best = max(q.all_hops(), key=overlap)
    return best if overlap(best) >= 0.6 else q.whole


def sentences(text: str) -> list[str]:
    """Sentences, word for word; an initial ("G. Stanley Hall") or an abbreviation does not end one."""
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        before = text[start : m.start()].split()
        word = before[-1].strip(".!?\"')]").lower() if before else ""
        if len(word) <= 1 or "." in word or word in _ABBREVIATIONS:
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    return [x for x in [*out, text[start:].strip()] if x]


def load_decompositions(path: Path) -> dict[str, list[dict]]:
    """id → MuSiQue `question_decomposition` from a question file (json list or jsonl); {} when it has none."""
    text = Path(path).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else (
        json.loads(text))  # fmt: skip
    return {str(r["id"]): r["question_decomposition"] for r in rows if r.get("question_decomposition")}


def _hops(decomposition: list[dict], final_answers: Sequence[str]) -> tuple[Hop, ...]:
    hops = []
    for i, step in enumerate(decomposition):
        question = " ".join(step["question"].split())
        parents = tuple(sorted({int(k) - 1 for k in re.findall(r"#(\d+)", question) if 0 < int(k) <= i}))
        answers = [step["answer"], *(final_answers if i == len(decomposition) - 1 else [])]
        hops.append(Hop(question, tuple(dict.fromkeys(a for a in answers if a)), parents))
    return tuple(hops)


class GroundedReader:
    """A FakeOpenAIServer responder: `reader(body)` → {"content": json, "logprob": …}."""

    def __init__(
        self,
        questions: Sequence[Any],
        decompositions: Mapping[str, list[dict]] | None = None,
        supporting: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        miscite: bool = False,
    ):
        """`questions`: BatchQuestion-like (id, question, answers); `supporting`: id → gold (title, text)."""
        self.miscite = miscite
        self.questions: dict[str, GroundedQuestion] = {}
        for q in questions:
            answers = tuple(q.answers)
            hops = _hops((decompositions or {}).get(q.id, []), answers)
            gq = GroundedQuestion(q.id, " ".join(q.question.split()), answers, hops,
                                  tuple((supporting or {}).get(q.id, ())))  # fmt: skip
            self.questions[norm(gq.question)] = gq

    @classmethod
    def from_dataset(cls, dataset: Any, questions: Sequence[Any] | None = None, **options: Any) -> GroundedReader:
        """From a loaded Dataset: decompositions read from its question file, supporting passages from its pool."""
        by_id = {p.id: (p.title, p.text) for p in dataset.passages}
        chosen = dataset.questions if questions is None else questions
        supporting = {q.id: [by_id[p] for p in q.meta.get("gold_passages", []) if p in by_id] for q in chosen}
        return cls(chosen, load_decompositions(dataset.path), supporting, **options)

    # ---- recognising what a prompt is about ------------------------------------------------------

    def question(self, text: str) -> GroundedQuestion | None:
        return self.questions.get(norm(text))

    def hop(self, q: GroundedQuestion, subgoal: str) -> tuple[Hop, dict[int, str]]:
        """The hop a sub-goal asks (the whole question when it is none of them) and the parent answers shown."""
        core, pairs = split_known(subgoal)
        hop = next((h for h in q.all_hops() if norm(h.question) == norm(core)), None) or _closest(q, core)
        known = {}
        for parent, answer in pairs:
            k = next((i for i, h in enumerate(q.hops) if norm(h.question) == norm(parent)), None)
            if k is not None and norm(answer) != UNKNOWN:
                known[k] = answer
        return hop, known

    def hop_of_query(self, query: str) -> tuple[GroundedQuestion, Hop] | None:
        """For prompts that show only a query (reranker, extraction): the hop it names, across all questions;
        a generic hop ("#1 >> spouse") is told apart by the parent questions its known answers name."""
        core, pairs = split_known(query)
        parents = {norm(p) for p, _ in pairs}
        best, best_score = None, -1
        for q in self.questions.values():
            for h in q.all_hops():
                if norm(h.question) == norm(core):
                    score = sum(norm(o.question) in parents for o in q.hops)
                    if score > best_score:
                        best, best_score = (q, h), score
        return best

    # ---- replies ---------------------------------------------------------------------------------

    def __call__(self, body: dict) -> dict[str, Any]:
        role = role_of_prompt(body)
        text = prompt_text(body)
        handler = getattr(self, f"_{rerank_kind(body)}" if role == "reranker" else f"_{role}")
        reply, logprob = handler(text)
        out: dict[str, Any] = {"content": json.dumps(reply, ensure_ascii=False)}  # as a model writes it
        if logprob is not None:
            out["logprob"] = logprob
        return out

    def _intake(self, text: str):
        return {"standalone_question": section_of(text, "New question"), "ambiguous": False,
                "assumption": "", "clarifying_question": ""}, None  # fmt: skip

    def _planner(self, text: str):
        if "Revise the plan" in text:
            return {"changes": []}, None
        question = section_of(text, "Question")
        q = self.question(question)
        steps = [(h.question, [p + 1 for p in h.parents]) for h in q.hops] if q and q.hops else [(question, [])]
        return {"subgoals": [{"question": s, "depends_on": d, "source": "local", "queries": self._planned(q, s)}
                             for s, d in steps]}, None  # fmt: skip

    @staticmethod
    def _planned(q: GroundedQuestion | None, step: str) -> list[str]:
        """A step's first searches, from its own words: its keywords (`#k` kept for the parent's answer), then
        with the question's words (what a planner adds to a terse hop)."""
        words = [w for w in re.sub(r"#(\d+)", r" ref\1 ", step).split() if w]
        keys = [f"#{w[3:]}" if re.fullmatch(r"ref\d+", w) else w for w in content_words(" ".join(words))]
        context = [*keys, *(w for w in content_words(q.question) if w not in keys)] if q else keys
        out = []
        for v in (" ".join(keys), " ".join(context)):
            if v and norm(v) != norm(step) and v not in out:
                out.append(v[:120])
        return out

    def _variants(self, q: GroundedQuestion, subgoal: str) -> list[str]:
        """Wordings of a sub-goal from the prompt's words: filled in, keywords, the parent answers first, with
        the question's words (what a reader does when a parent's answer is missing or the hop is terse), and
        each half of its keywords; the judge hands them out in this order when it continues."""
        hop, known = self.hop(q, subgoal)
        filled = re.sub(r"#(\d+)", lambda m: known.get(int(m.group(1)) - 1, ""), hop.question)
        filled = " ".join(filled.replace(">>", " ").split())
        words = content_words(filled)
        shown = [known[k] for k in sorted(known)]
        rest = [w for w in words if not any(contains(a, w) for a in shown)]
        context = [*words, *(w for w in content_words(q.question) if w not in words)]
        half = (len(words) + 1) // 2  # each half of a long sub-goal names a different thing to look for
        variants = [filled, " ".join(words), " ".join([*shown, *rest]), " ".join(context)]
        variants += [" ".join(words[:half]), " ".join(words[half:])] if len(words) >= 4 else []
        if set(hop.parents) - set(known):  # a parent found nothing: "#1" is a hole the question's words fill
            variants.insert(0, variants.pop())
        out: list[str] = []
        for v in (v[:120].strip() for v in variants):
            if v and norm(v) not in {norm(o) for o in out}:
                out.append(v)
        return out

    def _judged(self, text: str) -> tuple[GroundedQuestion | None, str, tuple[str, list] | None]:
        q = self.question(section_of(text, "Question"))
        subgoal = section_of(text, "Sub-goal")
        if subgoal == "(the question itself)":
            subgoal = section_of(text, "Question")
        if q is None:
            return None, subgoal, None
        hop, _ = self.hop(q, subgoal)
        return q, subgoal, q.held(hop, [*evidence_blocks(text), *passage_blocks(text)])

    def _graded(self, q: GroundedQuestion | None, subgoal: str, text: str) -> list[dict]:
        """The new passages: 10 with the sentence holding the hop's answer quoted (for yes/no, each supporting
        passage), else by shared words."""
        hop = self.hop(q, subgoal)[0] if q else None
        core, pairs = split_known(subgoal)
        words = set(content_words(core + " " + " ".join(a for _, a in pairs)))
        grades = []
        yes_no = bool(q and hop) and {norm(a) for a in hop.answers} <= {"yes", "no"}
        for alias, title, body in passage_blocks(text):
            holding = [x for x in sentences(body) if q and hop and q.held(hop, [(0, title, x)])]
            if yes_no and any(_is_passage((0, title, body), t, x) for t, x in q.supporting):
                grades.append({"id": alias, "grade": 10, "quote": (sentences(body) or [body])[0]})  # a fact compared
                continue
            if q and hop and q.held(hop, [(0, title, body)]):
                grades.append({"id": alias, "grade": 10, "quote": holding[0] if holding else body})
                continue
            grade = round(6 * len(words & set(content_words(f"{title} {body}"))) / max(1, len(words)))
            grades.append({"id": alias, "grade": grade, "quote": (sentences(body) or [""])[0] if grade >= 5 else ""})
        return grades

    def _judge(self, text: str):
        q, subgoal, found = self._judged(text)
        passages = self._graded(q, subgoal, text)
        if found:
            reply = {"answer": found[0], "answered": True, "decision": "done", "next_queries": [],
                     "passages": passages, "rationale": f"{', '.join(map(str, found[1]))} states it"}  # fmt: skip
            return reply, SURE
        searched = {norm(x[2:]) for x in section_of(text, "Searched").splitlines() if x[:2] == "- "}
        variants = self._variants(q, subgoal) if q else [subgoal]
        wanted = re.search(r"up to (\d+)\n?\s*`next_queries`", text)
        fresh = [v for v in variants if norm(v) not in searched][: int(wanted.group(1)) if wanted else 2]
        reply = {"answer": UNKNOWN, "answered": False, "decision": "continue", "next_queries": fresh,
                 "passages": passages, "rationale": "the evidence does not state it"}  # fmt: skip
        return reply, UNSURE

    def _drafter(self, text: str):
        _, _, found = self._judged(text)
        return {"answer": found[0] if found else UNKNOWN}, SURE if found else UNSURE

    def _answerer(self, text: str):
        q = self.question(section_of(text, "Question"))
        blocks = evidence_blocks(text)
        found = q.held(q.hops[-1] if q.hops else q.whole, blocks) if q else None
        if not found:
            claim = {"text": "The evidence does not state the answer.", "citations": [blocks[0][0] if blocks else 1]}
            return {"short_answer": UNKNOWN, "claims": [claim]}, None
        answer, ids = found
        body = next(b for n, _, b in blocks if n == ids[0])
        stated = next((x for x in sentences(body) if contains(x, answer)), f"The answer is {answer}.")
        return {"short_answer": answer, "claims": [{"text": stated[:400], "citations": ids[:4]}]}, None

    _reviser = _answerer

    def supports(self, question: str, claim: str, cited: Sequence[Block]) -> bool:
        """The grounded verdict: the claim is a sentence of a cited block, or it names an answer (of any hop)
        that a cited block holds (a yes/no answer: when the cited blocks are the supporting passages)."""
        if any(contains(body, claim) for _, _, body in cited):
            return True
        q = self.question(question)
        golds = {a for h in q.all_hops() for a in h.answers} if q else set()
        mentioned = [a for a in golds if contains(claim, a) and norm(a) not in {"yes", "no"}]
        yes_no = [a for a in golds if norm(a) in {"yes", "no"} and contains(claim, a)]
        text = " ".join(body for _, _, body in cited)
        return any(contains(text, a) for a in mentioned) or bool(
            yes_no and q and q.held(Hop(q.question, tuple(yes_no)), cited)
        )

    def _verifier(self, text: str):
        question = section_of(text, "Question")
        # Not section_of: a cited passage may hold a line that starts with "# ".
        claims = text[text.find("# Claims and the evidence each one cites") : text.rfind("\n# Task")]
        parts = re.split(r"^Claim (\d+): ", claims, flags=re.M)
        verdicts = []
        for n, part in zip(parts[1::2], parts[2::2], strict=True):
            ok = self.supports(question, part.split("\n", 1)[0], evidence_blocks(part))
            reason = "the cited evidence states it" if ok else "the cited evidence does not state it"
            verdicts.append({"claim": int(n), "supported": ok, "reason": reason})
        return {"verdicts": verdicts or [{"claim": 1, "supported": False, "reason": "no claims"}]}, None

    # ---- reports -------------------------------------------------------------------------------------

    def _outliner(self, text: str):
        steps = [re.sub(r"^\d+\.\s*", "", x) for x in section_of(text, "Research steps").splitlines() if x.strip()]
        return {"title": f"Report: {section_of(text, 'Question')}",
                "sections": [{"heading": s, "purpose": f"Answers: {s}"} for s in steps]}, None

    def _section_writer(self, text: str):
        q = self.question(section_of(text, "Question"))
        blocks = evidence_blocks(text)
        wanted = re.search(r"up to (\d+) short factual sentences", text)
        limit = int(wanted.group(1)) if wanted else 4
        claims, used = [], set()
        for hop in (q.all_hops() if q else []):
            if {norm(a) for a in hop.answers} <= {"yes", "no"}:
                continue
            for n, _, body in blocks:
                found = q.held(hop, [(n, "", body)])
                stated = next((x for x in sentences(body) if found and contains(x, found[0])), None)
                if stated and norm(stated) not in used:
                    used.add(norm(stated))
                    claims.append({"text": stated[:400], "citations": [n]})
        claims = claims[:limit]
        if self.miscite and q and len(blocks) >= 2:  # a found answer attributed to a block that does not state it
            found = [(a, m) for h in q.all_hops() for a in h.answers[:1] if norm(a) not in {"yes", "no"}
                     for m, _, other in blocks if not contains(other, a) and any(contains(b, a) for _, _, b in blocks)]
            claims += [{"text": f"{a} is named by this source.", "citations": [m]} for a, m in found[:1]]
        return {"claims": claims}, None

    _section_reviser = _section_writer

    # ---- reranking and extraction: the query is all these prompts show of the sub-goal ---------------

    def _grade(self, query: str, title: str, body: str) -> tuple[int, str]:
        located = self.hop_of_query(query)
        if located and located[0].held(located[1], [(0, title, body)]):
            return 10, "states the answer to the query"
        core, pairs = split_known(query)
        words = set(content_words(core + " " + " ".join(a for _, a in pairs)))
        shared = len(words & set(content_words(f"{title} {body}")))
        return round(6 * shared / max(1, len(words))), f"shares {shared} of {len(words)} query words"

    def _listwise(self, text: str):
        query = section_of(text, "Query")
        graded = [(alias, *self._grade(query, title, body)) for alias, title, body in passage_blocks(text)]
        graded.sort(key=lambda g: -g[1])
        ranking = [{"id": alias, "grade": grade, "why": why} for alias, grade, why in graded]
        return {"reasoning": "passages that state the answer first, then by words shared with the query",
                "ranking": ranking or [{"id": "P1", "grade": 0, "why": "no passages"}]}, None  # fmt: skip

    def _criteria(self, text: str):
        return {"must_contain": [f"a statement that answers: {section_of(text, 'Query')}"], "only_topical": []}, None

    def _pointwise(self, text: str):
        _, title, body = (passage_blocks(text) or [("", "", "")])[0]
        grade, why = self._grade(section_of(text, "Query"), title, body)
        return {"rationale": why, "score": grade}, None

    def _yesno(self, text: str):
        _, title, body = (passage_blocks(text) or [("", "", "")])[0]
        grade, _ = self._grade(section_of(text, "Query"), title, body)
        return {"relevant": "yes" if grade >= 5 else "no"}, SURE

    def _evidence(self, text: str):
        _, title, body = (passage_blocks(text) or [("", "", "")])[0]
        parts = sentences(body.strip()) or [""]
        located = self.hop_of_query(section_of(text, "Query"))
        holding = [s for s in parts if located and located[0].held(located[1], [(0, "", s)])]
        chosen = holding[0] if holding else parts[0]
        contribution = "it states the answer" if holding else "it is about the query's subject"
        return {"contribution": contribution, "evidence": chosen}, None

    def _closed_book(self, text: str):
        return {"answer": UNKNOWN}, None  # no evidence in the prompt: a grounded reader does not know

    def _answer_judge(self, text: str):
        answer = re.search(r"<answer>\n(.*?)\n</answer>", text, re.DOTALL)
        golds = {norm(g) for g in re.findall(r"^- (.*)$", text, re.MULTILINE)}
        same = answer is not None and norm(answer.group(1)) in golds
        return {"reason": "compared with the gold", "verdict": "correct" if same else "incorrect"}, None
