"""`deepsearch fetch URL`: read one page through the agent's fetch tool (SSRF guard, robots.txt, extraction)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from ..errors import DeepsearchError
from .options import ConfigOpt, JsonOpt, settings_from_cli


def fetch(
    url: Annotated[str, typer.Argument(help="Page to read; https:// is assumed when no scheme is given.")],
    text_format: Annotated[str | None, typer.Option("--format", help="markdown or text.")] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Private host, IP or CIDR network that may be fetched, e.g. 10.0.0.0/8 (repeatable)."),
    ] = None,
    ignore_robots: Annotated[bool, typer.Option("--ignore-robots", help="Do not consult robots.txt.")] = False,
    max_bytes: Annotated[int | None, typer.Option(help="Body cap in bytes (after decompression).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Total timeout in seconds, redirects included.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the page cache.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Fetch a page and print its main text (to stdout) after a short header (to stderr).

    Private, loopback and link-local addresses are refused unless allowed (fetch.allow_hosts or
    --allow-host); robots.txt is honoured unless --ignore-robots. A failed fetch prints one line
    saying why and exits with status 1.

    Example: deepsearch fetch https://docs.python.org/3/library/asyncio.html > asyncio.md
    """
    from ...tools.fetch_page import PageFetcher

    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    loaded = settings_from_cli(
        config,
        {
            "fetch.output_format": text_format,
            "fetch.allow_hosts": allow_host,
            "fetch.respect_robots": False if ignore_robots else None,
            "fetch.max_bytes": max_bytes,
            "fetch.total_timeout_s": timeout,
            "fetch.use_cache": False if no_cache else None,
        },
    )
    settings = loaded.settings
    page = asyncio.run(PageFetcher(settings.fetch, settings.cache.dir).fetch(url))
    if as_json:
        print(page.model_dump_json(indent=2))
        if not page.ok:
            raise typer.Exit(1)
        return
    if not page.ok:
        raise DeepsearchError(f"fetch failed ({page.status}): {page.message}")
    facts = [page.extractor or "", f"{page.bytes_read:,} bytes", f"{page.elapsed_ms:.0f} ms"]
    if page.from_cache:
        facts.append("from cache")
    header = [
        f"# {page.title}" if page.title else "",
        page.final_url,
        " · ".join(x for x in (page.author, page.date, page.sitename) if x),
        " · ".join(x for x in facts if x) + (f" · {page.message}" if page.message else ""),
    ]
    print("\n".join(h for h in header if h) + "\n", file=sys.stderr)
    print(page.text)


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
