"""SearXNG's JSON API on a local HTTP server (the fallback behind the real ddgs: tests/test_web_ddgs_real.py)."""

from __future__ import annotations

import random
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from deepsearch.agent.config import SearchSettings
from deepsearch.tools.rate_limit import RateLimiter
from deepsearch.tools.searxng import searxng_language
from deepsearch.tools.web_search import WebSearch, engines_from_settings

from tests.fakes.search import Recorder, searxng_empty, searxng_route
from tests.fakes.web_server import LocalWebServer, page


def query_of(server: LocalWebServer, n: int = -1) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(server.paths()[n]).query).items()}


def make_search(tmp_path, settings: SearchSettings, engines=None) -> WebSearch:
    limiters: dict[str, RateLimiter] = {}
    return WebSearch(
        settings,
        tmp_path,
        engines=engines,
        limiter_for=lambda key, interval: limiters.setdefault(key, RateLimiter(interval)),
        sleep=Recorder(),
        rng=random.Random(1),
    )


@pytest.fixture
def searxng():
    with LocalWebServer() as server:
        yield server


def settings_for(server: LocalWebServer, **extra) -> SearchSettings:
    values = {"provider": "searxng", "searxng_url": server.url("/"), "min_interval_s": 0, "use_cache": False}
    return SearchSettings(**{**values, **extra})


async def test_searxng_alone_maps_parameters_and_results(searxng, tmp_path):
    searxng_route(searxng)
    settings = settings_for(searxng, region="uk-en", time_range="w", safe_search="on")
    outcome = await make_search(tmp_path, settings).search("nile  river", max_results=5)
    assert outcome.status == "ok" and outcome.provider == "searxng"
    assert [(r.rank, r.title, r.backend) for r in outcome.results] == [
        (1, "Nile", "searxng:wikipedia"),
        (2, "Nile River | Britannica", "searxng:brave"),
    ]  # the #History link is the same page
    assert query_of(searxng) == {
        "q": "nile river", "format": "json", "language": "en-GB", "time_range": "week", "safesearch": "2", "pageno": "1"
    }  # fmt: skip


async def test_searxng_429_is_retried_then_answers(searxng, tmp_path):
    searxng_route(searxng, 429, 429)
    outcome = await make_search(tmp_path, settings_for(searxng, max_retries=2)).search("nile")
    assert outcome.status == "ok" and outcome.attempts == 3 and len(searxng.paths()) == 3


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda s: searxng_route(s, 403), "refused format=json (HTTP 403)"),
        (lambda s: s.routes.update({"/search": page("<html>not json</html>", "text/html")}), "not JSON"),
        (lambda s: s.routes.update({"/search": page('{"answers": []}', "application/json")}), "without a results list"),
        (lambda s: searxng_route(s, 500), "answered HTTP 500"),
        (lambda s: searxng_route(s, 429, 429, 429), "rate-limited (HTTP 429) (gave up after 3 attempts)"),
    ],
)
async def test_searxng_failures_are_explained(searxng, tmp_path, setup, expected):
    setup(searxng)
    outcome = await make_search(tmp_path, settings_for(searxng, max_retries=2)).search("nile")
    assert outcome.status == "unavailable" and outcome.message.startswith("web search unavailable: SearXNG at")
    assert expected in outcome.message


async def test_unreachable_searxng_is_unavailable(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = SearchSettings(provider="searxng", searxng_url=f"http://127.0.0.1:{port}", min_interval_s=0)
    outcome = await make_search(tmp_path, settings).search("nile")
    assert outcome.status == "unavailable" and "unreachable" in outcome.message


async def test_searxng_with_its_engines_unresponsive_is_an_empty_answer_kept_briefly(searxng, tmp_path):
    searxng_empty(searxng, [["brave", "too many requests"], ["duckduckgo", "CAPTCHA"]])
    search = make_search(tmp_path, settings_for(searxng, use_cache=True, empty_ttl_s=120))
    outcome = await search.search("nile")
    assert outcome.status == "no_results" and outcome.attempts == 1  # an empty answer is not retried
    assert outcome.message == (
        f"SearXNG at {searxng.url('')} found nothing; unresponsive engines: brave (too many requests), "
        "duckduckgo (CAPTCHA)"
    )
    assert (await search.search("nile")).from_cache and search.brief_cache.ttl_s == 120


async def test_searxng_empty_with_every_engine_answering_is_a_real_no_results(searxng, tmp_path):
    searxng_empty(searxng, [])
    outcome = await make_search(tmp_path, settings_for(searxng)).search("nile")
    assert (outcome.status, outcome.message) == ("no_results", "")


def test_engine_order_from_settings(searxng):
    assert [e.name for e in engines_from_settings(SearchSettings())] == ["ddgs"]
    with_fallback = SearchSettings(searxng_url=searxng.url(""))
    assert [e.name for e in engines_from_settings(with_fallback)] == ["ddgs", "searxng"]
    assert [e.name for e in engines_from_settings(settings_for(searxng))] == ["searxng"]


@pytest.mark.parametrize(
    ("region", "language"), [("us-en", "en-US"), ("de-de", "de-DE"), ("wt-wt", "all"), ("x", "all")]
)
def test_region_to_searxng_language(region, language):
    assert searxng_language(region) == language
