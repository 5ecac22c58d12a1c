"""Failures are recorded outcomes too: an SSRF refusal, a robots.txt refusal, a timeout, an engine that is down
are stored and replayed as they happened, not turned into live calls or into silence."""

from __future__ import annotations

import json
import random

from deepsearch.agent.config import FetchSettings, SearchSettings
from deepsearch.tools.fetch_page import PageFetcher
from deepsearch.tools.rate_limit import RateLimiter
from deepsearch.tools.replay import ReplayFetcher, ReplaySearch, load_snapshot
from deepsearch.tools.search_engine import EngineTimeout
from deepsearch.tools.snapshots import SnapshotStore, entry_for
from deepsearch.tools.web_search import WebSearch

from tests.fakes.search import Recorder, ScriptedEngine
from tests.fakes.web_server import LocalWebServer, page


def snapshot_of(store: SnapshotStore, *refs):
    return load_snapshot(str(_manifest_file(store, refs)), store)


def _manifest_file(store, refs):
    manifest = store.save_manifest([entry_for(r, store) for r in refs], {"source": "test"})
    return store.manifest_path(manifest.id)


async def test_refusals_and_failures_of_a_fetch_are_recorded_and_replayed_as_they_were(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    with LocalWebServer() as server:
        server.routes["/robots.txt"] = page("User-agent: *\nDisallow: /private\n", "text/plain")
        server.routes["/private/page"] = page("<html><body><p>secret</p></body></html>")
        server.routes["/ok"] = page("<html><head><title>Fine</title></head><body><p>Readable text.</p></body></html>")
        strict = PageFetcher(FetchSettings(use_cache=False), tmp_path / "cache", store=store)  # loopback refused
        loose = PageFetcher(FetchSettings(use_cache=False, allow_hosts=["127.0.0.1"]), tmp_path / "cache", store=store)
        blocked = await strict.fetch(server.url("/ok?strict"))
        robots = await loose.fetch(server.url("/private/page"))
        fine = await loose.fetch(server.url("/ok"))
    assert (blocked.status, robots.status, fine.status) == ("blocked", "robots_disallowed", "ok")
    assert all(p.recorded is not None for p in (blocked, robots, fine))
    # The same page met twice (refused once, read once): a snapshot of both serves the page.
    refused_too = await strict.fetch(server.url("/ok"))
    both = snapshot_of(store, refused_too.recorded, fine.recorded)
    assert (await ReplayFetcher(both, FetchSettings()).fetch(server.url("/ok"))).status == "ok"
    snapshot = snapshot_of(store, blocked.recorded, robots.recorded, fine.recorded)
    replay = ReplayFetcher(snapshot, FetchSettings())
    for original in (blocked, robots, fine):
        again = await replay.fetch(original.url)  # the servers are gone: only the snapshot can answer
        assert again.status == original.status and again.text == original.text and again.recorded.replayed
        assert again.message == original.message


async def test_an_unavailable_search_is_recorded_and_replayed_unavailable(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    settings = SearchSettings(min_interval_s=0, max_retries=0, use_cache=False)
    engine = ScriptedEngine(EngineTimeout("ddgs timed out"))
    limiters: dict[str, RateLimiter] = {}
    search = WebSearch(settings, tmp_path, engines=[engine], sleep=Recorder(), rng=random.Random(0), store=store,
                       limiter_for=lambda key, interval: limiters.setdefault(key, RateLimiter(interval)))  # fmt: skip
    outcome = await search.search("lumeria river")
    assert outcome.status == "unavailable" and outcome.recorded.status == "unavailable"
    recorded = json.loads(store.read(outcome.recorded.object))
    assert recorded["request"]["query"] == "lumeria river" and recorded["outcome"]["status"] == "unavailable"
    again = await ReplaySearch(snapshot_of(store, outcome.recorded), settings).search("lumeria river")
    assert again.status == "unavailable" and again.message == outcome.message and engine.calls == ["lumeria river"]
