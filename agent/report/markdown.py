"""The report as Markdown: title, summary, one `##` section per outline entry, the sources list (title,
URL or path, the quoted passage) and a footer with the verified-citation share, termination and trace id."""

from __future__ import annotations

import re

from ..evidence import PASSAGE_TOKENS
from ..result import Citation
from ..state import Evidence
from ..tokens import truncate_to_tokens
from .info import SectionResult
from .models import Outline

QUOTE_TOKENS = 120  # of each source's passage in the sources list
SENTENCES_PER_PARAGRAPH = 4
SOURCES_HEADING = "\n## Sources\n"  # what follows is the sources list, then the footer


_CITED = re.compile(r"([^\n\[\]]+?)\s*((?:\[\d+\])+)")  # a sentence, then its marks: "… 1945. [1][3]"


def cited_sentences(markdown: str) -> list[tuple[str, list[int]]]:
    """(sentence, [n, …]) for every sentence of a rendered report's sections that cites (sources list excluded)."""
    body = markdown.split(SOURCES_HEADING)[0]
    return [(m.group(1).strip(), [int(n) for n in re.findall(r"\d+", m.group(2))]) for m in _CITED.finditer(body)]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def number_sources(outline: Outline, sections: dict[str, SectionResult]) -> dict[str, int]:
    """Evidence id -> [n], numbered by first use in reading order."""
    numbers: dict[str, int] = {}
    for entry in outline.sections:
        for claim in sections[entry.id].claims:
            for i in claim.citations:
                numbers.setdefault(i, len(numbers) + 1)
    return numbers


def citations(numbers: dict[str, int], evidence: dict[str, Evidence]) -> list[Citation]:
    """Each quote is the passage as the section's writer and verifier read it."""
    return [Citation(n=n, evidence_id=i, source=evidence[i].source,
                     quote=truncate_to_tokens(evidence[i].text, PASSAGE_TOKENS))
            for i, n in numbers.items()]  # fmt: skip


def section_body(result: SectionResult, numbers: dict[str, int]) -> str:
    if not result.claims:
        return f"*{result.note or 'Nothing was found for this section.'}*"
    sentences = [f"{_one_line(c.text)} {''.join(f'[{numbers[i]}]' for i in c.citations)}" for c in result.claims]
    return "\n\n".join(" ".join(sentences[k : k + SENTENCES_PER_PARAGRAPH])
                       for k in range(0, len(sentences), SENTENCES_PER_PARAGRAPH))  # fmt: skip


def render_markdown(
    outline: Outline,
    sections: dict[str, SectionResult],
    evidence: dict[str, Evidence],
    footer: str,
) -> str:
    numbers = number_sources(outline, sections)
    parts = [f"# {_one_line(outline.title)}"]
    for entry in outline.sections:
        parts.append(f"## {entry.heading}\n\n{section_body(sections[entry.id], numbers)}")
    sources = []
    for i, n in numbers.items():
        ev = evidence[i]
        title = _one_line(ev.title) or ev.source
        quote = _one_line(truncate_to_tokens(ev.text, QUOTE_TOKENS))
        indent = " " * len(f"{n}. ")  # the quote must sit inside its list item
        source = ev.source.replace("`", "'")  # a backtick would end the code span
        sources.append(f"{n}. **{title}** — `{source}`\n\n{indent}> {quote}")
    parts.append(SOURCES_HEADING.lstrip("\n") + "\n" + ("\n".join(sources) if sources else "*No source is cited.*"))
    parts.append(f"---\n\n{footer}")
    return "\n\n".join(parts) + "\n"
