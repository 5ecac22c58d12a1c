"""A scripted reranking model for tests: it reads the passages out of the reranker's prompts and answers
like a perfect judge that knows which passages are relevant (they contain `marker`)."""

from __future__ import annotations

import json
import re

from deepsearch.agent.llm.types import LLMRequest

PASSAGE = re.compile(r'<passage(?: id="(?P<alias>P\d+)")?[^>]*>\n(?P<body>.*?)\n</passage>', re.DOTALL)
ORDER_KEY = re.compile(r"doc (\d+)")


def passages(request: LLMRequest) -> list[tuple[str | None, str]]:
    return [(m.group("alias"), m.group("body")) for m in PASSAGE.finditer(request.messages[-1].content)]


def _key(body: str) -> int:
    m = ORDER_KEY.search(body)
    return int(m.group(1)) if m else 0


class Oracle:
    """Relevant = the passage text contains `marker`. Listwise: relevant first, then by the `doc N` number."""

    def __init__(self, marker: str = "Shirley Temple", evidence: str | None = None):
        self.marker = marker
        self.evidence = evidence  # None = quote the passage's sentence holding the marker
        self.calls: dict[str, int] = {}

    def relevant(self, body: str) -> bool:
        return self.marker in body

    def __call__(self, request: LLMRequest) -> str:
        name = request.schema_name
        self.calls[name] = self.calls.get(name, 0) + 1
        found = passages(request)
        if name == "ListwiseReply":
            ordered = sorted(found, key=lambda p: (not self.relevant(p[1]), _key(p[1])))
            ranking = [
                {
                    "id": a,
                    "grade": 9 if self.relevant(b) else 1,
                    "why": "names the actor" if self.relevant(b) else "off",
                }
                for a, b in ordered
            ]
            return json.dumps({"reasoning": "compared the passages", "ranking": ranking})
        if name == "Criteria":
            return json.dumps({"must_contain": ["who played the role"], "only_topical": ["the film's plot"]})
        if name == "Grade":
            hit = self.relevant(found[0][1])
            return json.dumps({"rationale": "names the actor" if hit else "only topical", "score": 8 if hit else 2})
        if name == "Verdict":
            return json.dumps({"relevant": "yes" if self.relevant(found[0][1]) else "no"})
        if name == "EvidenceReply":
            body = found[0][1]
            quote = self.evidence
            if quote is None:
                quote = next((s for s in re.split(r"(?<=\.)\s", body) if self.marker in s), "")
            return json.dumps({"contribution": "it names who played the role", "evidence": quote})
        raise AssertionError(f"unexpected schema {name}")
