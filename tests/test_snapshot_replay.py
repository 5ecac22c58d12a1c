"""Record a web run, stop the web, replay it: the same tool calls, byte-identical tool results, the same answer.

The web is real code paths on 127.0.0.1: the SearXNG client asks a local SearXNG-compatible engine, the page
fetcher (SSRF guard, robots.txt, trafilatura) reads local pages (bench/web_corpus.py). The model is the
grounded reader behind the fake OpenAI-compatible server, so what it answers depends on what it is shown.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.config import load_settings
from deepsearch.agent.errors import UsageError
from deepsearch.agent.eval.datasets import load_dataset
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.tools.replay import ReplayFetcher, ReplaySearch, load_snapshot
from deepsearch.tools.snapshot_archive import write_archive
from deepsearch.tools.snapshot_sources import snapshot_of_runs
from deepsearch.tools.snapshots import SnapshotStore
from deepsearch.traces.diff import diff_runs
from deepsearch.traces.reader import find_log, load_trajectory

from bench.pipeline_ceiling import sources_both, web_settings
from bench.web_corpus import WebCorpus
from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, fake_backend

SLICE = Path(__file__).parent / "fixtures" / "musique_slice"


class Sockets:
    """Every TCP connection this process opens, by port (patched into socket.socket.connect)."""

    def __init__(self, monkeypatch):
        self.ports: list[int] = []
        real = socket.socket.connect

        def connect(sock, address):
            if isinstance(address, tuple):
                self.ports.append(address[1])
            return real(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two questions answered with the web on (local fixtures), recorded; then the web is shut down."""
    import asyncio

    tmp = tmp_path_factory.mktemp("record")
    data = load_dataset(str(SLICE), Path("."))
    reader = sources_both(GroundedReader.from_dataset(data))
    questions = data.questions[:2]
    with WebCorpus([(p.title, p.text) for p in data.passages]) as corpus, \
            FakeOpenAIServer(responder=reader) as llm:  # fmt: skip
        base = load_settings(overrides={
            "llm.backend": "openai", "llm.base_url": llm.base_url, "llm.model": "fake-model",
            "llm.server_kind": "vllm", "llm.max_retries": 0, "traces.dir": str(tmp / "traces"),
            "agent.checkpoint_db": str(tmp / "ckpt.sqlite"), "agent.detect_ambiguity": False,
            "agent.max_rounds": 3, "snapshot.dir": str(tmp / "store"),
            "index.dir": str(tmp / "indexes")}).settings  # fmt: skip
        settings = web_settings(base, corpus, tmp / "cache")
        index = pooled_index(data, settings)

        async def run_all():
            return [await aresearch(q.question, settings=settings, indexes=[str(index)], gold=q.answers,
                                    checkpoint=False) for q in questions]  # fmt: skip

        results = asyncio.run(run_all())
        served = (len(corpus.queries), corpus.pages_served)
    assert served[0] > 0 and served[1] > 0  # the runs really used the web
    return {"tmp": tmp, "data": data, "reader": reader, "questions": questions, "settings": settings,
            "index": index, "results": results}  # fmt: skip


async def replay(rec, spec, tmp_path, backend=None, match="exact"):
    settings = rec["settings"].model_copy(deep=True)
    settings.snapshot.replay, settings.snapshot.match = spec, match
    settings.traces.dir = tmp_path / "replayed"
    with FakeOpenAIServer(responder=rec["reader"]) as llm:
        settings.llm.base_url = [llm.base_url]
        return [await aresearch(q.question, settings=settings, indexes=[str(rec["index"])], gold=q.answers,
                                checkpoint=False, backend=backend) for q in rec["questions"]], settings  # fmt: skip


def web_steps(traj):
    return [s for s in traj.tool_calls() if s.tool in ("web_search", "fetch_page")]


async def test_a_replayed_run_makes_the_same_calls_with_identical_results_and_no_web(recorded, tmp_path, monkeypatch):
    store = SnapshotStore(recorded["settings"].snapshot.dir)
    originals = [load_trajectory(find_log(recorded["settings"].traces.dir, r.trace_id)) for r in recorded["results"]]
    assert all(s.recorded is not None and store.read(s.recorded.object) for t in originals for s in web_steps(t))
    manifest = snapshot_of_runs([t.id for t in originals], store, recorded["settings"].traces.dir)
    archive = write_archive(manifest, store, tmp_path / "web.zip")

    sockets = Sockets(monkeypatch)
    results, settings = await replay(recorded, str(archive), tmp_path)
    llm_ports = {int(url.rsplit(":", 1)[1].split("/")[0]) for url in settings.llm.base_url}
    assert set(sockets.ports) <= llm_ports  # only the model was reached: no search engine, no page
    for original, result in zip(originals, results, strict=True):
        again = load_trajectory(find_log(settings.traces.dir, result.trace_id))
        difference = diff_runs(original, again)
        assert difference.same, difference
        assert all(s.recorded.replayed for s in web_steps(again)) and again.meta["snapshot"] == manifest.id
        assert result.answer == next(r for r in recorded["results"] if r.trace_id == original.id).answer


async def test_replay_by_trace_id_and_by_batch_output(recorded, tmp_path):
    ids = [r.trace_id for r in recorded["results"]]
    batch = tmp_path / "answers.jsonl"
    batch.write_text("".join(json.dumps({"id": f"q{i}", "trace_id": t}) + "\n" for i, t in enumerate(ids)))
    store = SnapshotStore(recorded["settings"].snapshot.dir)
    by_batch = load_snapshot(str(batch), store, recorded["settings"].traces.dir)
    by_trace = load_snapshot(ids[0], store, recorded["settings"].traces.dir)
    assert set(by_trace.by_key) <= set(by_batch.by_key) and by_batch.id == load_snapshot(by_batch.id, store).id


async def test_a_different_model_over_the_same_snapshot_gets_recorded_or_not_recorded_never_the_web(
        recorded, tmp_path, monkeypatch):  # fmt: skip
    store = SnapshotStore(recorded["settings"].snapshot.dir)
    spec = snapshot_of_runs([recorded["results"][0].trace_id], store, recorded["settings"].traces.dir).id[:10]
    sockets = Sockets(monkeypatch)
    # A scripted model with its own queries: what the snapshot holds is served, the rest is `not_recorded`.
    plan = {"subgoals": [{"question": recorded["questions"][0].question, "depends_on": [], "source": "web",
                          "queries": ["#a query nobody recorded"]}]}  # fmt: skip
    model = ScriptedModel(planner=plan)
    results, settings = await replay(recorded, spec, tmp_path, backend=fake_backend(model))
    assert sockets.ports == []  # the scripted model needs no server; nothing else may be called either
    traj = load_trajectory(find_log(settings.traces.dir, results[0].trace_id))
    searches = [s for s in traj.tool_calls() if s.tool == "web_search"]
    assert searches and all(s.recorded is not None or s.error for s in searches)
    assert any("not in snapshot" in (s.error or "") and not s.success for s in searches)


async def test_a_request_the_snapshot_lacks_is_not_recorded_and_opens_no_socket(recorded, monkeypatch):
    store = SnapshotStore(recorded["settings"].snapshot.dir)
    snapshot = load_snapshot(recorded["results"][0].trace_id, store, recorded["settings"].traces.dir)

    def no_network(*args, **kwargs):
        raise AssertionError("a replay opened a socket")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    s = recorded["settings"]
    outcome = await ReplaySearch(snapshot, s.search).search("a query nobody recorded")
    page = await ReplayFetcher(snapshot, s.fetch).fetch("http://127.0.0.1:9/never-fetched")
    assert outcome.status == "not_recorded" and outcome.results == [] and snapshot.id[:12] in outcome.message
    assert page.status == "not_recorded" and not page.ok
    recorded_query = json.loads(next(k for kind, k in snapshot.by_key if kind == "search"))["query"]
    assert (await ReplaySearch(snapshot, s.search).search(recorded_query)).status != "not_recorded"
    # Matching by query alone: another max_results and spacing/case still find it; exact does not.
    other = s.search.model_copy(update={"max_results": s.search.max_results + 3})
    assert (await ReplaySearch(snapshot, other).search(recorded_query)).status == "not_recorded"
    found = await ReplaySearch(snapshot, other, match="query").search("  " + recorded_query.upper())
    assert found.status != "not_recorded"


def test_a_tampered_snapshot_is_refused_by_replay_in_one_line(recorded, tmp_path):
    import zipfile

    store = SnapshotStore(recorded["settings"].snapshot.dir)
    manifest = snapshot_of_runs([recorded["results"][0].trace_id], store, recorded["settings"].traces.dir)
    good = write_archive(manifest, store, tmp_path / "good.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("objects/") and b'"status":"ok"' in data:
                data = data.replace(b'"status":"ok"', b'"status":"no_results"', 1)
            dst.writestr(info, data)
    with pytest.raises(UsageError) as e:
        load_snapshot(str(bad), store)
    assert "does not match its hash" in str(e.value) and "\n" not in str(e.value)


def test_a_batch_names_the_snapshot_it_recorded_or_replayed(recorded, tmp_path):
    from deepsearch.tools.snapshot_sources import snapshot_of_batch

    rows = [{"id": f"q{i}", "trace_id": r.trace_id} for i, r in enumerate(recorded["results"])]
    settings = recorded["settings"]
    made = snapshot_of_batch(rows, settings)
    store = SnapshotStore(settings.snapshot.dir)
    assert made and store.find(made) is not None  # saved: its id replays it
    replaying = settings.model_copy(deep=True)
    replaying.snapshot.replay = made[:12]
    assert snapshot_of_batch(rows, replaying) == made
    offline = settings.model_copy(deep=True)
    offline.agent.web = False
    assert snapshot_of_batch(rows, offline) is None

