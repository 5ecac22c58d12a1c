"""One guarded HTTP GET: SSRF check on every hop, manual redirects, timeouts, a byte cap after decompression.

Each hop connects to the addresses the SSRF guard vetted, in the resolver's order until one connects
(an IPv6-first name must still load where there is no IPv6 route); the Host header and TLS SNI keep the
real name, and a fresh connection is used so no pooled connection is reused for another name. Bodies
are decompressed here, in bounded steps, so a gzip bomb costs at most `max_bytes` of memory.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import zlib
from collections.abc import Awaitable, Callable
from typing import Literal

import httpx
from pydantic import BaseModel

from .ssrf import BlockedURL, CheckedTarget, SsrfGuard

FetchErrorKind = Literal[
    "blocked", "robots_disallowed", "timeout", "network_error", "too_many_redirects", "redirect_loop",
    "unsupported_content", "bad_encoding",
]  # fmt: skip
_REDIRECTS = {301, 302, 303, 307, 308}
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)


class FetchError(Exception):
    def __init__(self, kind: FetchErrorKind, message: str):
        super().__init__(message)
        self.kind = kind


class _Unreachable(Exception):
    """No connection to one address (refused, no route, connect timeout); the hop tries the next."""

    def __init__(self, kind: FetchErrorKind, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


class FetchLimits(BaseModel):
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = "deepsearch/0.1"
    accept: str = "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.1"


class RawResponse(BaseModel):
    url: str
    final_url: str
    status_code: int
    content_type: str = ""
    charset: str | None = None
    body: bytes = b""
    truncated: bool = False
    redirects: list[str] = []


class _Redirect(BaseModel):
    location: str


HopCheck = Callable[[str], Awaitable[None]]


def parse_content_type(value: str) -> tuple[str, str | None]:
    """`text/html; charset=ISO-8859-1` → ("text/html", "iso-8859-1")."""
    mime = value.split(";", 1)[0].strip().lower()
    match = _CHARSET.search(value)
    return mime, match.group(1).lower() if match else None


class _BoundedDecoder:
    """Content-Encoding decoder that never produces more than asked for (identity, gzip, deflate)."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self._zlib: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding not in ("", "identity", "deflate"):
            raise FetchError("unsupported_content", f"unsupported content-encoding {encoding!r}")

    def feed(self, chunk: bytes, limit: int) -> bytes:
        if self.encoding == "deflate" and self._zlib is None:
            # "deflate" is zlib-wrapped per the RFC, but some servers send raw deflate.
            zlib_header = len(chunk) >= 2 and chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        if self._zlib is None:
            return chunk[:limit]
        try:
            return self._zlib.decompress(chunk, limit)
        except zlib.error as e:
            raise FetchError("bad_encoding", f"corrupt {self.encoding} body: {e}") from None


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The decoded body up to max_bytes, and whether there was more (then the rest is not read)."""
    decoder = _BoundedDecoder(response.headers.get("content-encoding", "").strip().lower())
    body = bytearray()
    async for chunk in response.aiter_raw():
        room = max_bytes - len(body)
        piece = decoder.feed(chunk, room + 1)
        if len(piece) > room:
            body += piece[:room]
            return bytes(body), True
        body += piece
    return bytes(body), False


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process (loading the CA bundle takes milliseconds)."""
    import certifi  # a dependency of httpx

    return ssl.create_default_context(cafile=certifi.where())


class GuardedHttp:
    """GET with the SSRF guard, limits and redirect policy; `get` raises FetchError, never httpx errors."""

    def __init__(self, limits: FetchLimits, guard: SsrfGuard, ssl_context: ssl.SSLContext | None = None):
        self.limits = limits
        self.guard = guard
        self._ssl = ssl_context

    async def get(
        self,
        url: str,
        *,
        accept_type: Callable[[str], bool] | None = None,
        before_hop: HopCheck | None = None,
        max_bytes: int | None = None,
    ) -> RawResponse:
        """Follow redirects up to the limit; a non-accepted Content-Type stops before the body is read."""
        limits = self.limits
        try:
            async with asyncio.timeout(limits.total_timeout_s):
                return await self._follow(url, accept_type, before_hop, max_bytes or limits.max_bytes)
        except TimeoutError:
            raise FetchError("timeout", f"gave up after the total timeout of {limits.total_timeout_s:g}s") from None

    async def _follow(
        self, url: str, accept_type: Callable[[str], bool] | None, before_hop: HopCheck | None, max_bytes: int
    ) -> RawResponse:
        current, redirects = url, []
        while True:
            if before_hop is not None:
                await before_hop(current)
            response = await self._hop(current, accept_type, max_bytes)
            if isinstance(response, RawResponse):
                response.url, response.redirects = url, redirects
                return response
            target = str(httpx.URL(current).join(response.location).copy_with(fragment=None))
            if target == url or target in redirects:
                raise FetchError("redirect_loop", f"redirect loop: {current} → {target}")
            if len(redirects) >= self.limits.max_redirects:
                raise FetchError("too_many_redirects", f"more than {self.limits.max_redirects} redirects from {url}")
            redirects.append(target)
            current = target

    async def _hop(
        self, url: str, accept_type: Callable[[str], bool] | None, max_bytes: int
    ) -> RawResponse | _Redirect:
        """One request; a redirect with a Location header comes back as _Redirect (resolved by the caller)."""
        try:
            target = await self.guard.check(url)
        except BlockedURL as e:
            raise FetchError("blocked", str(e)) from None
        addresses = target.addresses or [target.address]
        failed: list[_Unreachable] = []
        for address in addresses:
            try:
                return await self._request(url, target, address, accept_type, max_bytes)
            except _Unreachable as e:  # no connection to this address: the next one may answer
                failed.append(e)
        tried = f" (all {len(failed)} addresses of {target.host} tried)" if len(failed) > 1 else ""
        raise FetchError(failed[-1].kind, f"{failed[-1].message}{tried}")

    async def _request(
        self,
        url: str,
        target: CheckedTarget,
        address: str,
        accept_type: Callable[[str], bool] | None,
        max_bytes: int,
    ) -> RawResponse | _Redirect:
        parsed = httpx.URL(url)
        default_port = 443 if target.scheme == "https" else 80
        host = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
        headers = {
            "Host": host if target.port == default_port else f"{host}:{target.port}",
            "User-Agent": self.limits.user_agent,
            "Accept": self.limits.accept,
            "Accept-Encoding": "gzip, deflate",
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        limits = self.limits
        timeout = httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s)
        verify = self._ssl or default_ssl_context()
        where = target.host if address == target.host else f"{target.host} ({address})"
        request_url = parsed.copy_with(host=address)
        try:
            # trust_env=False: a proxy from the environment would resolve names itself and bypass the guard.
            async with (
                httpx.AsyncClient(verify=verify, trust_env=False, timeout=timeout) as client,
                client.stream("GET", request_url, headers=headers, extensions=extensions) as response,
            ):
                if response.status_code in _REDIRECTS and response.headers.get("location"):
                    return _Redirect(location=response.headers["location"])
                mime, charset = parse_content_type(response.headers.get("content-type", ""))
                result = RawResponse(
                    url=url, final_url=url, status_code=response.status_code, content_type=mime, charset=charset
                )
                if response.status_code >= 400:
                    return result
                if mime and accept_type is not None and not accept_type(mime):
                    raise FetchError("unsupported_content", f"content type {mime} is not supported")
                result.body, result.truncated = await _read_capped(response, max_bytes)
                return result
        except httpx.ConnectTimeout:
            raise _Unreachable("timeout", f"connect timeout ({limits.connect_timeout_s:g}s) to {where}") from None
        except httpx.ConnectError as e:
            raise _Unreachable("network_error", f"ConnectError from {where}: {e}") from None
        except httpx.TimeoutException:
            raise FetchError("timeout", f"read timeout ({limits.read_timeout_s:g}s) from {where}") from None
        except httpx.HTTPError as e:
            raise FetchError("network_error", f"{type(e).__name__} from {where}: {e}") from None
