"""Evidence passages: for each kept candidate the model writes a `contribution` and copies an `evidence`
excerpt; the excerpt is located in the source by fuzzy matching and only the source's own words go
forward (widened to whole sentences, so each passage reads on its own). A poor match is replaced by the
best-matching source span; no match drops the candidate. Passages then share a token budget in rank order.

Fuzzy scores forgive what matters most: "opened in 1953" scores 93 against the source's "opened in 1952",
and a four-character excerpt matches nearly any span. So an excerpt is *verified* only when its numbers
(digits, so dates too) and capitalised names all occur exactly in the source text that goes forward, and
the score it needs rises as the excerpt gets shorter (near-exact for a few words). One that fails only the
exact check is *replaced*: the source's own span, with the source's numbers, stands in for it.
"""

from __future__ import annotations

import re

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient, LLMError, generate_structured
from deepsearch.agent.tokens import count_tokens, truncate_to_tokens
from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from .models import DroppedCandidate, EvidencePassage, ScoredCandidate
from .neighbours import Expanded
from .prompting import CallTally, passage_block, render

_MIN_TRUNCATED_TOKENS = 24  # a passage cut shorter than this is not worth sending


class EvidenceReply(BaseModel):
    contribution: str
    evidence: str


class SpanMatch(BaseModel):
    score: float = Field(description="0-100")
    start: int
    end: int


def locate(excerpt: str, source: str) -> SpanMatch:
    """The source span that best matches `excerpt` (case-insensitive partial alignment)."""
    a, b = excerpt.lower(), source.lower()
    if len(a) != len(excerpt) or len(b) != len(source):  # lower() changed lengths: offsets would drift
        a, b = excerpt, source
    if len(a) >= len(b):
        return SpanMatch(score=fuzz.ratio(a, b), start=0, end=len(source))
    m = fuzz.partial_ratio_alignment(a, b)
    if m is None:
        return SpanMatch(score=0.0, start=0, end=0)
    return SpanMatch(score=m.score, start=m.dest_start, end=m.dest_end)


_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+|\n\s*\n")


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, begin = [], 0
    for m in _BOUNDARY.finditer(text):
        stop = m.start() + len(m.group(0).rstrip())
        if text[begin:stop].strip():
            spans.append((begin, stop))
        begin = m.end()
    if text[begin:].strip():
        spans.append((begin, len(text)))
    return spans


def widen_to_sentences(source: str, start: int, end: int) -> str:
    """source[start:end] widened to the whole sentences it covers. A sentence the span only grazes (less
    than half of the shorter of the two) is left out: fuzzy alignments often start a few characters early."""
    touched = [(a, b, min(b, end) - max(a, start)) for a, b in _sentences(source) if a < end and b > start]
    if not touched:
        return source[start:end].strip()
    kept = [(a, b) for a, b, overlap in touched if overlap >= min(b - a, end - start) / 2]
    if not kept:
        a, b, _ = max(touched, key=lambda t: t[2])
        kept = [(a, b)]
    return source[kept[0][0] : kept[-1][1]].strip()


FULL_LENGTH_CHARS = 80  # an excerpt this long (or longer) needs only the configured thresholds
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_NAME = re.compile(r"[A-Z][\w'’-]*")
_OPENERS = ".!?:;\"'“‘([-–—"  # after one of these (or at the start) a capital may only start a sentence


def scaled_threshold(threshold: float, excerpt: str) -> float:
    """`threshold` for a full-length excerpt, rising linearly to 100 as the excerpt shrinks to nothing."""
    share = min(1.0, len(excerpt.strip()) / FULL_LENGTH_CHARS)
    return 100 - (100 - threshold) * share


def exact_facts(excerpt: str) -> list[str]:
    """The excerpt's numbers and capitalised names (not a capital that only starts a sentence)."""
    facts = [m.group(0) for m in _NUMBER.finditer(excerpt)]
    for m in _NAME.finditer(excerpt):
        before = excerpt[: m.start()].rstrip()
        if before and before[-1] not in _OPENERS:
            facts.append(m.group(0).removesuffix("'s").removesuffix("’s"))
    return facts


def missing_facts(excerpt: str, text: str) -> list[str]:
    """The excerpt's exact facts that `text` does not contain as whole words."""
    return [f for f in dict.fromkeys(exact_facts(excerpt)) if not re.search(rf"(?<![\w.,]){re.escape(f)}(?!\w)", text)]


class EvidenceCheck(BaseModel):
    text: str = Field(description="the source's own words standing for the excerpt; empty when dropped")
    verification: str = Field(description="verified, replaced or dropped")
    score: float = Field(description="fuzzy match 0-100")
    needed: float = Field(description="the score this excerpt needed to be verified (scaled by its length)")
    missing: list[str] = Field(default_factory=list, description="numbers and names of the excerpt not in the text")


def check(excerpt: str, source: str, settings: RerankSettings) -> EvidenceCheck:
    """Locate `excerpt` in `source` and decide: verified, replaced (the best source span stands in) or dropped."""
    match = locate(excerpt, source)
    needed = scaled_threshold(settings.match_threshold, excerpt)
    if match.score < scaled_threshold(settings.replace_threshold, excerpt):
        return EvidenceCheck(text="", verification="dropped", score=match.score, needed=needed)
    text = widen_to_sentences(source, match.start, match.end)
    missing = missing_facts(excerpt, text)
    kind = "verified" if match.score >= needed and not missing else "replaced"
    return EvidenceCheck(text=text, verification=kind, score=match.score, needed=needed, missing=missing)


def verify(excerpt: str, source: str, settings: RerankSettings) -> tuple[str, str, float]:
    """(text, verification, match score): the source span standing for `excerpt`, or verification 'dropped'."""
    result = check(excerpt, source, settings)
    return result.text, result.verification, result.score


async def extract_evidence(
    client: LLMClient,
    query: str,
    item: Expanded,
    scored: ScoredCandidate,
    settings: RerankSettings,
    tally: CallTally,
) -> EvidencePassage | DroppedCandidate:
    candidate = item.candidate
    if not settings.evidence:
        return source_excerpt(item, scored, settings)
    source = _flat(candidate.text)  # as the prompt shows it, so the model's copy can match
    try:
        outcome = await generate_structured(
            client,
            render("evidence_extract", query=query, passage=passage_block(None, candidate, 4 * settings.passage_chars)),
            EvidenceReply,
            role="evidence",
            fallback=lambda: EvidenceReply(contribution="", evidence=""),
            max_tokens=settings.max_tokens,
        )
    except LLMError as e:
        tally.note(f"evidence {candidate.id}: the model failed ({e}); the source's opening stands in")
        return source_excerpt(item, scored, settings)
    tally.add(f"evidence {candidate.id}", outcome)
    if outcome.used_fallback:
        tally.note(f"evidence {candidate.id}: no usable reply, the source's opening stands in")
        return source_excerpt(item, scored, settings)
    reply = outcome.value
    if not reply.evidence.strip():
        return DroppedCandidate(id=candidate.id, reason="the model found no evidence in it")
    result = check(reply.evidence, source, settings)
    text, kind, score = result.text, result.verification, result.score
    if kind == "dropped":
        tally.note(f"evidence {candidate.id}: excerpt not found in the source (match {score:.0f}), dropped")
        floor = scaled_threshold(settings.replace_threshold, reply.evidence)
        return DroppedCandidate(
            id=candidate.id, reason=f"evidence not found in the source (match {score:.0f} < {floor:.0f})"
        )
    if result.missing:
        tally.note(f"evidence {candidate.id}: the source does not say {', '.join(result.missing)[:160]}; "
                   "replaced by the best source span")  # fmt: skip
    elif kind == "replaced":
        tally.note(f"evidence {candidate.id}: excerpt matched only {score:.0f} (needed {result.needed:.0f}), "
                   "replaced by the best source span")  # fmt: skip
    return EvidencePassage(
        **_identity(item, scored),
        evidence=text,
        contribution=reply.contribution.strip(),
        tokens=count_tokens(text),
        verification=kind,  # type: ignore[arg-type]
        match_score=round(score, 1),
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def _identity(item: Expanded, scored: ScoredCandidate) -> dict:
    c = item.candidate
    return {
        "candidate_id": c.id,
        "source": c.source,
        "title": c.title,
        "score": scored.score,
        "merged_ids": item.merged_ids,
    }


def source_excerpt(item: Expanded, scored: ScoredCandidate, settings: RerankSettings) -> EvidencePassage:
    """The source's opening as the evidence, when the model gave no usable excerpt (a quarter of the budget)."""
    limit = max(_MIN_TRUNCATED_TOKENS, settings.evidence_token_budget // 4)
    text = truncate_to_tokens(_flat(item.candidate.text), limit)
    return EvidencePassage(
        **_identity(item, scored), evidence=text, tokens=count_tokens(text), verification="source_excerpt"
    )


def within_budget(passages: list[EvidencePassage], budget: int) -> tuple[list[EvidencePassage], list[DroppedCandidate]]:
    """Passages in rank order until the token budget is spent; the one that crosses it is truncated."""
    kept: list[EvidencePassage] = []
    dropped: list[DroppedCandidate] = []
    left = budget
    for p in passages:
        if p.tokens <= left:
            kept.append(p)
            left -= p.tokens
        elif left >= _MIN_TRUNCATED_TOKENS:
            text = truncate_to_tokens(p.evidence, left)
            kept.append(p.model_copy(update={"evidence": text + " …", "tokens": count_tokens(text + " …")}))
            left = 0
        else:
            dropped.append(DroppedCandidate(id=p.candidate_id, reason=f"over the evidence token budget ({budget})"))
    return kept, dropped
