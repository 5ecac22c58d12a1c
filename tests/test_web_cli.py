"""`deepsearch web` and `deepsearch fetch` as a user meets them: a real subprocess against local servers only."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.fakes.search import searxng_route
from tests.fakes.web_server import LocalWebServer, page
from tests.test_cli_foundation import deepsearch

ARTICLE = (Path(__file__).parent / "fixtures" / "web" / "article.html").read_bytes()


@pytest.fixture(scope="module")
def server():
    with LocalWebServer() as web:
        web.routes["/article.html"] = page(ARTICLE)
        searxng_route(web)
        yield web


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_web_json_through_searxng(server, cli_env):
    out = deepsearch("web", "nile", "--provider", "searxng", "--searxng-url", server.url(""), "--json", env=cli_env)
    assert out.returncode == 0, out.stderr
    outcome = json.loads(out.stdout)
    assert outcome["status"] == "ok" and outcome["provider"] == "searxng"
    assert outcome["results"][0]["url"] == "https://en.wikipedia.org/wiki/Nile"


def test_web_prints_ranked_results_and_uses_the_cache(server, cli_env):
    args = ("web", "nile", "-n", "1", "--provider", "searxng", "--searxng-url", server.url(""))
    first = deepsearch(*args, env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "1. Nile\n   https://en.wikipedia.org/wiki/Nile\n   The Nile is a river." in first.stdout
    assert "Britannica" not in first.stdout and "1 request(s)" in first.stdout
    assert "cache" in deepsearch(*args, env=cli_env).stdout


def test_web_unavailable_is_one_line_and_exit_1(cli_env):
    url = f"http://127.0.0.1:{dead_port()}"
    env = {**cli_env, "DEEPSEARCH_SEARCH_PROVIDER": "searxng", "DEEPSEARCH_SEARCH_MAX_RETRIES": "0"}
    out = deepsearch("web", "nile", "--searxng-url", url, env=env)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("deepsearch: error: web search unavailable: SearXNG at")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    as_json = deepsearch("web", "nile", "--searxng-url", url, "--json", env=env)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["status"] == "unavailable"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("web", "  "), "deepsearch: error: the search query is empty"),
        (("web", "x", "--time-range", "q"), "deepsearch: error: bad config value search.time_range = 'q' (from flag)"),
        (
            ("web", "x", "--provider", "searxng"),
            "deepsearch: error: search.provider = searxng needs search.searxng_url",
        ),
    ],
)
def test_web_bad_input_is_a_one_line_usage_error(cli_env, args, message):
    out = deepsearch(*args, env=cli_env)
    assert out.returncode == 2 and out.stderr.startswith(message) and out.stderr.count("\n") == 1


def test_fetch_prints_text_to_stdout_and_a_header_to_stderr(server, cli_env):
    out = deepsearch("fetch", server.url("/article.html"), "--allow-host", "127.0.0.1", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Glacier retreat in the Alps doubled since 2000, survey finds\n")
    assert "We use cookies" not in out.stdout
    assert "Marta Keller · 2024-09-18 · The Mountain Ledger" in out.stderr and "trafilatura" in out.stderr


def test_fetch_json_with_the_allow_list_from_the_environment(server, cli_env):
    env = {**cli_env, "DEEPSEARCH_FETCH_ALLOW_HOSTS": "10.0.0.0/8, 127.0.0.1"}
    out = deepsearch("fetch", server.url("/article.html"), "--json", "--format", "text", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "ok" and result["text_format"] == "text" and result["author"] == "Marta Keller"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "deepsearch: error: fetch failed (blocked): 127.0.0.1 resolves to non-public address 127.0.0.1"),
        ("file:///etc/passwd", "deepsearch: error: fetch failed (blocked): only http and https URLs can be fetched"),
    ],
)
def test_fetch_refusals_are_one_line_and_exit_1(server, cli_env, url, message):
    out = deepsearch("fetch", url or server.url("/article.html"), env=cli_env)
    assert out.returncode == 1 and out.stdout == "" and out.stderr.startswith(message)
    assert out.stderr.count("\n") == 1


def test_help_explains_with_an_example(cli_env):
    for command, example in (
        ("web", 'deepsearch web "python asyncio timeout"'),
        ("fetch", "deepsearch fetch https://"),
    ):
        out = deepsearch(command, "--help", env=cli_env)
        assert out.returncode == 0 and example in out.stdout
