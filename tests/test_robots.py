"""robots.txt per RFC 9309 against a local server: rules for a day, 4xx allows, failures disallow for minutes only."""

from __future__ import annotations

import socket

import pytest
from deepsearch.tools.http_fetch import FetchError, FetchLimits, GuardedHttp
from deepsearch.tools.robots import FAILURE_TTL_S, RULES_TTL_S, RobotsPolicy
from deepsearch.tools.ssrf import SsrfGuard

from tests.fakes.web_server import LocalWebServer, page, redirect, stall

RULES = "User-agent: *\nDisallow: /private\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def web():
    with LocalWebServer() as server:
        yield server


def policy(clock: Clock) -> RobotsPolicy:
    limits = FetchLimits(connect_timeout_s=0.5, read_timeout_s=0.2, total_timeout_s=1.0, max_redirects=5)
    return RobotsPolicy(GuardedHttp(limits, SsrfGuard(["127.0.0.1"])), "deepsearch", clock=clock)


async def allowed(robots: RobotsPolicy, url: str) -> bool:
    try:
        await robots.check(url)
    except FetchError as e:
        assert e.kind == "robots_disallowed"
        return False
    return True


async def test_fetched_rules_apply_and_are_kept_for_a_day(web):
    web.routes["/robots.txt"] = page(RULES, "text/plain")
    clock = Clock()
    robots = policy(clock)
    assert await allowed(robots, web.url("/article")) and not await allowed(robots, web.url("/private/x"))
    clock.now += RULES_TTL_S - 1
    assert not await allowed(robots, web.url("/private/x"))
    assert web.paths().count("/robots.txt") == 1
    clock.now += 2  # a day on: asked again
    web.routes["/robots.txt"] = page("User-agent: *\nDisallow:\n", "text/plain")
    assert await allowed(robots, web.url("/private/x")) and web.paths().count("/robots.txt") == 2


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_4xx_robots_txt_allows_everything(web, status):
    web.routes["/robots.txt"] = page("no", "text/plain", status=status)
    clock = Clock()
    robots = policy(clock)
    assert await allowed(robots, web.url("/private/x"))
    clock.now += 3600
    assert await allowed(robots, web.url("/anything")) and web.paths().count("/robots.txt") == 1


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda s: s.routes.update({"/robots.txt": page("overloaded", "text/plain", status=503)}), "HTTP 503"),
        (lambda s: s.routes.update({"/robots.txt": stall(0.6)}), "unreachable (read timeout (0.2s)"),
    ],
)
async def test_a_5xx_or_timeout_disallows_for_minutes_not_a_day(web, setup, reason):
    setup(web)
    clock = Clock()
    robots = policy(clock)
    with pytest.raises(FetchError, match="robots.txt: .*") as caught:
        await robots.check(web.url("/article"))
    assert reason in str(caught.value) and f"asked again in {FAILURE_TTL_S:g}s" in str(caught.value)
    clock.now += FAILURE_TTL_S - 1
    assert not await allowed(robots, web.url("/article"))  # remembered briefly: no new request
    assert web.paths().count("/robots.txt") == 1
    web.routes["/robots.txt"] = page(RULES, "text/plain")  # the site is back
    clock.now += 2
    assert await allowed(robots, web.url("/article")) and web.paths().count("/robots.txt") == 2


async def test_an_unreachable_host_disallows_for_minutes_not_a_day():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = Clock()
    robots = policy(clock)
    with pytest.raises(FetchError, match="unreachable"):
        await robots.check(f"http://127.0.0.1:{port}/article")
    assert robots._verdicts[f"http://127.0.0.1:{port}/robots.txt"][1] == clock.now + FAILURE_TTL_S


async def test_while_a_refresh_fails_the_last_rules_still_apply(web):
    web.routes["/robots.txt"] = page(RULES, "text/plain")
    clock = Clock()
    robots = policy(clock)
    assert await allowed(robots, web.url("/article"))
    web.routes["/robots.txt"] = page("down", "text/plain", status=502)
    clock.now += RULES_TTL_S + 1
    assert await allowed(robots, web.url("/article")) and not await allowed(robots, web.url("/private/x"))
    assert web.paths().count("/robots.txt") == 2
    clock.now += FAILURE_TTL_S + 1  # asked again minutes later (RFC 9309 §2.4 allows the copy while unreachable)
    assert not await allowed(robots, web.url("/private/x")) and web.paths().count("/robots.txt") == 3
    web.routes["/robots.txt"] = page("User-agent: *\nDisallow: /article\n", "text/plain")
    clock.now += FAILURE_TTL_S + 1
    assert await allowed(robots, web.url("/private/x")) and not await allowed(robots, web.url("/article"))


async def test_too_many_redirects_count_as_unavailable_which_allows(web):
    for i in range(7):
        web.routes[f"/r{i}" if i else "/robots.txt"] = redirect(f"/r{i + 1}")
    clock = Clock()
    robots = policy(clock)
    assert await allowed(robots, web.url("/private/x"))
    assert robots._verdicts[web.url("/robots.txt")][1] == clock.now + FAILURE_TTL_S  # and asked again soon
