"""Checking claims against the evidence they cite: the answer's verify node and every report section use it.

A claim the cited text states outright (every name and number, nearly all its words) is settled without a
call; the rest go to the verifier in one call; a claim the verifier gives no verdict on falls back to word
overlap. Every verdict is recorded as a `judge` step on a claim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deepsearch.tools.rerank.evidence import missing_facts
from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from .evidence import PASSAGE_TOKENS
from .state import AnswerClaim, Evidence
from .tokens import truncate_to_tokens

_WORD = re.compile(r"\w+")
_STOP = {"the", "a", "an", "of", "in", "on", "at", "to", "and", "or", "is", "was", "were", "are", "by", "for", "with",
         "as", "that", "this", "it", "its", "from", "be", "has", "had", "have"}  # fmt: skip
QUOTE_COVERAGE = 0.85  # share of a claim's content words the cited evidence must hold to settle it unasked
QUOTE_MATCH = 92  # or: fuzzy match of the whole claim inside the cited evidence (0-100)


class ClaimVerdict(BaseModel):
    claim: int = Field(description="the claim number")
    supported: bool
    reason: str = Field("", max_length=200)


class Verification(BaseModel):
    verdicts: list[ClaimVerdict] = Field(min_length=1, max_length=8)  # required: guided decoding must emit it


@dataclass(frozen=True)
class ClaimCheck:
    claim: AnswerClaim
    supported: bool
    reason: str


def word_coverage(claim: str, evidence_text: str) -> float:
    """The share of the claim's content words that the evidence contains."""
    words = {w for w in _WORD.findall(claim.lower()) if w not in _STOP}
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(evidence_text.lower()))) / len(words)


def lexical_support(claim: str, evidence_text: str) -> bool:
    """Backstop when the verifier gives no verdict: most of the claim's content words are in the evidence."""
    return word_coverage(claim, evidence_text) >= 0.6


def settled_by_quote(claim: str, evidence_text: str) -> bool:
    """A claim the cited evidence states outright needs no verifier call: every number and name of the claim
    is in the evidence word for word, and nearly all its other words too (or it is a near-exact quote)."""
    if not claim.strip() or missing_facts(claim, evidence_text):
        return False
    return word_coverage(claim, evidence_text) >= QUOTE_COVERAGE or fuzz.partial_ratio(
        claim.lower(), evidence_text.lower()) >= QUOTE_MATCH  # fmt: skip


async def check_claims(
    ctx: Any,
    question: str,
    claims: Sequence[AnswerClaim],
    cited: Callable[[int], Evidence],
    labels: dict[str, Any] | None = None,
    max_verdicts: int = 8,
) -> list[ClaimCheck]:
    """One verdict per claim, in order. `cited(n)` is the evidence behind citation number n; `labels` go on
    every recorded verdict (e.g. the report section it belongs to)."""

    def cited_text(c: AnswerClaim) -> str:
        return "\n".join(cited(n).text for n in c.citations)

    settled = {i for i, c in enumerate(claims, 1) if c.citations and settled_by_quote(c.text, cited_text(c))}
    asked = [(i, c) for i, c in enumerate(claims, 1) if c.citations and i not in settled]
    verdicts: dict[int, ClaimVerdict] = {}
    if ctx.agent.verify and asked:  # the verifier reads only the claims the quote check could not settle
        for start in range(0, len(asked), max_verdicts):  # the schema allows 8 verdicts a call
            verdicts |= await _ask_verifier(ctx, question, claims, asked[start : start + max_verdicts], cited)
    out = []
    for i, c in enumerate(claims, 1):
        if not c.citations:
            ok, reason = False, "cites no evidence"
        elif not ctx.agent.verify:
            ok, reason = True, "verification off"
        elif i in settled:
            ok, reason = True, "stated in the cited evidence (every name and number, and its words)"
        elif i in verdicts:
            ok, reason = verdicts[i].supported, verdicts[i].reason
        else:
            ok = lexical_support(c.text, cited_text(c))
            reason = "no verdict; lexical overlap with the cited evidence " + ("found" if ok else "too low")
        ctx.record("judge", target=c.text[:200], target_kind="claim",
                   labels={"supported": ok, "claim": i, "citations": c.citations, **(labels or {})},
                   rationale=reason, decision="accept" if ok else "reject")  # fmt: skip
        out.append(ClaimCheck(c, ok, reason))
    return out


async def _ask_verifier(ctx, question, claims, asked, cited) -> dict[int, ClaimVerdict]:
    blocks = []
    for i, c in asked:
        shown = "\n".join(  # the verifier reads as much of each passage as the writer did
            f'<evidence id="{n}">\n{truncate_to_tokens(cited(n).text, PASSAGE_TOKENS)}\n</evidence>'
            for n in c.citations
        )
        blocks.append(f"Claim {i}: {c.text}\n{shown or '(cites no evidence)'}")
    outcome = await ctx.structured(
        "verify", Verification, role="verifier", fallback=Verification.model_construct(verdicts=[]), max_tokens=400,
        question=question, claims="\n\n".join(blocks),
    )  # fmt: skip
    wanted = {i for i, _ in asked}
    return {v.claim: v for v in outcome.value.verdicts if v.claim in wanted and 1 <= v.claim <= len(claims)}
