"""SSRF guard: which URLs a fetch may reach, decided on the addresses the host resolves to.

A URL passes when its scheme is http(s) and every address its host resolves to is public, or is
covered by the allow-list (hostnames, IPs, CIDR networks; for intranet use and tests). The caller
connects to the returned addresses (tried in the resolver's order), not to the name, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot smuggle in a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpx
from pydantic import BaseModel, Field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class BlockedURL(Exception):
    """The URL is not allowed: bad scheme, unresolvable host or a non-public address."""


class CheckedTarget(BaseModel):
    """Where to connect: the URL's host name and port, and the vetted addresses to use for them, in order."""

    scheme: str
    host: str
    port: int
    address: str = Field(description="the first vetted address")
    addresses: list[str] = Field(default_factory=list, description="every vetted address, in the resolver's order")


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses for `host`, via the event loop's non-blocking getaddrinfo."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """False for private, loopback, link-local, multicast, reserved, unspecified, shared (CGNAT) and v6 kin."""
    if isinstance(ip, ipaddress.IPv6Address) and (v4 := _embedded_ipv4(ip)) is not None:
        return is_public(v4)
    if ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    return ip.is_global


class AllowList:
    """Hosts and networks that may be reached even though they are not public."""

    def __init__(self, entries: Iterable[str] = ()):
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.rstrip("."))

    def covers(self, host: str, ip: IPAddress) -> bool:
        return host in self.hosts or any(ip in net for net in self.networks)


class SsrfGuard:
    def __init__(self, allow: Iterable[str] = (), resolver: Resolver = system_resolver):
        self.allow = AllowList(allow)
        self.resolver = resolver

    async def check(self, url: str) -> CheckedTarget:
        """Vet `url` and return the address to connect to; raises BlockedURL."""
        try:
            parts = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as e:
            raise BlockedURL(f"not a valid URL: {url} ({e})") from None
        scheme = parts.scheme
        if scheme not in ("http", "https"):
            raise BlockedURL(f"only http and https URLs can be fetched: {url}")
        # raw_host is the ASCII (IDNA) form, which is what the resolver and the allow-list see.
        host = parts.raw_host.decode("ascii").lower().strip("[]").rstrip(".")
        if not host:
            raise BlockedURL(f"URL has no host: {url}")
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as e:
            raise BlockedURL(f"cannot resolve {host}: {e}") from None
        if not addresses:
            raise BlockedURL(f"cannot resolve {host}: no addresses")
        # Every address must pass: a name with one public and one private address is refused.
        for ip in addresses:
            if not is_public(ip) and not self.allow.covers(host, ip):
                raise BlockedURL(f"{host} resolves to non-public address {ip}; add it to fetch.allow_hosts to allow it")
        ordered = [str(ip) for ip in dict.fromkeys(addresses)]
        return CheckedTarget(scheme=scheme, host=host, port=port, address=ordered[0], addresses=ordered)
