"""Report-level checks, run on the verified sections before assembly: every citation names stored evidence
that was not flagged, no sentence or paragraph repeats another section's (near-duplicates too), and every
heading of the outline is in the written report. What a check removes is kept, with the reason."""

from __future__ import annotations

from rapidfuzz import fuzz

from ..belief import normalise_answer
from ..state import Evidence
from .info import RemovedClaim, SectionResult, WrittenClaim
from .models import SUMMARY_ID, Outline

NEAR_DUPLICATE = 90  # rapidfuzz token_sort_ratio (0-100) at or above which two sentences or paragraphs repeat


def near_duplicate(a: str, b: str) -> bool:
    a, b = normalise_answer(a), normalise_answer(b)
    return bool(a and b) and (a == b or fuzz.token_sort_ratio(a, b) >= NEAR_DUPLICATE)


def stored_citations(
    sections: list[SectionResult], evidence: dict[str, Evidence]
) -> tuple[list[SectionResult], list[str]]:
    """Drop citations of evidence the run did not store (or flagged); a sentence left citing nothing goes."""
    out, notes = [], []
    for s in sections:
        claims, removed = [], list(s.removed)
        for c in s.claims:
            ids = [i for i in c.citations if i in evidence and not evidence[i].injection_flagged]
            if ids:
                claims.append(c.model_copy(update={"citations": ids}))
            else:
                removed.append(RemovedClaim(text=c.text, citations=c.citations, reason="cites no stored evidence"))
            if len(ids) < len(c.citations):
                notes.append(f"section {s.id}: dropped {len(c.citations) - len(ids)} citation(s) of unstored evidence")
        out.append(s.model_copy(update={"claims": claims, "removed": removed}))
    return out, notes


def without_duplicates(sections: list[SectionResult]) -> tuple[list[SectionResult], list[str]]:
    """Each sentence once: a later sentence that near-duplicates an earlier one (in its own section, or in an
    earlier section) is removed; then a section whose whole text near-duplicates an earlier section's is
    removed as a duplicate paragraph. The summary restates the sections by design: it is checked only
    against itself."""
    seen: list[tuple[str, str]] = []  # (section id, sentence) of the sections, summary excluded
    out, notes = [], []
    for s in sections:
        mine: list[WrittenClaim] = []
        removed = list(s.removed)
        pool = [t for _, t in seen] if s.id != SUMMARY_ID else []
        for c in s.claims:
            twin = next((t for t in [*pool, *(m.text for m in mine)] if near_duplicate(c.text, t)), None)
            if twin is None:
                mine.append(c)
            else:
                removed.append(RemovedClaim(text=c.text, citations=c.citations, reason=f"duplicate of: {twin[:120]}"))
                notes.append(f"section {s.id}: removed a sentence repeating an earlier one")
        body = " ".join(c.text for c in mine)
        earlier = [o for o in out if o.id != SUMMARY_ID and o.claims] if s.id != SUMMARY_ID else []
        twin_section = next((o for o in earlier if near_duplicate(body, " ".join(c.text for c in o.claims))), None)
        if mine and twin_section is not None:
            removed += [RemovedClaim(text=c.text, citations=c.citations, reason=f"paragraph repeats section "
                                     f"{twin_section.id}") for c in mine]  # fmt: skip
            notes.append(f"section {s.id}: removed a paragraph repeating section {twin_section.id}")
            mine = []
        if s.id != SUMMARY_ID:
            seen += [(s.id, c.text) for c in mine]
        status = s.status if mine or s.status != "written" else "empty"
        note = s.note or ("" if mine or status != "empty" else "Its sentences repeat earlier sections.")
        out.append(s.model_copy(update={"claims": mine, "removed": removed, "status": status, "note": note}))
    return out, notes


def missing_headings(outline: Outline, markdown: str) -> list[str]:
    lines = {line.strip() for line in markdown.splitlines()}
    return [s.heading for s in outline.sections if f"## {s.heading}" not in lines]
