"""A corpus served as a small web on 127.0.0.1: one HTML page per passage, and a SearXNG-compatible search engine.

For benchmarks that run the agent with the web on without touching the internet. The agent's own code paths
do the work: `web_search` asks this server through the SearXNG client (`search.provider = searxng`,
`search.searxng_url = corpus.base_url`), `fetch_page` fetches the pages over HTTP (SSRF guard with
`fetch.allow_hosts = ["127.0.0.1"]`, robots.txt, byte caps) and extracts them with trafilatura.

- `GET /search?q=…&format=json`: the passages ranked by BM25 (bm25s, English stop words, Snowball stemmer) over
  title and text, the top `results` as SearXNG's JSON (`results: [{url, title, content, engine, score}]`);
  a query no passage shares a word with gets an empty list. Any other format answers 403, as SearXNG does.
- `GET /wiki/<n>`: passage n as an HTML article whose <title> and <h1> are the passage title.
- `GET /robots.txt`: allows everything.

Every search query and page request is counted (`queries`, `pages_served`), so a caller can show the web was used.

    with WebCorpus([(p.title, p.text) for p in dataset.passages]) as web:
        settings.search.searxng_url = web.base_url
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROBOTS = b"User-agent: *\nAllow: /\n"


class WebCorpus:
    """Serves `passages` ((title, text) pairs) as pages and a BM25 search engine; a context manager."""

    def __init__(self, passages: Sequence[tuple[str, str]], results: int = 8, snippet_chars: int = 240):
        import bm25s
        import Stemmer

        self.passages = [(" ".join(t.split()), " ".join(x.split())) for t, x in passages]
        self.results, self.snippet_chars = results, snippet_chars
        self._stemmer = Stemmer.Stemmer("english")
        texts = [f"{title}. {text}" for title, text in self.passages]
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, show_progress=False)
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokens, show_progress=False)
        self._lock = threading.Lock()
        self.queries: list[str] = []
        self.pages_served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> WebCorpus:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.corpus = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-corpus", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use WebCorpus as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url_of(self, n: int) -> str:
        return f"{self.base_url}/wiki/{n}"

    # ---- what the server answers ---------------------------------------------------------------

    def search(self, query: str) -> list[dict]:
        """SearXNG-style results for `query`, best first (positive BM25 scores only)."""
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)
        with self._lock:
            self.queries.append(query)
            known = self._bm25.get_tokens_ids(tokens[0])
            scores = self._bm25.get_scores(known) if known else []
        ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: -scores[i])[: self.results]
        out = []
        for n in ranked:
            title, text = self.passages[n]
            snippet = text if len(text) <= self.snippet_chars else text[: self.snippet_chars].rsplit(" ", 1)[0] + " …"
            out.append({"url": self.url_of(n), "title": title, "content": snippet, "engine": "bm25",
                        "score": round(float(scores[n]), 4)})  # fmt: skip
        return out

    def page(self, n: int) -> bytes:
        title, text = (html.escape(s) for s in self.passages[n])
        with self._lock:
            self.pages_served += 1
        return (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
            f"<body><main><article><h1>{title}</h1>\n<p>{text}</p>\n</article></main></body></html>\n"
        ).encode()


def _page_number(path: str, pages: int) -> int | None:
    digits = path.removeprefix("/wiki/")
    return int(digits) if path.startswith("/wiki/") and digits.isdigit() and int(digits) < pages else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    corpus: WebCorpus


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        corpus = self.server.corpus
        try:
            if parts.path == "/robots.txt":
                self._send(200, ROBOTS, "text/plain; charset=utf-8")
            elif parts.path == "/search":
                params = parse_qs(parts.query)
                if params.get("format", [""])[0] != "json":
                    self._send(403, b"Forbidden", "text/plain")
                    return
                query = params.get("q", [""])[0]
                payload = {"query": query, "results": corpus.search(query), "unresponsive_engines": []}
                payload["number_of_results"] = len(payload["results"])
                self._send(200, json.dumps(payload).encode(), "application/json")
            elif (n := _page_number(parts.path, len(corpus.passages))) is not None:
                self._send(200, corpus.page(n), "text/html; charset=utf-8")
            else:
                self._send(404, b"<html><body><h1>Not found</h1></body></html>", "text/html; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
