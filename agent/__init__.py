"""deepsearch.agent: configuration, LLM access, the research graph and the CLI.

`from deepsearch.agent import research` (sync) or `aresearch` (async) answers a question with citations.
Imported lazily so that `deepsearch --help` does not load LangGraph.
"""

from typing import Any

__all__ = ["AskResult", "aresearch", "research"]


def __getattr__(name: str) -> Any:
    if name in ("research", "aresearch"):
        from . import run

        return getattr(run, name)
    if name == "AskResult":
        from .result import AskResult

        return AskResult
    raise AttributeError(name)
