"""ddgs's text engines on 127.0.0.1: result pages in each engine's real markup, and the ways engines refuse.

`EngineServer.point(monkeypatch)` sets the `search_url` of ddgs's DuckDuckGo, Mojeek and Brave classes to
this server, so the real ddgs (primp client, payloads, xpaths, ranking) runs end to end offline. Each
engine plays a script of behaviours, one per request, the last one repeating:

- "results": a page shaped like the engine's own (the elements ddgs's xpaths read), for the query asked;
- "empty": a 200 page in that shape with no results;
- "anomaly": DuckDuckGo's bot check, HTTP 202 with its anomaly page;
- 403 / 429 / 503: that status with a short page;
- "slow": nothing for `slow_s` seconds (longer than the client's timeout), then a results page;
- "drop": read the request, close the connection without answering.
"""

from __future__ import annotations

import html
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Behaviour = Literal["results", "empty", "anomaly", "slow", "drop", 403, 429, 503]
ENGINES = ("duckduckgo", "mojeek", "brave")

# Two hits per engine: one that every engine finds (ddgs merges it) and one of its own.
HITS = {
    "duckduckgo": [
        ("Nile - Wikipedia", "https://en.wikipedia.org/wiki/Nile", "The Nile is a major north-flowing river."),
        ("Nile facts | DuckDuckGo shape", "https://ddg.example/nile", "Facts about the Nile from the html page."),
    ],
    "mojeek": [
        ("Nile - Wikipedia", "https://en.wikipedia.org/wiki/Nile", "The Nile is a major north-flowing river."),
        ("Nile atlas | Mojeek shape", "https://mojeek.example/nile", "An atlas of the Nile basin."),
    ],
    "brave": [
        ("Nile - Wikipedia", "https://en.wikipedia.org/wiki/Nile", "The Nile is a major north-flowing river."),
        ("Nile cruises | Brave shape", "https://brave.example/nile", "Cruises on the Nile, by season."),
    ],
}


def _duckduckgo(hits: list[tuple[str, str, str]], query: str) -> str:
    # html.duckduckgo.com/html/: ddgs reads //div[contains(@class,'body')], its h2 text, ./a/@href and ./a text.
    items = "".join(
        f"""<div class="result results_links results_links_deep web-result">
<div class="links_main links_deep result__body">
<h2 class="result__title"><a rel="nofollow" class="result__a" href="{url}">{html.escape(title)}</a></h2>
<div class="result__extras"><div class="result__extras__url"><a class="result__url" href="{url}">{url}</a></div></div>
<a class="result__snippet" href="{url}">{html.escape(body)}</a><div class="clear"></div>
</div></div>"""
        for title, url, body in hits
    )
    ad = """<div class="result results_links result--ad"><div class="links_main result__body">
<h2 class="result__title"><a class="result__a" href="https://duckduckgo.com/y.js?ad_domain=ads.example">Ad</a></h2>
<a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=ads.example">Buy a Nile.</a></div></div>"""
    return f"""<!DOCTYPE html><html><head><title>{html.escape(query)} at DuckDuckGo</title></head>
<body class="body--html"><div class="serp__results"><div id="links" class="results">{ad if hits else ""}{items}
</div></div></body></html>"""


def _mojeek(hits: list[tuple[str, str, str]], query: str) -> str:
    # www.mojeek.com/search: //ul[contains(@class,'results')]/li, h2 text and link, p.s snippet.
    items = "".join(
        f"""<li class=""><a class="ob" href="{url}"><p class="i">{url}</p></a>
<h2><a class="title" title="{url}" href="{url}">{html.escape(title)}</a></h2>
<p class="s">{html.escape(body)}</p></li>"""
        for title, url, body in hits
    )
    listing = f'<ul class="results-standard">{items}</ul>' if hits else '<div class="no-results">No pages found</div>'
    return f"""<!DOCTYPE html><html><head><title>{html.escape(query)} - Mojeek Search</title></head>
<body><div class="results-container">{listing}</div></body></html>"""


def _brave(hits: list[tuple[str, str, str]], query: str) -> str:
    # search.brave.com/search: //div[@data-type='web'], its a[div.title]/@href, the last title div, snippet content.
    items = "".join(
        f"""<div class="snippet svelte-1a2b3c" data-pos="{i}" data-type="web"><div class="result-wrapper">
<a href="{url}" class="heading-serpresult l1"><div class="site-name-wrapper"><div class="sitename-container">
{urlsplit(url).hostname}</div><div class="t-secondary">{url}</div></div>
<div class="title search-snippet-title line-clamp-1">{html.escape(title)}</div></a>
<div class="generic-snippet"><div class="content desktop-default-regular t-primary">{html.escape(body)}</div></div>
</div></div>"""
        for i, (title, url, body) in enumerate(hits, 1)
    )
    return f"""<!DOCTYPE html><html><head><title>{html.escape(query)} - Brave Search</title></head>
<body><main><div id="results" class="results">{items}</div></main></body></html>"""


PAGES = {"duckduckgo": _duckduckgo, "mojeek": _mojeek, "brave": _brave}

# The page html.duckduckgo.com sends with HTTP 202 when it takes the client for a bot.
ANOMALY_PAGE = """<!DOCTYPE html><html><head><title>DuckDuckGo</title></head><body>
<form id="challenge-form" action="//duckduckgo.com/anomaly.js" method="POST">
<div class="anomaly-modal__mask"><div class="anomaly-modal__modal" data-testid="anomaly-modal">
<div class="anomaly-modal__title">Unfortunately, bots use DuckDuckGo too.</div>
<div class="anomaly-modal__description">Please complete the following challenge to confirm this search was made by a
human.</div><div class="anomaly-modal__puzzle"></div></div></div></form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(parse_qs(urlsplit(self.path).query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(parse_qs(self.rfile.read(length).decode()))

    def _answer(self, form: dict[str, list[str]]) -> None:
        owner = self.server.owner
        engine = urlsplit(self.path).path.strip("/")
        query = (form.get("q") or [""])[0]
        behaviour = owner.next_behaviour(engine, self.command, query)
        try:
            if behaviour == "drop":
                self.close_connection = True
                self.connection.shutdown(2)  # the socket closes with no status line: a dropped connection
                return
            if behaviour == "slow":
                time.sleep(owner.slow_s)
                behaviour = "results"
            if engine not in PAGES:
                self._send(404, "<html><body>Not found</body></html>")
            elif behaviour == "results":
                self._send(200, PAGES[engine](HITS[engine], query))
            elif behaviour == "empty":
                self._send(200, PAGES[engine]([], query))
            elif behaviour == "anomaly":
                self._send(202, ANOMALY_PAGE)
            else:
                self._send(int(behaviour), f"<html><body><h1>HTTP {behaviour}</h1></body></html>")
        except OSError:
            pass  # the client gave up first (its timeout): that is what the slow behaviour is for

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: EngineServer


class EngineServer:
    def __init__(self, slow_s: float = 1.0) -> None:
        self.slow_s = slow_s
        self.scripts: dict[str, list[Behaviour]] = {name: ["results"] for name in ENGINES}
        self.requests: list[tuple[str, str, str]] = []  # (engine, method, query)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> EngineServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, engine: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{engine}"

    def point(self, monkeypatch) -> None:
        """Send ddgs's engines here. Only these three may be used in tests: the others would go to the internet."""
        from ddgs.engines.brave import Brave
        from ddgs.engines.duckduckgo import Duckduckgo
        from ddgs.engines.mojeek import Mojeek

        for cls in (Duckduckgo, Mojeek, Brave):
            monkeypatch.setattr(cls, "search_url", self.url(cls.name))
        for var in ("DDGS_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    def script(self, engine: str, *behaviours: Behaviour) -> None:
        self.scripts[engine] = list(behaviours)

    def next_behaviour(self, engine: str, method: str, query: str) -> Behaviour:
        with self._lock:
            self.requests.append((engine, method, query))
            script = self.scripts.get(engine) or ["results"]
            return script.pop(0) if len(script) > 1 else script[0]

    def hits(self, engine: str | None = None) -> list[tuple[str, str, str]]:
        return [r for r in self.requests if engine is None or r[0] == engine]
