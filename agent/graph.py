"""The research graph, wired as DESIGN.md draws it (absolute imports: langgraph.json loads this file by path).

intake ─▶ [clarify] ─▶ plan ─▶ dispatch ═▶ research(sub-goal) ═▶ reflect ─▶ dispatch … ─▶ answer ─▶ verify ─▶ END
                                                                                           ▲ revise once │
                                                                                           └─────────────┘
research(sub-goal) is the subgraph of agent/researcher/graph.py (queries → search → [select] → judge → route).
A report run (ask --report) goes plan ─▶ outline ─▶ dispatch …, and once research ends, dispatch ═▶
section(entry) ═▶ assemble ─▶ END: one parallel branch per outline entry (agent/report/section.py:
write → check → revise once), then the report-level checks and the Markdown.
"""

from __future__ import annotations

from deepsearch.agent.context import RunContext
from deepsearch.agent.nodes.answer import answer
from deepsearch.agent.nodes.clarify import clarify
from deepsearch.agent.nodes.dispatch import dispatch, route_dispatch
from deepsearch.agent.nodes.intake import intake, route_intake
from deepsearch.agent.nodes.plan import plan, route_plan
from deepsearch.agent.nodes.reflect import reflect
from deepsearch.agent.nodes.verify import verify
from deepsearch.agent.report.assemble import assemble
from deepsearch.agent.report.outline import outline
from deepsearch.agent.report.section import section_subgraph
from deepsearch.agent.researcher import research_subgraph
from deepsearch.agent.state import ResearchState
from langgraph.graph import END, START, StateGraph


def build_graph() -> StateGraph:
    g = StateGraph(ResearchState, context_schema=RunContext)
    g.add_node("intake", intake)
    g.add_node("clarify", clarify)  # interactive runs only: ask the user about an ambiguous question
    g.add_node("plan", plan)
    g.add_node("dispatch", dispatch)
    g.add_node("research", research_subgraph)  # a subgraph: each step of each round is a checkpoint
    g.add_node("reflect", reflect)
    g.add_node("answer", answer)
    g.add_node("verify", verify)
    g.add_node("outline", outline)  # report runs only: the report's sections, from the sub-goal DAG
    g.add_node("section", section_subgraph)  # report runs: one branch per section, written and verified
    g.add_node("assemble", assemble)
    g.add_edge(START, "intake")
    g.add_conditional_edges("intake", route_intake, ["clarify", "plan"])
    g.add_edge("clarify", "plan")
    g.add_conditional_edges("plan", route_plan, ["outline", "dispatch"])
    g.add_edge("outline", "dispatch")
    g.add_conditional_edges("dispatch", route_dispatch, ["research", "answer", "section"])
    g.add_edge("research", "reflect")  # runs once, after every parallel branch of the wave has finished
    g.add_edge("reflect", "dispatch")
    g.add_edge("answer", "verify")  # verify routes with Command: back to answer (revise once) or END
    g.add_edge("section", "assemble")  # runs once, after every section branch has finished
    g.add_edge("assemble", END)
    return g


def compile_graph(checkpointer=None):
    return build_graph().compile(checkpointer=checkpointer)


# For LangGraph tooling (langgraph.json): `langgraph dev` loads this compiled graph.
graph = compile_graph()

__all__ = ["END", "build_graph", "compile_graph", "graph"]
