"""research(sub-goal) as a LangGraph subgraph: queries → search → select → judge → route, looping on edges."""

from .graph import research_subgraph

__all__ = ["research_subgraph"]
