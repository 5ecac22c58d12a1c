"""Evidence selection inside a research round: the judge's own grades and quotes (selection = judge), the
reasoning reranker (selection = rerank), or fused order within a token budget (selection = fusion)."""

from __future__ import annotations

import re
from collections.abc import Callable

from deepsearch.tools.rerank import rerank
from deepsearch.tools.rerank.evidence import check
from deepsearch.tools.rerank.models import Candidate
from deepsearch.tools.rerank.prompting import clip, passage_block

from .config import RerankSettings
from .context import RunContext
from .evidence import evidence_id
from .injection import find_injection
from .state import Evidence
from .tokens import count_tokens


def _evidence(c: Candidate, subgoal_id: str, text: str, score: float, contribution: str = "") -> Evidence:
    return Evidence(
        id=evidence_id(c.source or c.id, text),
        subgoal_id=subgoal_id,
        kind=c.kind,
        source=c.source or c.id,
        title=c.title,
        text=text,
        contribution=contribution,
        score=score,
        injection_flagged=find_injection(text) is not None,
    )


def fused_order(candidates: list[Candidate], subgoal_id: str, max_tokens: int) -> tuple[list[Evidence], list[dict]]:
    """Keep candidates in fusion order until the token budget is spent."""
    kept, decisions, used = [], [], 0
    for c in candidates:
        cost = count_tokens(c.text)
        keep = not kept or used + cost <= max_tokens
        if keep:
            kept.append(_evidence(c, subgoal_id, unmarked(c.text), c.prior_score))
            used += cost
        decisions.append(
            {"id": c.id, "score": c.prior_score, "kept": keep, "evidence_id": kept[-1].id if keep else None,
             "reason": "within the evidence token budget" if keep else "over the evidence token budget"}
        )  # fmt: skip
    return kept, decisions


def record_round(ctx: RunContext, query: str, decisions: list[dict], shown: dict[str, Candidate], method: str,
                 **extra) -> None:  # fmt: skip
    """The round's `rerank` step: every decision with the passage as the model was shown it (stored once in the
    trace's content table, so a training export holds the words the model read) and the evidence it became."""
    order = {cid: i for i, cid in enumerate(shown)}
    decisions = sorted(decisions, key=lambda d: order.get(d["id"], len(order)))  # in the order the model saw them
    for d in decisions:
        c = shown.get(d["id"])
        if c is not None:
            d.update(text_hash=ctx.content(c.text, c.source or None), title=c.title or None, source=c.source or c.id)
    ctx.record("rerank", query=query, candidates=decisions, method=method, **extra)


async def select_evidence(
    ctx: RunContext,
    query: str,
    candidates: list[Candidate],
    subgoal_id: str,
    on_step: Callable[[str], None] | None = None,
) -> list[Evidence]:
    """The reranker's verified evidence passages (each decision recorded as a `rerank` step), or fused order
    (by choice, or because the run's budget leaves no LLM call for reranking)."""
    spent = ctx.budget.exhausted()
    if ctx.agent.selection == "fusion" or spent:
        kept, decisions = fused_order(candidates, subgoal_id, ctx.agent.evidence_tokens)
        method = "fusion order within token budget" + (f" ({spent}: no reranking)" if spent else "")
        record_round(ctx, query, decisions, {c.id: c for c in candidates}, method, cutoff=None)
        return kept
    settings = ctx.settings.rerank.model_copy(update={"evidence_token_budget": ctx.agent.evidence_tokens})
    outcome = await rerank(
        ctx.client, query, candidates, settings, neighbour_lookup=ctx.tools.neighbour, on_step=on_step
    )
    by_id = {c.id: c for c in candidates}
    kept = [
        _evidence(by_id.get(p.candidate_id) or Candidate(id=p.candidate_id, text=p.evidence, source=p.source),
                  subgoal_id, p.evidence, p.score, p.contribution)
        for p in outcome.evidence
    ]  # fmt: skip
    payload = outcome.to_step_payload()
    became = {p.candidate_id: ev.id for p, ev in zip(outcome.evidence, kept, strict=True)}
    for d in payload["candidates"]:
        d["evidence_id"] = became.get(d["id"])
    # The reranker was shown each passage clipped to rerank.passage_chars (prompting.passage_block).
    shown = {c.id: c.model_copy(update={"text": clip(c.text, settings.passage_chars)}) for c in candidates}
    record_round(ctx, payload.pop("query"), payload.pop("candidates"), shown, payload.pop("method"), **payload)
    return kept


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_TERM = re.compile(r"\w{3,}")


def focus(text: str, query: str, chars: int) -> str:
    """`text` cut to at most `chars` as the run of whole sentences that shares most words with `query`
    (a long passage's answer is rarely in its opening lines only); "…" marks what was left out."""
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    sentences = _SENTENCE_END.split(flat)
    terms = {w.lower() for w in _TERM.findall(query)}
    hits = [len(terms & {w.lower() for w in _TERM.findall(x)}) for x in sentences]
    best, span = (-1, 0), (0, 0)
    for i in range(len(sentences)):
        length, score = 0, 0
        for j in range(i, len(sentences)):
            length += len(sentences[j]) + 1
            if length > chars:
                break
            score += hits[j]
            if (score, -i) > best:
                best, span = (score, -i), (i, j + 1)
    if span == (0, 0):  # not even one whole sentence fits: the opening, cut at a word
        return flat[:chars].rsplit(" ", 1)[0] + " …"
    i, j = span
    return ("… " if i else "") + " ".join(sentences[i:j]) + (" …" if j < len(sentences) else "")


def passage_section(candidates: list[Candidate], chars: int, query: str = "") -> tuple[str, dict[str, Candidate]]:
    """The round's new candidates as <passage id="P1"> … blocks in fusion order, each focused on the query
    within `chars` (the same candidates give the same text: a stable prompt), and their aliases: the
    candidates as shown, so the evidence chosen from them is always words the model read."""
    shown = {f"P{i}": c.model_copy(update={"text": focus(c.text, query, chars)}) for i, c in enumerate(candidates, 1)}
    # focus() may add "… " and " …" around its cut: room for them, so passage_block does not cut again.
    text = "\n\n".join(passage_block(a, c, chars + 4) for a, c in shown.items())
    return text or "(none)", shown


def unmarked(text: str) -> str:
    """A shown passage without the "…" focus() puts where it cut: the source's own words."""
    return " ".join(text.split()).removeprefix("… ").removesuffix(" …")


def graded_evidence(
    grades, aliases: dict[str, Candidate], subgoal_id: str, settings: RerankSettings, keep_grade: int, budget: int,
) -> tuple[dict[str, Evidence], list[dict]]:
    """The passages the judge graded `keep_grade` or more, best first within the token budget (at most
    `settings.max_keep`, at least `settings.min_keep` of those graded above 0, as the reranker's cut). Each
    stands as its quote when the quote is found in the source (the source's own words, widened to sentences,
    as the reranker's evidence check does); otherwise as the passage itself:
    evidence is always the source's words, never the model's."""
    graded: dict[str, tuple[int, str]] = {}
    for g in grades:
        alias = g.id.strip().upper()
        if alias in aliases and alias not in graded:
            graded[alias] = (g.grade, g.quote)
    order = sorted(aliases, key=lambda a: (-graded.get(a, (-1, ""))[0], int(a[1:])))
    chosen: dict[str, Evidence] = {}
    decisions, used = [], 0
    for alias in order:
        c = aliases[alias]
        grade, quote = graded.get(alias, (None, ""))
        text, how = unmarked(c.text), "the passage (no quote)"
        if quote.strip():
            found = check(quote, text, settings)
            if found.verification != "dropped":
                text, how = found.text, f"its quote ({found.verification}, match {found.score:.0f})"
            else:
                how = f"the passage (quote not in the source, match {found.score:.0f})"
        cost = count_tokens(text)
        # Like the reranker's knee cut: at least `min_keep` (the best graded), at most `max_keep`.
        wanted = grade is not None and (grade >= keep_grade or (grade > 0 and len(chosen) < settings.min_keep))
        keep = wanted and len(chosen) < settings.max_keep and (not chosen or used + cost <= budget)
        if keep:
            chosen[alias] = _evidence(c, subgoal_id, text, grade / 10)
            used += cost
        if grade is None:
            reason = "not graded"
        elif keep:
            reason = f"graded {grade}, kept as {how}" + ("" if grade >= keep_grade else " (the best graded)")
        else:
            reason = f"graded {grade}, " + ("below the keep grade" if grade < keep_grade else "over the budget or cap")
        decisions.append({"id": c.id, "score": 0.0 if grade is None else grade / 10, "kept": keep,
                          "evidence_id": chosen[alias].id if keep else None, "reason": reason})  # fmt: skip
    return chosen, decisions
