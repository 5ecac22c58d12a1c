"""Query guard and result normalisation shared by every search engine wrapper."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..agent.errors import UsageError
from .search_models import SearchResult

log = logging.getLogger(__name__)

# DuckDuckGo rejects longer queries; the other engines accept them but gain nothing from more words.
MAX_QUERY_CHARS = 500

# Keys that ddgs versions and engines have used for the same field, in order of preference.
_URL_KEYS = ("href", "url", "link")
_TITLE_KEYS = ("title", "name")
_SNIPPET_KEYS = ("body", "snippet", "description", "content", "abstract")
_ENGINE_KEYS = ("engine", "provider", "source")

_TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_hsenc|_hsmi|ref_src)$", re.I)


def guard_query(query: str) -> tuple[str, bool]:
    """Collapse whitespace and cut at MAX_QUERY_CHARS (on a word boundary when there is one).

    Returns the query and whether it was cut. An empty query is a usage error.
    """
    cleaned = " ".join(query.split())
    if not cleaned:
        raise UsageError("the search query is empty")
    if len(cleaned) <= MAX_QUERY_CHARS:
        return cleaned, False
    cut = cleaned[:MAX_QUERY_CHARS]
    if cleaned[MAX_QUERY_CHARS] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    log.warning("search query cut from %d to %d characters (engine limit %d)", len(cleaned), len(cut), MAX_QUERY_CHARS)
    return cut.rstrip(), True


def canonical_url(url: str) -> str:
    """A key under which trivially different URLs of one page collide (used for de-duplication only).

    Lower-cases scheme and host, ignores http/https, `www.`, default ports, fragments, tracking
    parameters, parameter order and a trailing slash.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/") or "/"
    params = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode(sorted((k, v) for k, v in params if not _TRACKING_PARAMS.match(k)))
    return urlunsplit(("", netloc, path, query, ""))


def _first(raw: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def normalize_results(raw_results: Iterable[Mapping[str, Any]], backend: str, limit: int) -> list[SearchResult]:
    """Map engine-specific dicts to SearchResult, drop ones without an http(s) URL and duplicates, rank 1..n."""
    now = datetime.now(UTC)
    seen: set[str] = set()
    results: list[SearchResult] = []
    for raw in raw_results:
        url = _first(raw, _URL_KEYS)
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        key = canonical_url(url)
        if key in seen:
            continue
        seen.add(key)
        engine = _first(raw, _ENGINE_KEYS)
        results.append(
            SearchResult(
                title=_first(raw, _TITLE_KEYS) or url,
                url=url,
                snippet=_first(raw, _SNIPPET_KEYS),
                rank=len(results) + 1,
                backend=f"{backend}:{engine}" if engine else backend,
                retrieved_at=now,
            )
        )
        if len(results) >= limit:
            break
    return results
