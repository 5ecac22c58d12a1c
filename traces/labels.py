"""What each used LLM call of a run later earned: labels a trainer can select steps by.

`step_labels(traj)` maps the step index of every call `used_llm_calls` keeps to a flat dict of JSON
values. Every record of a role carries the same keys (None where the run does not say), so a column
of an HF `datasets` / Arrow table has one type: see ROLE_KEYS.

- every role: `run_correct` (gold match or judge verdict), `run_f1`, `termination`;
- judge and reranker (one research round of one sub-goal): the round's `decision` (its judge step),
  `belief` and `gain` (its information step), `kept` (passages its rerank steps kept),
  `evidence_has_gold` (a kept passage holds a gold answer, SQuAD-normalised), `evidence_text` (where
  that passage text came from: passage, citation or page, the coarsest used), `answer_has_gold` (the
  judge's answer names a gold answer), `last_round`, and the sub-goal's end: `subgoal_status`,
  `subgoal_answer`, `subgoal_answered`;
- planner: `kind` (plan or reflect), `subgoals` planned (added by a reflection), `changes` (of a
  reflection), `subgoals_answered` (of the sub-goals its DAG changes added), `replanned`;
- answerer and reviser: `claims` and `claims_supported` (the verifier's claim steps after it),
  `verified_share`, `verdict` (answer-level verdict), `cited`, `answer_has_gold`, `revised`;
- verifier: `verdicts`, `supported`, `rejected` (its parsed verdicts), `revision_followed`;
- report section writer and reviser: `section` (its id), `claims` and `claims_supported` (the verifier's
  verdicts on this draft), `verified_share`, `revised`, and the section's end: `removed`, `section_status`;
  outliner: `sections` (in its outline), `sections_written`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from deepsearch.agent.belief import is_unknown

from .messages import used_llm_calls
from .schema import (
    InformationStep,
    JudgeStep,
    LLMCallStep,
    ReportStep,
    RerankStep,
    Step,
    ToolCallStep,
    Trajectory,
)
from .scoring import normalize_answer

COMMON_KEYS = ("run_correct", "run_f1", "termination")
ROUND_KEYS = (
    "decision", "belief", "gain", "kept", "evidence_has_gold", "evidence_text", "answer_has_gold", "last_round",
    "subgoal_status", "subgoal_answer", "subgoal_answered",
)  # fmt: skip
ROLE_KEYS: dict[str, tuple[str, ...]] = {
    "judge": ROUND_KEYS,
    "reranker": ROUND_KEYS,
    "planner": ("kind", "subgoals", "changes", "subgoals_answered", "replanned"),
    "answerer": ("claims", "claims_supported", "verified_share", "verdict", "cited", "answer_has_gold", "revised"),
    "verifier": ("verdicts", "supported", "rejected", "revision_followed"),
}
ROLE_KEYS["reviser"] = ROLE_KEYS["answerer"]
SECTION_ROLES = ("section_writer", "section_reviser")
ROLE_KEYS |= {role: ("section", "claims", "claims_supported", "verified_share", "revised", "removed", "section_status")
              for role in SECTION_ROLES}  # fmt: skip
ROLE_KEYS["outliner"] = ("sections", "sections_written")
ANSWER_ROLES = ("answerer", "reviser")
# How directly the text checked for a gold answer is the kept passage: its own text, the final answer's quote
# of it, or the whole page it was cut from (a page may hold the answer where the passage does not).
_TEXT_LEVELS = ("passage", "citation", "page")


def label_keys(role: str) -> tuple[str, ...]:
    """The keys of every label dict of `role`, in order."""
    return COMMON_KEYS + ROLE_KEYS.get(role, ())


def _golds(traj: Trajectory) -> list[str]:
    golds = (traj.final.gold if traj.final else None) or traj.gold or []
    return [g for g in (normalize_answer(x) for x in golds) if g]


def has_gold(text: str | None, golds: list[str]) -> bool | None:
    """Whether `text` holds one of the (normalised) gold answers as whole words; None without gold or text."""
    if not golds or text is None:
        return None
    padded = f" {normalize_answer(text)} "
    return any(f" {g} " in padded for g in golds)


def _short_hash(text: str) -> str:
    """agent/research_tools.py names a page's passages web:<sha1(url)[:10]>#n and its snippet web:<…>:snippet."""
    return hashlib.sha1(text.encode()).hexdigest()[:10]


class _Texts:
    """A kept passage's text, from the best source the trajectory has (see _TEXT_LEVELS)."""

    def __init__(self, traj: Trajectory):
        self.contents = traj.contents
        self.citations = {c.evidence_id: c.quote for c in (traj.final.citations if traj.final else []) if c.quote}
        self.results: dict[str, str] = {}  # result id -> its page text or snippet
        self.pages: dict[str, str] = {}  # short hash of a fetched URL -> page text
        self.snippets: dict[str, str] = {}  # short hash of a searched URL -> snippet
        for step in traj.steps:
            if not isinstance(step, ToolCallStep):
                continue
            for r in step.results:
                content = self.contents.get(r.content_hash) if r.content_hash else None
                text = content.text if content else r.snippet
                if r.id and text:
                    self.results.setdefault(r.id, text)
                if content is not None:
                    for url in {step.arguments.get("url"), r.url} - {None}:
                        self.pages.setdefault(_short_hash(str(url)), content.text)
                elif r.url and r.snippet:
                    self.snippets.setdefault(_short_hash(r.url), r.snippet)

    def text(self, candidate: Any) -> tuple[str | None, str | None]:
        """(text, level) of a rerank candidate, (None, None) when the trajectory does not hold it."""
        text_hash = getattr(candidate, "text_hash", None)
        if text_hash and text_hash in self.contents:
            return self.contents[text_hash].text, "passage"
        if candidate.id in self.results:
            return self.results[candidate.id], "passage"
        for key in (getattr(candidate, "evidence_id", None), candidate.id):
            if key and key in self.citations:
                return self.citations[key], "citation"
        doc, _, rest = candidate.id.partition("#")
        if candidate.id.startswith("web:") and candidate.id.endswith(":snippet"):
            snippet = self.snippets.get(candidate.id.removeprefix("web:").removesuffix(":snippet"))
            return (snippet, "passage") if snippet else (None, None)
        if doc.startswith("web:") and rest and doc.removeprefix("web:") in self.pages:
            return self.pages[doc.removeprefix("web:")], "page"
        return None, None


def _evidence_labels(reranks: list[RerankStep], texts: _Texts, golds: list[str]) -> dict[str, Any]:
    if not reranks:
        return {"kept": None, "evidence_has_gold": None, "evidence_text": None}
    kept = [c for s in reranks for c in s.candidates if c.kept]
    found = [texts.text(c) for c in kept]
    levels = [level for _, level in found if level]
    hit = any(has_gold(text, golds) for text, _ in found if text is not None)
    if not golds:
        verdict = None
    elif hit:
        verdict = True
    else:  # nothing found holds the gold: a "no" only when every kept passage's text was there to read
        verdict = False if len(levels) == len(kept) else None
    coarsest = max(levels, key=_TEXT_LEVELS.index) if levels else None
    return {"kept": len(kept), "evidence_has_gold": verdict, "evidence_text": coarsest}


def _parsed(step: LLMCallStep) -> dict[str, Any]:
    return step.parsed if isinstance(step.parsed, dict) else {}


class _Run:
    """Indexes over one trajectory's steps, built once for all its labels."""

    def __init__(self, traj: Trajectory):
        self.traj = traj
        self.golds = _golds(traj)
        self.texts = _Texts(traj)
        self.used = used_llm_calls(traj)
        self.rounds: dict[tuple[str | None, int | None], list[Step]] = {}
        self.judge_calls: dict[str | None, list[int]] = {}  # sub-goal -> its judge calls' indexes
        self.info: dict[str, list[InformationStep]] = {}
        for step in traj.steps:
            if isinstance(step, RerankStep | JudgeStep | InformationStep):
                self.rounds.setdefault((step.subgoal, step.round), []).append(step)
            if isinstance(step, InformationStep) and step.subgoal:
                self.info.setdefault(step.subgoal, []).append(step)
        for step in self.used:
            if step.role == "judge":
                self.judge_calls.setdefault(step.subgoal, []).append(step.index)
        self.dag = {sg.id: sg for sg in traj.dag}
        self._subgoal_end: dict[str, tuple[str | None, str | None, bool | None]] = {}

    def common(self) -> dict[str, Any]:
        final = self.traj.final
        f1 = final.scores.f1 if final and final.scores else None
        return {
            "run_correct": self.traj.correct,
            "run_f1": float(f1) if f1 is not None else None,
            "termination": final.termination if final else None,
        }

    def subgoal_end(self, subgoal: str | None) -> tuple[str | None, str | None, bool | None]:
        """(status in the DAG, answer, answered): the DAG's answer, else the best-believed draft as the
        researcher's finish takes it (belief above 0, a later equal one wins), else nothing."""
        if subgoal is None:
            return None, None, None
        if subgoal not in self._subgoal_end:
            sg = self.dag.get(subgoal)
            status = sg.status if sg else None
            answer = sg.answer if sg else None
            if answer is None:
                best = None
                for info in self.info.get(subgoal, []):
                    if info.belief > 0 and info.draft and (best is None or info.belief >= best.belief):
                        best = info
                answer = best.draft.strip() if best and best.draft else None
            if status == "dropped":
                answered: bool | None = False
            elif answer is not None and not is_unknown(answer):
                answered = True
            elif status == "done" and answer is None:
                answered = True  # judged done; the log keeps no answer text
            elif sg is not None or subgoal in self.info or subgoal in self.judge_calls:
                answered = False
            else:
                answered = None
            self._subgoal_end[subgoal] = (status, answer, answered)
        return self._subgoal_end[subgoal]

    def round_labels(self, step: LLMCallStep) -> dict[str, Any]:
        """The sub-goal round's outcome: judge step, information step and rerank steps of the same
        sub-goal and round (the first after the call where there are several)."""
        steps = self.rounds.get((step.subgoal, step.round), [])

        def first(kind: type, where=lambda s: True) -> Any:
            after = [s for s in steps if isinstance(s, kind) and where(s)]
            later = [s for s in after if s.index > step.index]
            return (later or after or [None])[0]

        verdict = first(JudgeStep, lambda s: s.target_kind == "subgoal")
        info = first(InformationStep)
        reranks = [s for s in steps if isinstance(s, RerankStep)]
        calls = self.judge_calls.get(step.subgoal, [])
        status, answer, answered = self.subgoal_end(step.subgoal)
        answer_text = _parsed(step).get("answer") if step.role == "judge" else None
        return {
            "decision": (verdict.decision or None) if verdict else None,
            "belief": float(info.belief) if info else None,
            "gain": float(info.gain) if info else None,
            **_evidence_labels(reranks, self.texts, self.golds),
            "answer_has_gold": has_gold(answer_text, self.golds) if isinstance(answer_text, str) else None,
            "last_round": (not any(i > step.index for i in calls)) if step.role == "judge" else None,
            "subgoal_status": status,
            "subgoal_answer": answer,
            "subgoal_answered": answered,
        }

    def planner_labels(self, step: LLMCallStep) -> dict[str, Any]:
        parsed = _parsed(step)
        later = [s for s in self.used if s.role == "planner" and s.index > step.index]
        end = later[0].index if later else None
        if "subgoals" in parsed:
            kind, planned, changes = "plan", len(parsed["subgoals"] or []), None
        elif "changes" in parsed:
            all_changes = parsed["changes"] or []
            kind, changes = "reflect", len(all_changes)
            planned = sum(1 for c in all_changes if isinstance(c, dict) and c.get("op") == "add")
        else:
            kind = planned = changes = None
        # The DAG changes this call caused: recorded after it and before the next planner call (a change's
        # caused_by is the step recorded just before it, e.g. the judge step noting an assumption).
        added = [
            c.subgoal.id
            for c in self.traj.dag_changes
            if c.action == "added" and c.caused_by is not None and c.caused_by >= step.index
            and (end is None or c.caused_by < end)
        ]  # fmt: skip
        answered = sum(1 for sg in dict.fromkeys(added) if self.subgoal_end(sg)[2]) if added else None
        # A later planner call replaces this plan unless it is a reflection that changed nothing.
        replanned = any(_parsed(s).get("changes", True) != [] for s in later)
        return {"kind": kind, "subgoals": planned, "changes": changes, "subgoals_answered": answered,
                "replanned": replanned}  # fmt: skip

    def answer_labels(self, step: LLMCallStep) -> dict[str, Any]:
        """The verifier's judgement of this draft: its judge steps after the call, up to the next draft."""
        later = [s.index for s in self.used if s.role in ANSWER_ROLES and s.index > step.index]
        end = later[0] if later else len(self.traj.steps) + 1
        judged = [s for s in self.traj.steps if isinstance(s, JudgeStep) and step.index < s.index < end]
        claims = [s for s in judged if s.target_kind == "claim"]
        answer_level = [s for s in judged if s.target_kind == "answer"]
        verdict = (answer_level[-1].decision or None) if answer_level else None
        supported = sum(1 for s in claims if s.labels.get("supported", s.decision == "accept") is True)
        if claims:
            share: float | None = supported / len(claims)
        elif verdict in ("accept",):
            share = 1.0
        elif verdict in ("revise", "reject", "abstain"):
            share = 0.0
        else:
            share = None
        parsed = _parsed(step)
        drafted = parsed.get("claims")
        cited = (
            len({n for c in drafted if isinstance(c, dict) for n in c.get("citations") or []})
            if isinstance(drafted, list) else None
        )  # fmt: skip
        short = parsed.get("short_answer")
        superseded = any(s.supersedes == step.index for s in self.traj.llm_calls())
        return {
            "claims": len(claims) if claims else None,
            "claims_supported": supported if claims else None,
            "verified_share": share,
            "verdict": verdict,
            "cited": cited,
            "answer_has_gold": has_gold(short, self.golds) if isinstance(short, str) else None,
            "revised": bool(later) or superseded,
        }

    def verifier_labels(self, step: LLMCallStep) -> dict[str, Any]:
        verdicts = _parsed(step).get("verdicts")
        verdicts = [v for v in verdicts if isinstance(v, dict)] if isinstance(verdicts, list) else None
        return {
            "verdicts": len(verdicts) if verdicts is not None else None,
            "supported": sum(1 for v in verdicts if v.get("supported") is True) if verdicts is not None else None,
            "rejected": sum(1 for v in verdicts if v.get("supported") is False) if verdicts is not None else None,
            "revision_followed": any(s.role in ANSWER_ROLES and s.index > step.index for s in self.used),
        }

    def _report(self, stage: str) -> list[ReportStep]:
        return [s for s in self.traj.steps if isinstance(s, ReportStep) and s.stage == stage]

    def _section_of(self, step: LLMCallStep) -> str | None:
        """A section call's section: the outline heading its prompt shows under `# Section`."""
        prompt = "\n".join(m.content for m in step.messages if m.role == "user")
        for checks in self._report("checks"):
            for entry in checks.outline:
                if f"# Section\n{entry.get('heading')}: " in prompt:
                    return entry.get("id")
        return None

    def section_labels(self, step: LLMCallStep) -> dict[str, Any]:
        """How the verifier judged this draft of a section, and how the section ended."""
        section = self._section_of(step)
        calls = [s for s in self.used
                 if s.role in SECTION_ROLES and s.index > step.index and self._section_of(s) == section]
        end = calls[0].index if calls else len(self.traj.steps) + 1
        claims = [s for s in self.traj.steps if isinstance(s, JudgeStep) and s.target_kind == "claim"
                  and step.index < s.index < end and s.labels.get("section") == section]  # fmt: skip
        supported = sum(1 for s in claims if s.labels.get("supported") is True)
        outcome = next((s for s in self._report("section") if s.section == section), None)
        return {
            "section": section, "claims": len(claims), "claims_supported": supported,
            "verified_share": supported / len(claims) if claims else None, "revised": bool(calls),
            "removed": len(outcome.removed) if outcome else None, "section_status": outcome.status if outcome else None,
        }  # fmt: skip

    def outliner_labels(self, step: LLMCallStep) -> dict[str, Any]:
        outline = self._report("outline")
        sections = self._report("section")
        written = sum(1 for s in sections if s.status == "written") if sections else None
        return {"sections": len(outline[0].outline) if outline else None, "sections_written": written}

    def labels(self, step: LLMCallStep) -> dict[str, Any]:
        out = self.common()
        if step.role in ("judge", "reranker"):
            out |= self.round_labels(step)
        elif step.role == "planner":
            out |= self.planner_labels(step)
        elif step.role in ANSWER_ROLES:
            out |= self.answer_labels(step)
        elif step.role == "verifier":
            out |= self.verifier_labels(step)
        elif step.role in SECTION_ROLES:
            out |= self.section_labels(step)
        elif step.role == "outliner":
            out |= self.outliner_labels(step)
        return {k: out.get(k) for k in label_keys(step.role)}


def step_labels(traj: Trajectory, steps: Iterable[LLMCallStep] | None = None) -> dict[int, dict[str, Any]]:
    """Step index -> labels, for every used LLM call (or those of `steps`)."""
    run = _Run(traj)
    return {s.index: run.labels(s) for s in (run.used if steps is None else steps)}
