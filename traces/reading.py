"""What the model read in each research round, rebuilt from a trajectory for training exports.

A round (sub-goal, round number) has its search calls, the page fetches they led to, and the passages the
model was shown: the `rerank` step records each candidate's text as the prompt showed it (`text_hash` into the
content table) and the evidence it became. Each passage is attached to the one tool call that brought it (a
local hit to the search that listed it, a page passage to the page's fetch, a snippet to its search), so an
export can put the words the model read in the tool turn that returned them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import RerankStep, ToolCallStep, Trajectory


@dataclass
class Passage:
    candidate_id: str
    text: str
    title: str | None
    source: str | None
    evidence_id: str | None


@dataclass
class Round:
    searches: list[ToolCallStep] = field(default_factory=list)
    fetches: list[ToolCallStep] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)

    def attach(self) -> dict[int, list[Passage]]:
        """Tool-call step index -> the passages it brought, in the order the model was shown them."""
        calls = [*self.searches, *self.fetches]
        attached: dict[int, list[Passage]] = {s.index: [] for s in calls}
        if not calls:
            return attached
        for p in self.passages:
            attached[_origin(p, self).index].append(p)
        return attached


def _urls(step: ToolCallStep) -> set[str]:
    return {u for u in [step.arguments.get("url"), *(r.url for r in step.results)] if u}


def _origin(p: Passage, rnd: Round) -> ToolCallStep:
    """The tool call that brought passage `p`: the first one that names it, else the round's first of its kind."""
    web = p.candidate_id.startswith("web:")
    if not web:
        local = [s for s in rnd.searches if s.tool == "local_search"]
        named = [s for s in local if any(r.id == p.candidate_id for r in s.results)]
        return (named or local or rnd.searches or rnd.fetches)[0]
    web_searches = [s for s in rnd.searches if s.tool == "web_search"]
    if not p.candidate_id.endswith(":snippet"):
        fetched = [s for s in rnd.fetches if p.source in _urls(s)]
        if fetched:
            return fetched[0]
    listed = [s for s in web_searches if p.source in _urls(s)]
    return (listed or web_searches or rnd.searches or rnd.fetches)[0]


def rounds(traj: Trajectory) -> list[Round] | None:
    """The run's research rounds in the order they began; None when the run recorded no shown passages
    (a log from before exports kept them: its tool turns cannot hold what the model read)."""
    by_key: dict[tuple[str | None, int | None], Round] = {}
    shown = False
    for step in traj.steps:
        if isinstance(step, ToolCallStep):
            rnd = by_key.setdefault((step.subgoal, step.round), Round())
            (rnd.fetches if step.tool == "fetch_page" else rnd.searches).append(step)
        elif isinstance(step, RerankStep):
            rnd = by_key.setdefault((step.subgoal, step.round), Round())
            for c in step.candidates:
                content = traj.contents.get(c.text_hash) if c.text_hash else None
                if content is not None:
                    shown = True
                    rnd.passages.append(Passage(c.id, content.text, c.title, c.source, c.evidence_id))
    return list(by_key.values()) if shown or not traj.tool_calls() else None
