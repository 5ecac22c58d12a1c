"""The graph with the web tools: pages served on 127.0.0.1 through the real fetcher, and a search engine that fails."""

import re

from ddgs.exceptions import TimeoutException
from deepsearch.agent import aresearch
from deepsearch.agent.research_tools import ResearchTools
from deepsearch.tools.ddgs_engine import DdgsEngine
from deepsearch.tools.fetch_page import PageFetcher
from deepsearch.tools.local_search import LocalSearcher
from deepsearch.tools.web_search import WebSearch
from deepsearch.traces.reader import find_log, load_trajectory

from tests.fakes.search import FakeDDGS
from tests.fakes.web_server import LocalWebServer, page
from tests.graph_support import ScriptedModel, build_sample_index, fake_backend, last_user, settings_for

QUESTION = "Which river flows through the city of Lumeria?"
LUMERIA = """<html><head><title>Lumeria - City Guide</title></head><body><nav>Home | Cities | Rivers</nav>
<article><h1>Lumeria</h1><p>Lumeria is a harbour city in the north. The river Velt flows through Lumeria from the
eastern hills to the sea, and its old stone bridges are the city's best known sight.</p><p>Lumeria was founded in
1432 by fishermen.</p></article><footer>Copyright 2024</footer></body></html>"""


def web_tools(settings, ddgs, index_dir=None) -> ResearchTools:
    searcher = WebSearch(settings.search, settings.cache.dir, engines=[DdgsEngine([], 5, ddgs_factory=ddgs)])
    fetcher = PageFetcher(settings.fetch, settings.cache.dir)
    local = {"sample": LocalSearcher(index_dir, settings.index)} if index_dir else {}
    return ResearchTools(local, searcher, fetcher, local_k=4, web_pages=2)


def river_model() -> ScriptedModel:
    def judge(request):
        passage = r'<passage id="(P\d+)"[^>]*>\n(?:Title: [^\n]*\n)?(.*?)</passage>'
        blocks = re.findall(passage, last_user(request), re.S)
        grades = [{"id": pid, "grade": 9 if "Velt" in text else 2,
                   "quote": next((s for s in re.split(r"(?<=\.)\s+", text) if "Velt" in s), "")}
                  for pid, text in blocks]  # fmt: skip
        return {"answer": "the Velt", "answered": True, "decision": "done", "passages": grades}

    return ScriptedModel(
        judge=judge,
        answerer=lambda r: {"short_answer": "the Velt",
                            "claims": [{"text": "The river Velt flows through Lumeria.", "citations": [1]}]},
    )  # fmt: skip


def web_settings(tmp_path, **extra):
    settings = settings_for(tmp_path, **extra)
    settings.fetch.allow_hosts = ["127.0.0.1"]  # tests serve pages on loopback; the SSRF guard refuses it otherwise
    settings.fetch.respect_robots = False
    settings.search.min_interval_s = 0
    settings.cache.dir = tmp_path / "cache"
    return settings


async def test_web_pages_are_fetched_extracted_and_cited(tmp_path):
    with LocalWebServer() as server:
        server.routes["/lumeria"] = page(LUMERIA)
        hit = {"title": "Lumeria", "href": server.url("/lumeria"), "body": "Lumeria is a harbour city"}
        ddgs = FakeDDGS(*[[hit]] * 10)
        settings = web_settings(tmp_path)
        result = await aresearch(QUESTION, settings=settings, backend=fake_backend(river_model()),
                                 tools=web_tools(settings, ddgs))  # fmt: skip
    assert result.termination == "answered" and result.usage.fetches == 1  # the page is fetched once, then reused
    assert result.citations[0].source == server.url("/lumeria")
    assert "river Velt flows through Lumeria" in result.citations[0].quote
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    fetches = [s for s in trajectory.steps if s.kind == "tool_call" and s.tool == "fetch_page"]
    assert fetches and fetches[0].success and fetches[0].results[0].content_hash in trajectory.contents
    assert "Copyright" not in trajectory.contents[fetches[0].results[0].content_hash].text  # boilerplate removed


async def test_web_down_degrades_to_local_and_says_so(tmp_path):
    index_dir = build_sample_index(tmp_path)
    settings = web_settings(tmp_path)
    settings.search.max_retries = 1
    ddgs = FakeDDGS(*[TimeoutException("error sending request > operation timed out")] * 10)  # what ddgs 9 raises
    question = "What government position was held by the woman who portrayed Corliss Archer in Kiss and Tell?"
    both = ScriptedModel(planner={"subgoals": [{"question": question, "depends_on": [], "source": "both"}]})
    result = await aresearch(question, settings=settings, backend=fake_backend(both),
                             tools=web_tools(settings, ddgs, index_dir))  # fmt: skip
    assert result.answer and result.citations and all(c.source.endswith(".jsonl") for c in result.citations)
    assert any("web search unavailable" in n and "local documents only" in n for n in result.notes)
    assert len(ddgs.calls) == 2  # one query, one retry; then the web is off for the rest of the run
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    failed = [s for s in trajectory.steps if s.kind == "tool_call" and s.tool == "web_search"]
    assert failed and not failed[0].success and "timed out" in failed[0].error.lower()


async def test_parallel_queries_fetch_a_page_once_and_a_broken_cache_is_a_note_not_an_end(tmp_path):
    with LocalWebServer() as server:
        server.routes["/lumeria"] = page(LUMERIA)
        hit = {"title": "Lumeria", "href": server.url("/lumeria"), "body": "Lumeria is a harbour city"}
        ddgs = FakeDDGS(*[[hit]] * 10)
        settings = web_settings(tmp_path)
        settings.cache.dir.mkdir(parents=True)
        (settings.cache.dir / "pages.sqlite").write_bytes(b"this is not a database" * 100)  # the page cache
        model = river_model()
        model.handlers["planner"] = {"subgoals": [{"question": QUESTION, "depends_on": [], "source": "both",
                                                   "queries": ["Lumeria river", "river through Lumeria city"]}]}
        tools = web_tools(settings, ddgs)
        result = await aresearch(QUESTION, settings=settings, backend=fake_backend(model), tools=tools)
    assert result.termination == "answered"
    # Three queries in parallel name the same URL: one fetch, counted once.
    assert result.usage.fetches == 1 and len(server.requests) == 1
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    notes = [s.error or "" for s in trajectory.steps if s.kind == "tool_call"]
    assert tools.fetcher.cache.degraded and any("page cache off" in n for n in notes)
