"""The research subgraph: one sub-goal's rounds, each step a node, the loop on edges (one checkpoint a step).

START ─▶ queries ─▶ search ─▶ [select] ─▶ judge ─▶ route ─▶ finish ─▶ END
            ▲  │stop     │stop                        │ another round
            │  └─────────┴──────▶ finish              │
            └─────────────────────────────────────────┘
select runs only with selection = rerank or fusion; by default the judge grades the round's pool itself.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from ..context import RunContext
from ..state import ResearchTask
from .judge import judge
from .queries import queries
from .route import after_search, after_step, finish, route
from .search import search
from .select import select
from .state import ResearchOutput, RoundState


def build_research_graph() -> StateGraph:
    g = StateGraph(RoundState, context_schema=RunContext, input_schema=ResearchTask, output_schema=ResearchOutput)
    g.add_node("queries", queries)
    g.add_node("search", search)
    g.add_node("select", select)
    g.add_node("judge", judge)
    g.add_node("route", route)  # routes with Command: back to queries, or to finish
    g.add_node("finish", finish)
    g.add_edge(START, "queries")
    g.add_conditional_edges("queries", after_step, {"continue": "search", "finish": "finish"})
    g.add_conditional_edges("search", after_search, ["select", "judge", "finish"])
    g.add_edge("select", "judge")
    g.add_edge("judge", "route")
    g.add_edge("finish", END)
    return g


# Compiled without a checkpointer: as a node of the run's graph it checkpoints into the run's.
research_subgraph = build_research_graph().compile()
