"""A local web server on 127.0.0.1 for fetch and SearXNG tests: fixed pages plus hostile behaviours.

Routes map a path to a handler `fn(request) -> None` that writes the whole response; helpers build
the usual ones (a page, a redirect, a slow drip, a stall, an endless body, a gzip bomb). Every
request's path and headers are recorded in `requests`.
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[["_Request"], None]


class _Request(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.owner.requests.append((self.path, dict(self.headers)))
        handler = self.server.owner.routes.get(self.path.split("?", 1)[0])
        try:
            if handler is None:
                send(self, 404, b"<html><body><h1>Not found</h1></body></html>")
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: that is what cap and timeout tests want


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: LocalWebServer


def send(req: _Request, status: int, body: bytes, content_type: str = "text/html; charset=utf-8", **headers) -> None:
    req.send_response(status)
    if content_type:
        req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        req.send_header(name.replace("_", "-"), value)
    req.end_headers()
    req.wfile.write(body)


def page(body: bytes | str, content_type: str = "text/html; charset=utf-8", status: int = 200, **headers) -> Handler:
    data = body.encode() if isinstance(body, str) else body
    return lambda req: send(req, status, data, content_type, **headers)


def redirect(location: str, status: int = 302) -> Handler:
    return lambda req: send(req, status, b"", "text/html", Location=location)


def drip(total_bytes: int, every_s: float) -> Handler:
    """Headers at once, then one byte every `every_s` seconds (each read is quick; the whole is slow)."""

    def handler(req: _Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.send_header("Content-Length", str(total_bytes))
        req.end_headers()
        for _ in range(total_bytes):
            req.wfile.write(b"x")
            req.wfile.flush()
            time.sleep(every_s)

    return handler


def stall(seconds: float) -> Handler:
    """Accept the request and say nothing."""
    return lambda req: time.sleep(seconds)


def endless(chunk: bytes = b"<p>" + b"lorem ipsum " * 700 + b"</p>\n") -> Handler:
    """An HTML body that never ends (chunked), until the client hangs up."""

    def handler(req: _Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        req.wfile.write(b"%x\r\n<html><body>\r\n" % len(b"<html><body>"))
        for _ in range(100_000):
            req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    return handler


def gzip_bomb(decoded_mb: int = 200) -> Handler:
    """A small gzip body that inflates to `decoded_mb` MB of spaces inside an HTML page."""
    return page(_bomb(decoded_mb), "text/html", Content_Encoding="gzip")


@functools.cache
def _bomb(decoded_mb: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1 << 20)
    parts = [compressor.compress(b"<html><body><p>")]
    parts += [compressor.compress(block) for _ in range(decoded_mb)]
    parts.append(compressor.compress(b"</p></body></html>") + compressor.flush())
    return b"".join(parts)


def gzipped(body: bytes, content_type: str = "text/html; charset=utf-8") -> Handler:
    return page(gzip.compress(body), content_type, Content_Encoding="gzip")


class LocalWebServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host` may be any loopback address (127.0.0.2 stands for a private host that is not allow-listed)."""
        self.host = host
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server = _Server((host, 0), _Request)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> LocalWebServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]
