"""Stand-ins for search engines: scripted ddgs.DDGS and engine doubles, a SearXNG JSON endpoint, a sleep that records.

Doubles only do what the real thing does: the real ddgs against local engine pages is in tests/fakes/ddgs_engines.py.
"""

from __future__ import annotations

import json

from deepsearch.tools.search_engine import EngineError

from tests.fakes.web_server import LocalWebServer, send


class FakeDDGS:
    """Stands in for ddgs.DDGS where a test only needs result lists: each .text() call plays the next step.

    A step is what ddgs 9's `DDGS.text` really gives: a list of result dicts, or the DDGSException /
    TimeoutException its `_search_sync` raises. RatelimitException is refused: ddgs 9 never raises it.
    """

    def __init__(self, *script):
        from ddgs.exceptions import DDGSException, RatelimitException

        for step in script:
            if isinstance(step, Exception) and (
                isinstance(step, RatelimitException) or not isinstance(step, DDGSException)
            ):
                raise TypeError(f"ddgs 9 never raises {step!r} from DDGS.text")
        self.script = list(script)
        self.calls: list[tuple[str, dict]] = []
        self.constructed: list[dict] = []

    def __call__(self, **kwargs):
        self.constructed.append(kwargs)
        return self

    def text(self, query, **kwargs):
        self.calls.append((query, kwargs))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class ScriptedEngine:
    """A SearchEngine (our own contract, tools/search_engine.py) that plays results or EngineError subclasses."""

    def __init__(self, *script, name: str = "ddgs", key: str = "scripted"):
        for step in script:
            if isinstance(step, Exception) and not isinstance(step, EngineError):
                raise TypeError(f"a SearchEngine raises EngineError subclasses only, not {step!r}")
        self.name, self._key = name, key
        self.script = list(script)
        self.calls: list[str] = []

    @property
    def ident(self) -> str:
        return f"{self.name}:{self._key}"

    def limiter_key(self) -> str:
        return self.ident

    async def search_once(self, params):
        self.calls.append(params.query)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class Recorder:
    """A sleep that returns at once and remembers how long it was asked to wait."""

    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


SEARXNG_ANSWER = {
    "query": "nile",
    "number_of_results": 0,
    "results": [
        {"url": "https://en.wikipedia.org/wiki/Nile", "title": "Nile", "content": "The Nile is a river.",
         "engine": "wikipedia", "engines": ["wikipedia", "brave"], "score": 4.0},
        {"url": "https://www.britannica.com/place/Nile-River", "title": "Nile River | Britannica",
         "content": "Nile River, longest river in the world.", "engine": "brave", "score": 1.0},
        {"url": "https://en.wikipedia.org/wiki/Nile#History", "title": "Nile (history)", "engine": "duckduckgo"},
    ],
    "answers": [], "suggestions": [], "unresponsive_engines": [],
}  # fmt: skip


def searxng_route(server: LocalWebServer, *statuses: int):
    """/search answers with each status in turn (then 200 with SEARXNG_ANSWER); query strings are recorded."""
    queue = list(statuses)

    def handler(req):
        if queue and (status := queue.pop(0)) != 200:
            send(req, status, b"<html>Too Many Requests</html>" if status == 429 else b"<html>Forbidden</html>")
            return
        send(req, 200, json.dumps(SEARXNG_ANSWER).encode(), "application/json")

    server.routes["/search"] = handler


def searxng_empty(server: LocalWebServer, unresponsive: list[list[str]]):
    """/search answers 200 with no results and SearXNG's list of engines that failed, e.g. [["brave", "timeout"]]."""
    answer = {**SEARXNG_ANSWER, "results": [], "unresponsive_engines": unresponsive}
    server.routes["/search"] = lambda req: send(req, 200, json.dumps(answer).encode(), "application/json")
