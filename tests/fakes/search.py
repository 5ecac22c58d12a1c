"""Stand-ins for search engines: a scripted ddgs.DDGS, a SearXNG JSON endpoint, and a sleep that only records."""

from __future__ import annotations

import json

from tests.fakes.web_server import LocalWebServer, send


class FakeDDGS:
    """Stands in for ddgs.DDGS: each .text() call plays the next step of a script (a result list or an exception)."""

    def __init__(self, *script):
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
