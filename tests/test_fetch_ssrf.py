"""SSRF guard: schemes, private address ranges (v4 and v6 forms), allow-list, names resolving privately, redirects;
every vetted address tried in the resolver's order."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from deepsearch.agent.config import FetchSettings
from deepsearch.tools.fetch_page import PageFetcher
from deepsearch.tools.ssrf import BlockedURL, SsrfGuard, is_public

from tests.fakes.web_server import LocalWebServer, page, redirect


def fake_dns(table: dict[str, list[str]]):
    """A resolver answering from `table` (names not in it fail like NXDOMAIN)."""

    async def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        if _is_ip(host):
            return [host]
        raise OSError(f"[Errno -2] Name or service not known: {host}")

    return resolve


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.10", "198.18.0.1",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "2002:c0a8:101::1", "64:ff9b::a00:1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo wrapping 10.0.0.1
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/", "javascript:alert(1)", "http:///nohost"]
)
async def test_only_http_and_https_with_a_host(url):
    with pytest.raises(BlockedURL):
        await SsrfGuard(resolver=fake_dns({})).check(url)


async def test_names_resolving_to_private_addresses_are_refused():
    guard = SsrfGuard(
        resolver=fake_dns(
            {
                "intranet.corp.test": ["10.0.0.5"],
                "metadata.test": ["169.254.169.254"],
                "mixed.test": ["93.184.215.14", "192.168.0.7"],  # one bad address is enough
                "v6local.test": ["fd00::7"],
                "public.test": ["93.184.215.14", "2606:4700:4700::1111"],
            }
        )
    )
    for host, shown in [("intranet.corp.test", "10.0.0.5"), ("metadata.test", "169.254.169.254"),
                        ("mixed.test", "192.168.0.7"), ("v6local.test", "fd00::7")]:  # fmt: skip
        with pytest.raises(BlockedURL, match=f"{host} resolves to non-public address {shown}"):
            await guard.check(f"https://{host}/admin")
    target = await guard.check("https://public.test/page")
    assert (target.host, target.port, target.address) == ("public.test", 443, "93.184.215.14")
    with pytest.raises(BlockedURL, match="cannot resolve nxdomain.test"):
        await guard.check("http://nxdomain.test/")


async def test_numeric_host_spellings_are_judged_by_their_address():
    guard = SsrfGuard()  # the real resolver: numeric forms resolve without DNS
    for url in ("http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://[::ffff:7f00:1]/"):
        with pytest.raises(BlockedURL, match="non-public"):
            await guard.check(url)


async def test_allow_list_by_host_ip_and_network():
    dns = fake_dns({"wiki.lan": ["10.1.2.3"], "other.lan": ["10.1.2.3"], "nas.lan": ["192.168.7.9"]})
    guard = SsrfGuard(["wiki.lan", "192.168.0.0/16", "127.0.0.1"], resolver=dns)
    assert (await guard.check("http://wiki.lan/page")).address == "10.1.2.3"
    assert (await guard.check("http://nas.lan:8080/")).port == 8080
    assert (await guard.check("http://127.0.0.1:9/")).address == "127.0.0.1"
    with pytest.raises(BlockedURL, match="other.lan"):  # same address, but the name is not on the list
        await guard.check("http://other.lan/")
    with pytest.raises(BlockedURL):
        await guard.check("http://127.0.0.2/")


@pytest.fixture
def web():
    with LocalWebServer() as server:
        server.routes["/page"] = page("<html><body><article><p>" + "Harbour tide tables. " * 30 + "</p></article>")
        yield server


def fetcher(tmp_path, table: dict[str, list[str]], allow: list[str]) -> PageFetcher:
    settings = FetchSettings(allow_hosts=allow, use_cache=False)
    return PageFetcher(settings, tmp_path, resolver=fake_dns(table))


async def test_redirects_to_private_addresses_are_refused_at_every_hop(web, tmp_path):
    dns = {"intranet.corp.test": ["10.0.0.5"], "rebind.test": ["192.168.1.1"]}
    f = fetcher(tmp_path, dns, allow=["127.0.0.1"])
    for target in ("http://intranet.corp.test/admin", "http://169.254.169.254/latest/meta-data/",
                   "http://rebind.test/", "http://[::1]/", "file:///etc/passwd"):  # fmt: skip
        web.routes["/jump"] = redirect(target)
        result = await f.fetch(web.url("/jump"))
        assert result.status == "blocked", target
    assert (await f.fetch(web.url("/page"))).ok  # the allow-listed origin itself is fine


async def test_the_connection_goes_to_the_vetted_address_with_the_real_host_header(web, tmp_path):
    f = fetcher(tmp_path, {"pages.test": ["127.0.0.1"]}, allow=["pages.test"])
    result = await f.fetch(f"http://pages.test:{web.port}/page")
    assert result.ok and result.final_url == f"http://pages.test:{web.port}/page"
    assert web.requests[-1][1]["Host"] == f"pages.test:{web.port}"


async def test_without_allow_list_loopback_is_refused(web, tmp_path):
    result = await fetcher(tmp_path, {}, allow=[]).fetch(web.url("/page"))
    assert result.status == "blocked" and "fetch.allow_hosts" in result.message
    assert web.requests == []


# ---- every resolved address, in order (issue 13) ----------------------------------------------------------------


@pytest.fixture
def dns(monkeypatch):
    """getaddrinfo answering from a table (the real resolver code path); other names go to the real one."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in table:
            return real(host, port, family, type, proto, flags)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]  # fmt: skip

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


class Twin:
    """A second server on 127.0.0.2 at the same port as `web`, answering "from the twin"."""

    def __init__(self, port: int):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = b"<html><body><article><p>" + b"From the twin. " * 30 + b"</p></article></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dual_fetcher(tmp_path, allow=("dual.test",)) -> PageFetcher:
    settings = FetchSettings(allow_hosts=list(allow), use_cache=False, respect_robots=False, connect_timeout_s=2)
    return PageFetcher(settings, tmp_path)  # the system resolver, i.e. getaddrinfo


async def test_the_next_address_is_tried_when_the_first_has_no_route(web, tmp_path, dns):
    # An IPv6-first name where IPv6 goes nowhere (documentation range), then a refusing address, then the server.
    dns["dual.test"] = ["2001:db8::1", "127.0.0.3", "127.0.0.1"]
    result = await dual_fetcher(tmp_path).fetch(f"http://dual.test:{web.port}/page")
    assert result.ok and "Harbour tide tables" in result.text
    assert web.requests[-1][1]["Host"] == f"dual.test:{web.port}"


async def test_addresses_are_tried_in_the_resolvers_order(web, tmp_path, dns):
    twin = Twin(web.port)
    try:
        dns["dual.test"] = ["127.0.0.2", "127.0.0.1"]
        first = await dual_fetcher(tmp_path).fetch(f"http://dual.test:{web.port}/page")
        dns["dual.test"] = ["127.0.0.1", "127.0.0.2"]
        second = await dual_fetcher(tmp_path).fetch(f"http://dual.test:{web.port}/page")
    finally:
        twin.close()
    assert "From the twin" in first.text and "Harbour tide tables" in second.text
    assert len(web.requests) == 1


async def test_when_no_address_answers_the_error_says_all_were_tried(tmp_path, dns):
    dns["dual.test"] = ["127.0.0.3", "127.0.0.4"]
    result = await dual_fetcher(tmp_path).fetch("http://dual.test:9/page")
    assert result.status == "network_error" and "all 2 addresses of dual.test tried" in result.message


async def test_every_address_is_still_vetted_before_any_is_tried_also_after_a_redirect(web, tmp_path, dns):
    dns["dual.test"] = ["127.0.0.1"]
    dns["half.test"] = ["127.0.0.1", "10.0.0.9"]  # the first would answer; the second is private
    f = dual_fetcher(tmp_path, allow=("dual.test", "127.0.0.1"))
    direct = await f.fetch(f"http://half.test:{web.port}/page")
    web.routes["/jump"] = redirect(f"http://half.test:{web.port}/page")
    redirected = await f.fetch(f"http://dual.test:{web.port}/jump")
    for result in (direct, redirected):
        assert result.status == "blocked" and "non-public address 10.0.0.9" in result.message
    assert web.paths() == ["/jump"]  # nothing was requested from half.test
