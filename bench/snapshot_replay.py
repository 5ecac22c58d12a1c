"""Record a batch's web once, replay it offline: wall times, snapshot size, network requests, identical runs.

The grounded reader answers DATA's questions with the web on (the pooled passages served on 127.0.0.1 as a
SearXNG engine and pages, bench/web_corpus.py) and every search and page is recorded; the snapshot of those
runs is exported as one .zip; the local web is shut down; the same questions are replayed from the .zip.
Every TCP connection the replay opens is counted (the model's server excluded), and each replayed run is
compared with its recording by `traces diff` (tool calls, results, answer).

    .venv/bin/python -m bench.snapshot_replay /work/shared/data/musique_train_hipporag_100 [--limit 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deepsearch.agent.config import load_settings
from deepsearch.agent.eval.datasets import load_dataset, select
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.tools.snapshot_archive import write_archive
from deepsearch.tools.snapshot_sources import snapshot_of_runs
from deepsearch.tools.snapshots import SnapshotStore
from deepsearch.traces.diff import diff_runs
from deepsearch.traces.reader import find_log, load_trajectory

from bench.pipeline_ceiling import _run_agent, sources_both, web_settings
from bench.web_corpus import WebCorpus
from tests.fakes.grounded_reader import GroundedReader


class Connections:
    """Counts socket.connect calls by port while installed."""

    def __init__(self):
        self.ports: list[int] = []
        self._real = socket.socket.connect

    def __enter__(self):
        real, ports = self._real, self.ports

        def connect(sock, address):
            if isinstance(address, tuple):
                ports.append(address[1])
            return real(sock, address)

        socket.socket.connect = connect
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._real


def run(data: str, limit: int | None, concurrency: int = 4) -> dict:
    with tempfile.TemporaryDirectory(prefix="snapshot-replay-") as tmp:
        base = load_settings(overrides={"traces.dir": f"{tmp}/traces", "agent.checkpoint_db": f"{tmp}/ckpt.sqlite",
                                        "snapshot.dir": f"{tmp}/store"}).settings  # fmt: skip
        dataset = load_dataset(data, base.eval.data_dir)
        questions = select(dataset.questions, None, limit)
        index = pooled_index(dataset, base)
        responder = sources_both(GroundedReader.from_dataset(dataset, questions))
        with WebCorpus([(p.title, p.text) for p in dataset.passages]) as corpus:
            settings = web_settings(base, corpus, Path(tmp) / "cache")
            started = time.perf_counter()
            recorded = asyncio.run(_run_agent(questions, responder, settings, index, concurrency, 300.0, True))
            record_s = time.perf_counter() - started
            served = {"queries": len(corpus.queries), "pages": corpus.pages_served}
        store = SnapshotStore(settings.snapshot.dir)
        ids = [r["trace_id"] for r in recorded if r.get("trace_id")]
        manifest = snapshot_of_runs(ids, store, settings.traces.dir, source="bench")
        archive = write_archive(manifest, store, Path(tmp) / "snapshot.zip")

        replay = settings.model_copy(deep=True)
        replay.snapshot.replay = str(archive)
        replay.traces.dir = Path(tmp) / "replayed"
        replay.cache.dir = Path(tmp) / "cache-replay"  # nothing may come from the record run's caches
        with Connections() as connections:
            started = time.perf_counter()
            replayed = asyncio.run(_run_agent(questions, responder, replay, index, concurrency, 300.0, True))
            replay_s = time.perf_counter() - started
        llm_port = _llm_port(replayed, replay)
        same = answers_equal = 0
        differences = []
        for a, b in zip(recorded, replayed, strict=True):
            ta = load_trajectory(find_log(settings.traces.dir, a["trace_id"]))
            tb = load_trajectory(find_log(replay.traces.dir, b["trace_id"]))
            d = diff_runs(ta, tb)
            same += d.same
            if not d.same:
                differences.append({"id": a["id"], "lines": (d.calls + d.results + d.answers)[:3]})
            answers_equal += a["short_answer"] == b["short_answer"]
        return {
            "questions": len(questions),
            "record_s": round(record_s, 2),
            "replay_s": round(replay_s, 2),
            "web_served_while_recording": served,
            "snapshot_entries": len(manifest.entries),
            "snapshot_searches": sum(e.kind == "search" for e in manifest.entries),
            "snapshot_pages": sum(e.kind == "fetch" for e in manifest.entries),
            "snapshot_objects_bytes": manifest.size,
            "snapshot_zip_bytes": archive.stat().st_size,
            "replay_connections_total": len(connections.ports),
            "replay_connections_not_llm": sum(p != llm_port for p in connections.ports),
            "runs_identical": same,
            "differences": differences,
            "answers_equal": answers_equal,
            "em_record": round(statistics.fmean(r["em"] for r in recorded), 3),
            "em_replay": round(statistics.fmean(r["em"] for r in replayed), 3),
        }


def _llm_port(rows: list[dict], settings) -> int | None:
    """The fake model server's port: the one connection kind a replay may open (read from a replayed trace)."""
    for r in rows:
        if r.get("trace_id"):
            traj = load_trajectory(find_log(settings.traces.dir, r["trace_id"]))
            url = traj.config.get("llm", {}).get("base_url") or [""]
            url = url[0] if isinstance(url, list) else url
            try:
                return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            except (IndexError, ValueError):
                return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_replay", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a data folder or question file with passages (MuSiQue, HotpotQA)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data, args.limit, args.concurrency), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
