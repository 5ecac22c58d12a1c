"""bench/pipeline_ceiling.py on the in-repo MuSiQue slice: cost figures from trajectories, and the web on, locally.

The web is bench/web_corpus.py on 127.0.0.1 (pooled passages as pages, a SearXNG-compatible BM25 engine), reached
through the agent's real web tools. Figures are checked for presence and sense, never for wall time.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from deepsearch.tools import web_search

from bench import pipeline_ceiling
from bench.web_corpus import WebCorpus

SLICE = Path(__file__).parent / "fixtures" / "musique_slice"


def test_the_bench_with_the_web_on_searches_the_local_engine_and_reports_costs(monkeypatch):
    ddgs_built = []
    monkeypatch.setattr(web_search, "DdgsEngine", lambda *a, **k: ddgs_built.append(a))
    f = pipeline_ceiling.run(SLICE, limit=2, concurrency=2, web=True)
    assert f["web"] is True and f["questions"] == 2 and f["repeats"] == 1
    assert f["termination"] == {"answered": 2}, f["termination"]
    assert 0 < f["prefix_reuse"] < 1
    roles = f["calls_by_role"]
    assert {"planner", "answerer"} <= set(roles) and all(v > 0 for v in roles.values()), roles
    assert sum(roles.values()) == pytest.approx(f["mean_llm_calls"], abs=0.01)  # every call has its role
    # The web was really used: the local engine answered searches, its pages were fetched and kept as evidence.
    assert f["web_corpus_queries"] > 0 and f["median_web_searches"] > 0
    assert f["web_corpus_pages_served"] > 0 and f["mean_pages_fetched"] > 0
    assert f["mean_web_evidence"] > 0
    assert ddgs_built == []  # SearXNG only: ddgs is never even built


def test_repeats_report_each_figures_median():
    runs = [{"em": 0.5, "calls_by_role": {"judge": 2.0}}, {"em": 0.7, "calls_by_role": {"judge": 4.0, "planner": 1.0}},
            {"em": 0.6, "calls_by_role": {"judge": 3.0}}]  # fmt: skip
    f = pipeline_ceiling.median_of_repeats(runs)
    assert f["em"] == 0.6 and f["calls_by_role"] == {"judge": 3.0, "planner": 0} and f["repeats"] == 3
    assert f["per_repeat"] == runs


def test_the_web_corpus_answers_like_searxng():
    passages = [("Nile", "The Nile is a river in Africa."), ("Danube", "The Danube flows to the Black Sea.")]
    with WebCorpus(passages) as web:
        found = httpx.get(f"{web.base_url}/search", params={"q": "river Nile", "format": "json"}).json()
        assert [r["title"] for r in found["results"]] == ["Nile"]
        assert found["results"][0]["url"] == web.url_of(0)
        assert "<title>Nile</title>" in httpx.get(web.url_of(0)).text
        assert httpx.get(f"{web.base_url}/search", params={"q": "nile", "format": "html"}).status_code == 403
        assert httpx.get(f"{web.base_url}/search", params={"q": "zebra", "format": "json"}).json()["results"] == []
        assert web.queries == ["river Nile", "zebra"] and web.pages_served == 1
