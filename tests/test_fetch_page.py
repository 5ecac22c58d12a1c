"""fetch_page against a real HTTP server on 127.0.0.1: real pages, hostile responses, robots.txt, cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deepsearch.agent.config import FetchSettings
from deepsearch.tools.fetch_page import PageFetcher, build_fetch_page_tool
from deepsearch.tools.page_models import PageOutcome
from deepsearch.tools.worker_pool import WorkerTimeout
from langchain_core.messages import ToolMessage

from tests.fakes.pdf import minimal_pdf
from tests.fakes.web_server import (
    LocalWebServer,
    drip,
    endless,
    gzip_bomb,
    gzipped,
    page,
    redirect,
    stall,
)

PAGES = Path(__file__).parent / "fixtures" / "web"


def html(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@pytest.fixture
def web():
    with LocalWebServer() as server:
        for name in ("article.html", "docs.html", "thread.html", "landing.html"):
            server.routes[f"/{name}"] = page(html(name))
        yield server


def fetcher(tmp_path: Path, **settings) -> PageFetcher:
    return PageFetcher(FetchSettings(allow_hosts=["127.0.0.1"], **settings), tmp_path / "cache")


async def test_article_main_text_and_metadata_without_page_chrome(web, tmp_path):
    result = await fetcher(tmp_path).fetch(web.url("/article.html"))
    assert result.status == "ok" and result.extractor == "trafilatura"
    assert result.title == "Glacier retreat in the Alps doubled since 2000, survey finds"
    assert (result.author, result.date, result.sitename) == ("Marta Keller", "2024-09-18", "The Mountain Ledger")
    assert "twice as fast between 2010 and 2023" in result.text
    assert "## Small glaciers vanish first" in result.text  # markdown headings
    for chrome in ("We use cookies", "Winter tyres", "Most read", "alpinist77", "© 2024"):
        assert chrome not in result.text
    assert (result.http_status, result.content_type, result.charset) == (200, "text/html", "utf-8")
    assert result.bytes_read == len(html("article.html")) and not result.truncated


async def test_plain_text_format_and_code_blocks(web, tmp_path):
    result = await fetcher(tmp_path, output_format="text").fetch(web.url("/docs.html"))
    assert result.status == "ok" and result.text_format == "text"
    assert "reader, writer = await aio.open_connection('127.0.0.1', 8888)" in result.text
    assert "StreamReader" in result.text and not re.search(r"^#", result.text, re.M)
    assert "Previous topic" not in result.text  # sidebar dropped


async def test_fallback_extractor_when_trafilatura_keeps_almost_nothing(web, tmp_path):
    result = await fetcher(tmp_path).fetch(web.url("/thread.html"))
    assert result.status == "ok" and result.extractor == "fallback"
    assert "time-out timer was reset to the factory default" in result.text
    assert "forum rules" not in result.text  # the footer trafilatura had kept


@pytest.mark.parametrize(
    ("body", "content_type", "expected", "charset"),
    [
        # Declared only in <meta http-equiv>, windows-1252 bytes.
        (html("legacy-cp1252.html"), "text/html", "Café Müller – a history", "cp1252"),
        # Header says latin-1, body is UTF-8.
        ("<p>Crème brûlée — “déjà vu” in Zürich, Ελληνικά</p>".encode(), "text/html; charset=iso-8859-1",
         "Crème brûlée — “déjà vu” in Zürich, Ελληνικά", "utf-8"),
        # Header says UTF-8, body is windows-1252 with no <meta>: detected.
        (re.sub(rb"<meta[^>]*>", b"", html("legacy-cp1252.html")), "text/html; charset=utf-8",
         "the original tiled stove, with its naïve painted flowers", "cp1252"),
    ],
)  # fmt: skip
async def test_mislabelled_and_undeclared_charsets(web, tmp_path, body, content_type, expected, charset):
    web.routes["/page"] = page(body, content_type)
    result = await fetcher(tmp_path).fetch(web.url("/page"))
    assert expected in result.text and result.charset == charset
    assert "\ufffd" not in result.text


async def test_gzip_bodies_are_decoded(web, tmp_path):
    web.routes["/gz"] = gzipped(html("article.html"))
    result = await fetcher(tmp_path).fetch(web.url("/gz"))
    assert result.status == "ok" and "peak water" in result.text
    assert result.bytes_read == len(html("article.html"))


async def test_gzip_bomb_is_cut_at_the_byte_cap(web, tmp_path):
    web.routes["/bomb"] = gzip_bomb(decoded_mb=64)
    result = await fetcher(tmp_path, max_bytes=1_000_000).fetch(web.url("/bomb"))
    assert result.truncated and result.bytes_read == 1_000_000
    assert result.status == "empty"  # nothing but whitespace inside


async def test_endless_body_is_cut_and_what_was_read_is_extracted(web, tmp_path):
    web.routes["/endless"] = endless()
    result = await fetcher(tmp_path, max_bytes=200_000).fetch(web.url("/endless"))
    assert result.status == "ok" and result.truncated and result.bytes_read == 200_000
    assert "lorem ipsum" in result.text and "cut at 200000 bytes" in result.message


async def test_slow_drip_hits_the_total_timeout(web, tmp_path):
    web.routes["/slow"] = drip(total_bytes=100, every_s=0.05)
    result = await fetcher(tmp_path, total_timeout_s=0.5, read_timeout_s=2).fetch(web.url("/slow"))
    assert result.status == "timeout" and "total timeout of 0.5s" in result.message


async def test_silent_server_hits_the_read_timeout(web, tmp_path):
    web.routes["/stall"] = stall(3)
    result = await fetcher(tmp_path, read_timeout_s=0.3).fetch(web.url("/stall"))
    assert result.status == "timeout" and "read timeout (0.3s)" in result.message


async def test_redirect_chain_is_followed_and_recorded(web, tmp_path):
    web.routes["/old"] = redirect("/moved", 301)
    web.routes["/moved"] = redirect(web.url("/article.html"), 307)
    result = await fetcher(tmp_path).fetch(web.url("/old"))
    assert result.status == "ok" and result.final_url == web.url("/article.html")
    assert result.redirects == [web.url("/moved"), web.url("/article.html")]


async def test_redirect_loop_and_redirect_limit(web, tmp_path):
    web.routes["/a"], web.routes["/b"] = redirect("/b"), redirect("/a")
    loop = await fetcher(tmp_path).fetch(web.url("/a"))
    assert loop.status == "redirect_loop"
    for i in range(4):
        web.routes[f"/hop{i}"] = redirect(f"/hop{i + 1}")
    web.routes["/hop4"] = page(html("article.html"))
    limited = await fetcher(tmp_path, max_redirects=2).fetch(web.url("/hop0"))
    assert limited.status == "too_many_redirects" and "more than 2 redirects" in limited.message
    assert (await fetcher(tmp_path, max_redirects=4).fetch(web.url("/hop0"))).ok


async def test_http_errors_and_unsupported_types(web, tmp_path):
    web.routes["/image"] = page(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")
    web.routes["/blob"] = page(b"\x00\x01\x02binary", "application/octet-stream")
    f = fetcher(tmp_path)
    missing = await f.fetch(web.url("/missing"))
    assert (missing.status, missing.http_status, missing.message) == ("http_error", 404, "HTTP 404")
    image = await f.fetch(web.url("/image"))
    assert image.status == "unsupported_content" and "image/png" in image.message and image.bytes_read == 0
    assert (await f.fetch(web.url("/blob"))).status == "unsupported_content"


async def test_unlabelled_html_is_sniffed_and_plain_text_passes_through(web, tmp_path):
    web.routes["/unlabelled"] = page(html("article.html"), "application/octet-stream")
    web.routes["/notes.txt"] = page("Tide tables\n\nHigh water 06:12 at Pier 4.\n", "text/plain")
    f = fetcher(tmp_path)
    assert (await f.fetch(web.url("/unlabelled"))).extractor == "trafilatura"
    notes = await f.fetch(web.url("/notes.txt"))
    assert (notes.status, notes.extractor, notes.text) == ("ok", "plain", "Tide tables\n\nHigh water 06:12 at Pier 4.")


async def test_pdf_text_is_extracted(web, tmp_path):
    web.routes["/report.pdf"] = page(minimal_pdf("Quarterly tide report for Pier 4"), "application/pdf")
    result = await fetcher(tmp_path).fetch(web.url("/report.pdf"))
    assert (result.status, result.extractor) == ("ok", "pdf") and "Quarterly tide report for Pier 4" in result.text


async def test_robots_txt_is_honoured_once_per_origin_and_can_be_ignored(web, tmp_path):
    rules = "User-agent: *\nDisallow: /private\n\nUser-agent: otherbot\nDisallow: /\n"
    web.routes["/robots.txt"] = page(rules, "text/plain")
    web.routes["/private/report.html"] = page(html("article.html"))
    f = fetcher(tmp_path, use_cache=False)
    blocked = await f.fetch(web.url("/private/report.html"))
    assert blocked.status == "robots_disallowed" and "respect_robots" in blocked.message
    assert (await f.fetch(web.url("/article.html"))).ok
    assert web.paths().count("/robots.txt") == 1
    assert "/private/report.html" not in web.paths()
    assert (await f.fetch(web.url("/private/report.html"), respect_robots=False)).ok


async def test_robots_txt_on_a_redirect_target_is_checked_too(web, tmp_path):
    web.routes["/robots.txt"] = page("User-agent: deepsearch\nDisallow: /private\n", "text/plain")
    web.routes["/go"] = redirect("/private/x")
    result = await fetcher(tmp_path).fetch(web.url("/go"))
    assert result.status == "robots_disallowed"


async def test_unavailable_robots_txt_means_disallow_and_missing_means_allow(web, tmp_path):
    assert (await fetcher(tmp_path).fetch(web.url("/article.html"))).ok  # /robots.txt is a 404
    web.routes["/robots.txt"] = page("overloaded", "text/plain", status=503)
    result = await fetcher(tmp_path, use_cache=False).fetch(web.url("/article.html"))
    assert result.status == "robots_disallowed" and "HTTP 503" in result.message


async def test_pages_are_cached_by_url_and_policy(web, tmp_path):
    f = fetcher(tmp_path)
    first = await f.fetch(web.url("/article.html"))
    second = await f.fetch(web.url("/article.html"))
    assert not first.from_cache and second.from_cache and second.text == first.text
    assert web.paths().count("/article.html") == 1
    assert not (await f.fetch(web.url("/article.html"), use_cache=False)).from_cache
    # A page fetched with robots ignored is not served when robots are respected.
    assert not (await f.fetch(web.url("/article.html"), respect_robots=False)).from_cache
    # Failures are never cached.
    await f.fetch(web.url("/missing"))
    assert not (await f.fetch(web.url("/missing"))).from_cache


async def test_the_cache_key_holds_the_byte_cap_user_agent_and_extractor_version(web, tmp_path, monkeypatch):
    cut = await fetcher(tmp_path, max_bytes=2048).fetch(web.url("/article.html"))
    assert cut.truncated
    full = await fetcher(tmp_path).fetch(web.url("/article.html"))  # a larger cap: not the cut copy
    assert not full.from_cache and not full.truncated and len(full.text) > len(cut.text)
    assert (await fetcher(tmp_path).fetch(web.url("/article.html"))).from_cache
    assert not (await fetcher(tmp_path, user_agent="other-agent/2").fetch(web.url("/article.html"))).from_cache
    monkeypatch.setattr("deepsearch.tools.fetch_page.extractor_version", lambda: "rules-99/trafilatura-9.9")
    assert not (await fetcher(tmp_path).fetch(web.url("/article.html"))).from_cache
    assert web.paths().count("/article.html") == 4


async def test_a_broken_page_cache_degrades_to_no_cache_and_says_so(web, tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    f = fetcher(tmp_path)
    pages = [await f.fetch(web.url("/article.html")) for _ in range(2)]
    assert all(p.ok and not p.from_cache for p in pages)  # the fetch goes on, uncached
    assert all(p.cache_degraded and "FileExistsError" in p.cache_degraded for p in pages)
    assert f.cache.degraded == pages[0].cache_degraded
    healthy = await fetcher(tmp_path / "elsewhere").fetch(web.url("/article.html"))
    assert healthy.cache_degraded is None


async def test_a_cached_entry_that_no_longer_parses_is_fetched_again(web, tmp_path):
    f = fetcher(tmp_path)
    url = web.url("/article.html")
    f.cache.put_sync(f.cache_key(url, "markdown", True), '{"status": "from an older version"}')
    page = await f.fetch(url)
    assert page.ok and not page.from_cache
    assert (await f.fetch(url)).from_cache  # replaced by the fresh copy


class _TrafilaturaHangs:
    """A worker pool whose first (trafilatura) call overruns its hard timeout."""

    def __init__(self, real):
        self.real, self.calls = real, []

    async def call(self, fn, *args, timeout_s, **kwargs):
        self.calls.append(kwargs)
        if kwargs.get("use_trafilatura", True):
            raise WorkerTimeout(f"no result within {timeout_s:g}s")
        return await self.real.call(fn, *args, timeout_s=timeout_s, **kwargs)


async def test_extraction_timeout_falls_back_to_the_plain_extractor(web, tmp_path):
    f = fetcher(tmp_path, extract_timeout_s=2)
    f.pool = _TrafilaturaHangs(f.pool)
    result = await f.fetch(web.url("/article.html"))
    assert result.status == "ok" and result.extractor == "fallback"
    assert "trafilatura timed out after 2s" in result.message and "twice as fast" in result.text
    assert f.pool.calls == [{}, {"use_trafilatura": False}]


async def test_langchain_tool_returns_text_and_the_outcome(web, tmp_path):
    tool = build_fetch_page_tool(fetcher(tmp_path))
    assert tool.name == "fetch_page" and set(tool.args) == {"url", "max_tokens"}
    text = await tool.ainvoke({"url": web.url("/article.html"), "max_tokens": 100})
    assert text.startswith("Title: Glacier retreat") and len(text) < 700
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c1", "name": "fetch_page", "args": {"url": web.url("/missing")}}
    )
    assert isinstance(message, ToolMessage) and message.content == "fetch failed (http_error): HTTP 404"
    assert isinstance(message.artifact, PageOutcome) and message.artifact.http_status == 404
