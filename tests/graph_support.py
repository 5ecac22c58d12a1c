"""Driving the research graph in tests: a role-scripted fake model, the sample index, fake web engines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepsearch.agent.config import Settings, load_settings
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.agent.llm.types import ChatMessage, LLMRequest
from deepsearch.agent.research_tools import ResearchTools
from deepsearch.tools.local_index import update_index
from deepsearch.tools.local_search import LocalSearcher

SAMPLE = Path(__file__).parent / "fixtures" / "sample_corpus"
Handler = Callable[[LLMRequest], Any]


def last_user(request: LLMRequest) -> str:
    return next(m.content for m in reversed(request.messages) if m.role == "user")


def section(request: LLMRequest, name: str) -> str:
    """The text under `# name` in the last user message (prompts are laid out in such sections)."""
    match = re.search(rf"^# {name}\n(.*?)(?=^# |\Z)", last_user(request), re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else ""


def evidence_count(request: LLMRequest) -> int:
    return len(re.findall(r'<evidence id="\d+"', last_user(request)))


def judge_grades(request: LLMRequest) -> list[dict]:
    """Grades for the judge's new passages: Kiss and Tell / Temple 9, others falling; first sentence quoted."""
    blocks = re.findall(r'<passage id="(P\d+)"[^>]*>\n(?:Title: [^\n]*\n)?(.*?)</passage>', last_user(request), re.S)
    ranked = sorted(blocks, key=lambda b: 0 if re.search(r"Shirley Temple|Kiss and Tell", b[1]) else 1)
    return [{"id": pid, "grade": max(0, 9 - 3 * i), "quote": re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0]}
            for i, (pid, text) in enumerate(ranked)]  # fmt: skip


class ScriptedModel:
    """Replies per role (intake, planner, judge, drafter, answerer, reviser, verifier; reranker and evidence
    with selection = rerank; outliner, section_writer and section_reviser in report runs).

    A handler returns a dict (sent as JSON) or a string; defaults give a plain, successful run.
    Every request is kept in `calls` as (role, request).
    """

    def __init__(self, **handlers: Handler | Any):
        self.handlers = handlers
        self.calls: list[tuple[str, LLMRequest]] = []

    def roles(self) -> list[str]:
        return [r for r, _ in self.calls]

    def __call__(self, request: LLMRequest) -> str:
        self.calls.append((request.role, request))
        handler = self.handlers.get(request.role, getattr(self, f"default_{request.role}", None))
        if handler is None:
            raise AssertionError(f"no script for role {request.role}")
        reply = handler(request) if callable(handler) else handler
        return reply if isinstance(reply, str) else json.dumps(reply)

    @staticmethod
    def default_intake(request: LLMRequest) -> dict:
        return {"standalone_question": section(request, "New question"), "ambiguous": False}

    @staticmethod
    def default_planner(request: LLMRequest) -> dict:
        if "changes" in last_user(request) or "Plan and results" in last_user(request):
            return {"changes": []}
        return {"subgoals": [{"question": section(request, "Question"), "depends_on": [], "source": "local"}]}

    @staticmethod
    def default_drafter(request: LLMRequest) -> dict:
        return {"answer": "unknown"}

    @staticmethod
    def default_judge(request: LLMRequest) -> dict:
        """Answered; the new passages graded like `default_reranker`, each quoted by its first sentence."""
        return {"answer": "Shirley Temple", "answered": True, "decision": "done", "passages": judge_grades(request),
                "rationale": "found it"}  # fmt: skip

    @staticmethod
    def default_answerer(request: LLMRequest) -> dict:
        return {"short_answer": "Chief of Protocol",
                "claims": [{"text": "Shirley Temple served as Chief of Protocol of the United States.",
                            "citations": list(range(1, min(evidence_count(request), 2) + 1))}]}  # fmt: skip

    default_reviser = default_answerer

    @staticmethod
    def default_reranker(request: LLMRequest) -> dict:
        """Listwise: the passages in the order shown, grades falling from 9; Kiss and Tell / Temple first."""
        blocks = re.findall(r'<passage id="(P\d+)"[^>]*>\n(.*?)</passage>', last_user(request), re.DOTALL)
        key = lambda b: 0 if re.search(r"Shirley Temple|Kiss and Tell", b[1]) else 1  # noqa: E731
        ranked = sorted(blocks, key=key)
        return {"reasoning": "by relevance",
                "ranking": [{"id": pid, "grade": max(0, 9 - 3 * i), "why": "mentions it"} for i, (pid, _) in
                            enumerate(ranked)]}  # fmt: skip

    @staticmethod
    def default_evidence(request: LLMRequest) -> dict:
        """Copy the passage's first sentence, word for word."""
        passage = re.search(r"<passage[^>]*>\n(?:Title: [^\n]*\n)?(.*?)</passage>", last_user(request), re.DOTALL)
        text = passage.group(1).strip() if passage else ""
        return {"contribution": "states the fact", "evidence": re.split(r"(?<=\.)\s", text, maxsplit=1)[0]}

    @staticmethod
    def default_closed_book(request: LLMRequest) -> dict:
        return {"answer": "unknown"}

    @staticmethod
    def default_answer_judge(request: LLMRequest) -> dict:
        """Correct when the graded answer equals a gold answer, ignoring case."""
        text = last_user(request)
        answer = re.search(r"<answer>\n(.*?)\n</answer>", text, re.DOTALL)
        golds = re.findall(r"^- (.*)$", text, re.MULTILINE)
        same = answer is not None and answer.group(1).strip().lower() in {g.strip().lower() for g in golds}
        return {"reason": "compared with the gold", "verdict": "correct" if same else "incorrect"}

    @staticmethod
    def default_outliner(request: LLMRequest) -> dict:
        steps = [re.sub(r"^\d+\.\s*", "", x) for x in section(request, "Research steps").splitlines() if x.strip()]
        return {"title": "A report", "sections": [{"heading": s[:60], "purpose": s} for s in steps]}

    @staticmethod
    def default_section_writer(request: LLMRequest) -> dict:
        """One sentence per evidence block: its first sentence, word for word, citing it."""
        blocks = re.findall(r'<evidence id="(\d+)"[^>]*>\n(.*?)\n</evidence>', last_user(request), re.DOTALL)
        return {"claims": [{"text": re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0][:400],
                            "citations": [int(n)]} for n, text in blocks]}  # fmt: skip

    default_section_reviser = default_section_writer

    @staticmethod
    def default_verifier(request: LLMRequest) -> dict:
        n = len(re.findall(r"^Claim \d+:", last_user(request), re.MULTILINE))
        return {"verdicts": [{"claim": i, "supported": True, "reason": "stated"} for i in range(1, n + 1)]}


def build_sample_index(directory: Path) -> Path:
    index_dir = directory / "sample-index"
    if not index_dir.exists():
        update_index(index_dir, [SAMPLE / "hotpot_sample.jsonl"])
    return index_dir


def settings_for(tmp_path: Path, **agent: Any) -> Settings:
    overrides = {f"agent.{k}": v for k, v in agent.items()}
    overrides |= {"traces.dir": str(tmp_path / "traces"), "agent.checkpoint_db": str(tmp_path / "ckpt.sqlite")}
    overrides.setdefault("agent.detect_ambiguity", True)
    return load_settings(overrides=overrides).settings


def local_tools(index_dir: Path, settings: Settings, **extra: Any) -> ResearchTools:
    searcher = LocalSearcher(index_dir, settings.index)
    return ResearchTools({"sample": searcher}, None, None, local_k=settings.agent.local_k, web_pages=0, **extra)


def fake_backend(model: ScriptedModel, **kw: Any) -> FakeBackend:
    return FakeBackend(model, **kw)


def role_of_prompt(body: dict) -> str:
    """The fake server sees only prompts: recover the role from each prompt's task wording."""
    # A structured-output retry appends the failed reply and the validation error: the task is further up.
    text = "\n".join(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if "from your own knowledge" in body["messages"][0]["content"]:
        return "closed_book"
    for needle, role in (("Write the outline of a research report", "outliner"),
                         ("Verifier feedback on your draft", "section_reviser"),
                         ("Write this section of a research report", "section_writer"),
                         ("Rewrite the new question", "intake"), ("Break the question into", "planner"),
                         ("Revise the plan", "planner"),
                         ("Judge this round", "judge"), ("Answer the sub-goal in a few words", "drafter"),
                         ("Reviewer feedback", "reviser"), ("Answer the question from the evidence", "answerer"),
                         ("For each claim", "verifier"), ("list every passage id exactly once", "reranker"),
                         ("copy\nthe sentence or sentences from the passage", "evidence"),
                         ("Answer to grade:", "answer_judge"), ("Write short criteria", "reranker"),
                         ("grade it from 0", "reranker"), ('Answer "yes" or "no"', "reranker")):  # fmt: skip
        if needle in text:
            return role
    raise ValueError("unknown prompt")


def rerank_kind(body: dict) -> str:
    """Which reranker prompt a `reranker` role is: listwise, criteria, pointwise or yesno."""
    text = prompt_text(body)
    for needle, kind in (("Write short criteria", "criteria"), ("grade it from 0", "pointwise"),
                         ('Answer "yes" or "no"', "yesno")):  # fmt: skip
        if needle in text:
            return kind
    return "listwise"


# ---- reading prompts as the fake server sees them (the grounded reader's eyes) ---------------------

_EVIDENCE = re.compile(r'<evidence id="(\d+)"([^>]*)>\n(.*?)\n</evidence>', re.DOTALL)
_PASSAGE = re.compile(r'<passage(?: id="([^"]+)")?[^>]*>\n(?:Title: ([^\n]*)\n)?(.*?)\n</passage>', re.DOTALL)
_TITLE = re.compile(r'title="([^"]*)"')


def prompt_text(body: dict) -> str:
    """The prompt's first user message: a structured-output retry appends messages after it."""
    return next((m["content"] for m in body["messages"] if m["role"] == "user"), "")


def section_of(text: str, name: str) -> str:
    """The text under `# name` (up to the next `# ` heading), stripped."""
    match = re.search(rf"^# {re.escape(name)}\n(.*?)(?=^# |\Z)", text, re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else ""


def evidence_blocks(text: str) -> list[tuple[int, str, str]]:
    """(id, title, text) of every `<evidence id="n" …>` block; the title is "" where the block has none."""
    out = []
    for n, attrs, body in _EVIDENCE.findall(text):
        title = _TITLE.search(attrs)
        out.append((int(n), title.group(1) if title else "", body))
    return out


def passage_blocks(text: str) -> list[tuple[str, str, str]]:
    """(alias or "", title, text) of every `<passage …>` block."""
    return [(alias, title, body) for alias, title, body in _PASSAGE.findall(text)]


def _top_level(text: str, sep: str) -> list[int]:
    """Offsets of `sep` outside parentheses."""
    depth, hits = 0, []
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith(sep, i):
            hits.append(i)
    return hits


def _opening(text: str) -> int:
    """Offset of the "(" that the final ")" closes, or -1."""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += (text[i] == ")") - (text[i] == "(")
        if depth == 0:
            return i
    return -1


def split_known(question: str) -> tuple[str, list[tuple[str, str]]]:
    """A dependant's question as dispatch writes it, "Q (known: P → A; …)", as (Q, [(P, A), …]) with the
    parents' own known answers flattened in; a parent's P is its bare question."""
    question = question.strip()
    marker = _opening(question) if question.endswith(")") else -1
    if marker <= 0 or not question.startswith("(known: ", marker):
        return question, []
    core, inner = question[:marker].strip(), question[marker + len("(known: ") : -1]
    pairs: list[tuple[str, str]] = []
    cuts = [0, *(i + 2 for i in _top_level(inner, "; ")), len(inner) + 2]
    for a, b in zip(cuts, cuts[1:], strict=False):
        item = inner[a : b - 2]
        arrows = _top_level(item, " → ")
        if not arrows:
            continue
        parent, parent_pairs = split_known(item[: arrows[-1]])
        pairs += [*parent_pairs, (parent, item[arrows[-1] + len(" → ") :].strip())]
    return core, pairs


def server_responder(model: ScriptedModel):
    """A FakeOpenAIServer responder that answers like `model` does for the role of each prompt."""

    def respond(body: dict) -> str:
        request = LLMRequest(messages=[ChatMessage(**m) for m in body["messages"]], role=role_of_prompt(body))
        return model(request)

    return respond
