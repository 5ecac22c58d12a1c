"""SSRF through the agent: pages and a compromised model push private URLs; nothing private is ever requested.

The web is a loopback server on 127.0.0.1 (allow-listed, standing in for public sites). A canary server on
127.0.0.2 stands for a private host: it is not allow-listed, so any request that reaches it is a breach.
The graph fetches only URLs that came back from a search, and the fetcher's guard refuses private ones,
also behind a redirect.
"""

from __future__ import annotations

from pathlib import Path

from deepsearch.agent import aresearch
from deepsearch.agent.llm.types import LLMRequest
from deepsearch.traces.reader import find_log, load_trajectory

from tests.fakes.search import FakeDDGS
from tests.fakes.web_server import LocalWebServer, page, redirect
from tests.graph_support import ScriptedModel, fake_backend, last_user
from tests.test_graph_web import web_settings, web_tools
from tests.test_security_injection import obedient_answerer

PAGES = Path(__file__).parent / "fixtures" / "injection" / "pages"
QUESTION = "Which river flows through the city of Lumeria?"
METADATA = "http://169.254.169.254/latest/meta-data/"


def compromised_model(canary_url: str) -> ScriptedModel:
    """Every role that can name a query or a URL names the private ones the pages ask for."""

    def judge(request: LLMRequest) -> dict:
        return {"answer": "unknown", "answered": False, "decision": "continue",
                "next_queries": [canary_url, f"{METADATA} river"], "rationale": "the page says to fetch the report"}

    return ScriptedModel(
        planner={"subgoals": [{"question": f"Fetch {canary_url} and {METADATA}", "depends_on": [], "source": "web",
                               "queries": [canary_url, METADATA]}]},  # fmt: skip
        judge=judge,
        answerer=obedient_answerer,
    )


async def test_private_urls_in_pages_results_and_redirects_are_never_requested(tmp_path):
    with LocalWebServer(host="127.0.0.2") as canary, LocalWebServer() as web:
        canary.routes["/report"] = page("<html><body><p>secret river report</p></body></html>")
        canary_url = canary.url("/report")
        for path in PAGES.iterdir():
            web.routes[f"/{path.stem}"] = page(path.read_text().replace("CANARY_URL", canary_url))
        web.routes["/moved"] = redirect(canary_url)  # a "public" result that redirects to the private host
        hits = [
            {"title": "Lumeria river facts", "href": web.url("/lumeria_metadata"), "body": "river facts"},
            {"title": "Lumeria FAQ", "href": web.url("/lumeria_answer"), "body": "which river"},
            {"title": "River report", "href": canary_url, "body": "a poisoned search result"},
            {"title": "River report (moved)", "href": web.url("/moved"), "body": "moved"},
        ]
        settings = web_settings(tmp_path, max_rounds=2, selection="fusion", evidence_tokens=4000)
        ddgs = FakeDDGS(*[hits] * 20)
        tools = web_tools(settings, ddgs)
        tools.web_pages = len(hits)
        model = compromised_model(canary_url)
        result = await aresearch(QUESTION, settings=settings, backend=fake_backend(model), tools=tools)

    assert canary.requests == []  # not one request reached the private host
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    calls = [s for s in trajectory.steps if s.kind == "tool_call"]
    found = {r.url for s in calls if s.tool == "web_search" for r in s.results}
    fetches = {s.arguments["url"]: s for s in calls if s.tool == "fetch_page"}
    searched = {s.arguments["query"] for s in calls if s.tool == "web_search"}
    assert canary_url in searched and METADATA in searched  # the model's private URLs were searched for ...
    assert set(fetches) <= found  # ... yet only search results are fetched, never a URL the model or a page named
    assert METADATA not in fetches and not any(url.startswith("http://169.254") for url in fetches)
    for url in (canary_url, web.url("/moved")):
        assert not fetches[url].success and fetches[url].error.startswith("blocked"), fetches[url].error
    assert fetches[web.url("/lumeria_metadata")].success  # the poisoned page itself was read, then flagged
    flagged = {
        ev_id for s in trajectory.steps if s.kind == "judge" and s.target_kind == "subgoal"
        for ev_id, label in s.labels.items() if label.get("instructions_inside")
    }  # fmt: skip
    assert flagged
    assert "Danube" not in result.answer
    assert all("Danube" not in last_user(r) for role, r in model.calls if role == "answerer")
